"""The parts of ``filters`` (chunks of a layer's filters, each an ascent with its own real-image
comparison) and of ``patterns`` (shards of the data, whose sums merge exactly). Seeds are per
filter and statistics are sums, so the merged parts equal one run in this process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cnnviz.core.errors import CnnvizError
from cnnviz.data.readers import Source
from cnnviz.data.sources import shard
from cnnviz.maps.patterns import class_patterns
from cnnviz.model.facts import ModelFacts
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.settings import Settings
from cnnviz.parts.engine import Part, Tally, Work, run_parts, run_pass
from cnnviz.results import ClassPatterns, FilterResult, merge
from cnnviz.version import __version__


class FilterWork(Work):
    """The optimal input patterns of ``filters`` of ``layer``, ``chunk`` filters a part; the
    keyword ``options`` are :func:`~cnnviz.oip.filters.visualize_filters`'s."""

    def __init__(self, facts: ModelFacts, layer: str, filters: list[int], settings: Settings,
                 chunk: int = 64, **options: Any) -> None:
        self.facts, self.layer, self.filters = facts, layer, [int(f) for f in filters]
        self.settings, self.chunk, self.options = settings, max(1, chunk), options

    def plan(self) -> list[Part]:
        return [Part(self.layer, a, min(a + self.chunk, len(self.filters)),
                     self.settings.counted_steps)
                for a in range(0, len(self.filters), self.chunk)]

    def compute(self, part: Part, on_progress: Callable[[int, Any], None] | None = None) -> Any:
        found = visualize_filters(self.facts, self.layer, self.filters[part.first:part.last],
                                  self.settings, on_progress=on_progress, **self.options)
        if found.interrupted:
            raise KeyboardInterrupt
        return found

    def stamp(self) -> dict[str, Any]:
        reference = self.options.get("reference_images")
        return {"model": self.facts.digest,
                "data": None if reference is None else reference.digest(),
                "settings": {"layer": self.layer, "filters": self.filters,
                             "settings": repr(self.settings.to_params()), "version": __version__}}


def filters_in_parts(work: FilterWork, runner: Any = None,
                     on_progress: Callable[[int, int], None] | None = None) -> FilterResult:
    """The filters of ``work`` computed in parts (by ``runner``: in this process, or on Ray)
    and merged into the result one run gives."""
    found = run_parts(work, runner, on_progress=on_progress).of(work.layer)
    for part in found:  # each part knows the whole run's order, so the merge keeps it
        part.params = {**part.params, "requested": list(work.filters)}
    return merge(*found)


class PatternWork(Work):
    """Class patterns of ``layers`` over ``data`` (a labelled source), ``shard`` images a part;
    the keyword ``options`` are :func:`~cnnviz.maps.patterns.class_patterns`'s."""

    def __init__(self, facts: ModelFacts, data: Source, layers: list[str], shard: int = 2000,
                 **options: Any) -> None:
        self.facts, self.data, self.layers = facts, data, list(layers)
        self.shard, self.options = max(1, shard), options

    def plan(self) -> list[Part]:
        size = self.data.size()
        if size is None:  # read in one pass: its size is not known before
            return [Part("", 0, -1, 0)]
        return [Part("", a, min(a + self.shard, size), min(self.shard, size - a))
                for a in range(0, size, self.shard)]

    def compute(self, part: Part, on_progress: Callable[[int, Any], None] | None = None,
                partial: Any = None) -> Any:
        data = self.data if part.last < 0 else shard(self.data, part.first, part.last)
        return class_patterns(self.facts, data, None, self.layers, on_progress=on_progress,
                              on_checkpoint=None if partial is None else
                              lambda value, done: partial(part, value, done),
                              checkpoint_every=0.0 if partial is None else partial.every,
                              **self.options)

    def stamp(self) -> dict[str, Any]:
        return {"model": self.facts.digest, "data": self.data.digest(),
                "settings": {"layers": self.layers, "options": repr(sorted(
                    self.options.items())), "version": __version__}}


def patterns_in_parts(work: PatternWork, runner: Any = None,
                      on_progress: Callable[[int, int], None] | None = None, *,
                      tally: Tally | None = None,
                      on_checkpoint: Callable[[Tally], None] | None = None,
                      checkpoint_every: float = 60.0) -> ClassPatterns:
    """The class patterns of ``work`` computed in data shards and merged exactly; ``tally``
    is what an interrupted run covered, ``on_checkpoint`` gets what is covered every
    ``checkpoint_every`` seconds, and Ctrl-C raises :class:`~cnnviz.core.errors.Stopped`
    with it (:func:`~cnnviz.parts.engine.run_pass`)."""
    joined = run_pass(work, tally, runner, on_progress, on_checkpoint, checkpoint_every).value
    if joined is None:
        raise CnnvizError(f"{work.data.name}: no images (an empty folder, file or split)")
    joined.meta = replace(joined.meta, data_digest=work.data.digest())  # the whole data's
    return joined
