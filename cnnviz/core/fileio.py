"""Atomic file writing: a failed write never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.timing import phase


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix,
                                   dir=target.parent)
    except OSError as exc:
        raise CnnvizError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        with phase("write"):
            yield tmp_path
            os.replace(tmp_path, target)
    except OSError as exc:  # a full disk, a vanished folder: the old file stays as it was
        tmp_path.unlink(missing_ok=True)
        raise CnnvizError(f"could not write {target}: {exc.strerror or exc}") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def refuse_overwrite(path: str | os.PathLike[str], force: bool) -> None:
    """Refuse to replace an earlier run's output unless ``force`` says so."""
    if Path(path).exists() and not force:
        raise CnnvizError(f"{path} already exists: pass --force to overwrite it, or choose "
                          "another --out")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8) and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


EMBEDDED = "__cnnviz_meta__"  # the npz entry that holds the metadata of a one-file result


def save_results(path: str | os.PathLike[str], kind: str, arrays: dict[str, Any],
                 meta: dict[str, Any], twin: bool = True) -> tuple[Path, ...]:
    """Write ``arrays`` to ``path`` (.npz) and ``{"kind": kind, **meta}`` beside it (.json);
    with ``twin=False`` the metadata goes inside the ``.npz``, so that arrays and metadata
    appear together in one rename."""
    npz = Path(path).with_suffix(".npz")
    text = json.dumps({"kind": kind, **meta}, indent=2, sort_keys=False) + "\n"
    inside = {} if twin else {EMBEDDED: np.frombuffer(text.encode("utf-8"), np.uint8)}
    with atomic_path(npz) as tmp, tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays, **inside)
    return (npz, write_text(npz.with_suffix(".json"), text)) if twin else (npz,)


def load_results(path: str | os.PathLike[str], kind: str) -> tuple[dict[str, np.ndarray],
                                                                     dict[str, Any]]:
    """Read what :func:`save_results` wrote; checks that it holds ``kind`` results."""
    npz = Path(path).with_suffix(".npz")
    try:
        with np.load(npz) as data:
            arrays = {key: data[key] for key in data.files}
        inside = arrays.pop(EMBEDDED, None)
        text = npz.with_suffix(".json").read_text(encoding="utf-8") if inside is None \
            else inside.astype(np.uint8).tobytes().decode("utf-8")
        meta = json.loads(text)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CnnvizError(f"cannot read saved results {npz}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        raise CnnvizError(f"{npz} does not hold saved {kind}")
    return arrays, meta


def check_writable(folder: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a folder cnnviz cannot write into."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CnnvizError(f"cannot write to {folder}: {exc.strerror or exc}") from None
