"""A cache of passes over real images (which images excite each map most), keyed by everything
that decides the answer: the model's digest (configuration and weights), the data's digest,
the layer, the measure, the size, the preprocessing, the backend and the cnnviz version.
``filters``, ``report`` and the atlas reuse it, so a second run skips the pass.

It lives in ``$CNNVIZ_CACHE`` (``off`` turns it off), else ``$XDG_CACHE_HOME/cnnviz`` or
``~/.cache/cnnviz``; every entry is one ``.npz`` written atomically; an entry that cannot be
read is computed again and replaced."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.fileio import atomic_path
from cnnviz.version import __version__

ENV = "CNNVIZ_CACHE"


def cache_dir() -> Path | None:
    """Where the cache lives; ``None`` when ``CNNVIZ_CACHE=off``."""
    chosen = os.environ.get(ENV, "")
    if chosen.lower() in ("off", "0", "no", "false"):
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnviz"


def cached(kind: str, key: dict[str, Any],
           compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, from the cache when an entry of ``kind`` has ``key``, else
    computed and kept. A cache that cannot be written is skipped without a word (the answer is
    the same)."""
    folder = cache_dir()
    if folder is None:
        return compute()
    text = json.dumps({"version": __version__, **key}, sort_keys=True, default=str)
    path = folder / kind / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.npz"
    try:
        with np.load(path) as saved:
            if str(saved["key"]) == text:
                return {name: saved[name] for name in saved.files if name != "key"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # no entry, or a damaged one: compute it again
    arrays = compute()
    try:
        with atomic_path(path) as tmp, tmp.open("wb") as fh:
            np.savez(fh, key=np.asarray(text), **arrays)
    except (CnnvizError, OSError):
        pass
    return arrays
