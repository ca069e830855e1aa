"""Labels: whole class numbers, checked before anything is built per class."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError

MAX_CLASSES = 2**16


def checked_labels(labels: Any, where: str, classes: int = MAX_CLASSES) -> np.ndarray:
    """``labels`` as int64 class numbers, refused (naming ``where``) unless each is a whole
    number in 0..``classes``−1 — before anything is built per class."""
    values = np.asarray(labels)
    if values.dtype.kind not in "iub" and (
            values.dtype.kind != "f" or not np.all(np.isfinite(values))
            or np.any(values != np.round(values))):
        raise CnnvizError(f"{where}: labels must be whole class numbers, got "
                              f"{values.dtype} values")
    values = values.reshape(-1)
    bad = values[(values < 0) | (values >= classes)]
    if bad.size:
        limit = "class_names given" if classes != MAX_CLASSES else "classes cnnviz handles"
        raise CnnvizError(f"{where}: label {bad[0]:.0f} is not a class number 0..{classes - 1} "
                          f"({classes} {limit})")
    return values.astype(np.int64)
