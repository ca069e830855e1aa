"""The one exception cnnviz raises for bad input: its message is the single line a user sees."""

from __future__ import annotations


class CnnvizError(Exception):
    """A user-facing error: bad input, a missing file, an unknown layer."""
