"""The one exception cnnviz raises for bad input (its message is the single line a user sees),
and the one Ctrl-C that carries what was computed."""

from __future__ import annotations


class CnnvizError(Exception):
    """A user-facing error: bad input, a missing file, an unknown layer."""


class Stopped(KeyboardInterrupt):
    """Ctrl-C during a computation, with what it had computed when it came (``state``: an
    ascent's running state, a data pass's partial result)."""

    def __init__(self, state: object, done: int = 0) -> None:
        super().__init__("interrupted")
        self.state, self.done = state, done


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
