"""The one exception cnnviz raises for bad input: its message is the single line a user sees."""

from __future__ import annotations


class CnnvizError(Exception):
    """A user-facing error: bad input, a missing file, an unknown layer."""


def check_seed(seed: int, what: str = "seed") -> int:
    """A random seed: a whole number ≥ 0 (numpy's generators take no other)."""
    import operator

    try:
        value = operator.index(seed)
    except TypeError:
        value = -1
    if isinstance(seed, bool) or value < 0:
        raise CnnvizError(f"{what} must be a whole number ≥ 0, got {seed!r}")
    return value


def check_finite(*named: tuple[str, float]) -> None:
    """Refuse NaN or infinite numbers: each (name, value) pair is checked, the first bad one
    named."""
    import math

    for name, value in named:
        if not math.isfinite(float(value)):
            raise CnnvizError(f"{name} must be a finite number, got {value}")
