"""What computations return: plain dataclasses of numpy arrays with one metadata layout, saved as
``.npz`` (arrays) + ``.json`` (metadata) and merged when a run was made in parts."""

from __future__ import annotations

from cnnviz.core.errors import CnnvizError
from cnnviz.results.attributions import Attributions, to_display
from cnnviz.results.filters import FilterResult
from cnnviz.results.maps import Activations, ClassPatterns
from cnnviz.results.store import Meta

__all__ = ["Activations", "Attributions", "ClassPatterns", "FilterResult", "Meta", "merge",
           "to_display"]


Result = Activations | ClassPatterns | FilterResult | Attributions


def merge(first: Result, *more: Result) -> Result:
    """Partial results of one run (filter ranges, data shards, batches of inputs) as one."""
    merged = first
    for part in more:
        if type(part) is not type(first):
            raise CnnvizError(f"cannot merge {type(part).__name__} into "
                              f"{type(first).__name__}")
        merged = merged.merged(part)  # type: ignore[arg-type]
    return merged
