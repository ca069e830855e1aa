"""Computing an atlas in parts that survive an interruption: the optimal input patterns of
every (layer, chunk of filters) and the statistics of every shard of the data, each written
to its own file as it finishes. A run that finds a part's file reads it instead of computing
it again, so an interrupted atlas continues where it stopped; the parts of another model,
data set or settings are refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.atlas.stats import MapStatistics, map_statistics
from cnnviz.errors import CnnvizError
from cnnviz.fileio import write_text
from cnnviz.models import ModelFacts, conv_layers, get_layer, resolve_map_layers
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.presets import preset
from cnnviz.readers import Source
from cnnviz.results import FilterResult
from cnnviz.text import file_stem
from cnnviz.version import __version__

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class AtlasSpec:
    """What an atlas covers and how: the layers (every convolution by default), the real
    images kept per filter, the ascent's steps and seed, filters per ascent part, images per
    data shard, the image size for a model that takes any, and the memory budget."""

    layers: tuple[str, ...] = ()
    k: int = 9
    steps: int = 100
    seed: int = 0
    chunk: int = 64
    shard: int = 2000
    size: tuple[int, int] | None = None
    budget: int = 512 * 2**20


@dataclass
class AtlasParts:
    """The computed parts, joined: per layer its filter results, and the statistics of the
    whole data set (``None`` without data)."""

    layers: list[str]
    filters: dict[str, FilterResult]
    statistics: MapStatistics | None
    reused: int = 0
    computed: int = 0
    classes: tuple[str, ...] = field(default_factory=tuple)

    def count(self, computed: bool) -> None:
        """One more part, computed now or read from an earlier run."""
        if computed:
            self.computed += 1
        else:
            self.reused += 1


def plan_layers(facts: ModelFacts, layers: tuple[str, ...] = ()) -> list[str]:
    """The layers an atlas covers: those named (checked), else every convolution."""
    if layers:
        return resolve_map_layers(facts.model, list(layers))
    found = conv_layers(facts.model)
    if not found:
        raise CnnvizError(f"model '{facts.name}' has no convolution layer for an atlas")
    return found


def compute_parts(facts: ModelFacts, parts: Path, data: Source | None, spec: AtlasSpec,
                  on_progress: ProgressFn | None = None) -> AtlasParts:
    """Every part of the atlas in ``parts`` (a folder), computed where its file is missing."""
    layers = plan_layers(facts, spec.layers)
    _check_fingerprint(parts, facts, data, spec, layers)
    chunks = {layer: _chunks(int(get_layer(facts.model, layer).output.shape[-1]), spec.chunk)
              for layer in layers}
    size = (data.size() or 0) if data is not None else 0
    shards = [(a, min(a + spec.shard, size)) for a in range(0, size, spec.shard)]
    progress = _Progress(sum(len(c) for c in chunks.values()) * spec.steps + size, on_progress)
    result = AtlasParts(layers, {}, None,
                        classes=tuple(data.class_names) if data is not None else ())
    for layer in layers:
        pieces = [_filter_part(facts, parts, layer, span, spec, result, progress)
                  for span in chunks[layer]]
        joined = pieces[0]
        for piece in pieces[1:]:
            joined = joined.merged(piece)
        joined.params = {**joined.params, "requested": joined.filters.tolist()}
        result.filters[layer] = joined
    for start, stop in shards:
        assert data is not None
        path = parts / "statistics" / f"shard-{start:08d}-{stop:08d}.npz"
        found = _read(path, MapStatistics.load)
        result.count(computed=found is None)
        if found is None:
            shape, _ = facts.default_size(spec.size)
            found = map_statistics(facts, data, layers, spec.k, start=start, stop=stop,
                                   size=shape[:2] if facts.any_size else None,
                                   on_progress=progress.within)
            found.save(path)
        progress.advance(stop - start)
        result.statistics = found if result.statistics is None \
            else result.statistics.merged(found)
    return result


class _Progress:
    """One count over the whole atlas: ascent steps and real images."""

    def __init__(self, total: int, report: ProgressFn | None) -> None:
        self.done, self.total, self.report = 0, total, report

    def within(self, count: int, _: Any = None) -> None:
        """``count`` units into the running part."""
        if self.report:
            self.report(self.done + count, self.total)

    def advance(self, count: int) -> None:
        """A part of ``count`` units finished."""
        self.done += count
        self.within(0)


def _filter_part(facts: ModelFacts, parts: Path, layer: str, span: tuple[int, int],
                 spec: AtlasSpec, result: AtlasParts, progress: _Progress) -> FilterResult:
    """The patterns of filters ``span`` of ``layer``: read, or computed and saved."""
    first, last = span
    path = parts / file_stem(layer) / f"filters-{first:05d}-{last:05d}.npz"
    found = _read(path, FilterResult.load)
    result.count(computed=found is None)
    if found is None:
        shape, _ = facts.default_size(spec.size)
        settings = preset("default", facts, layer, shape, seed=spec.seed, steps=spec.steps)
        found = visualize_filters(facts, layer, list(range(first, last)), settings,
                                  size=spec.size, budget=spec.budget,
                                  on_progress=progress.within)
        if found.interrupted:  # the finished parts stay; the next run continues
            raise KeyboardInterrupt
        found.save(path, twin=False)
    progress.advance(spec.steps)
    return found


def _chunks(filters: int, chunk: int) -> list[tuple[int, int]]:
    if chunk <= 0:
        raise CnnvizError(f"--chunk must be positive, got {chunk}")
    return [(a, min(a + chunk, filters)) for a in range(0, filters, chunk)]


def _read(path: Path, load: Callable[[Path], Any]) -> Any:
    """A finished part, or ``None`` where there is none (or only a damaged one: it is made
    again)."""
    if not path.exists():
        return None
    try:
        return load(path)
    except CnnvizError:
        return None


def _check_fingerprint(parts: Path, facts: ModelFacts, data: Source | None, spec: AtlasSpec,
                       layers: list[str]) -> None:
    """Refuse parts made by another model, data set or settings; record ours for the next
    run."""
    mine = {"model": facts.digest, "data": None if data is None else data.digest(),
            "spec": {**asdict(spec), "layers": layers}, "preprocess": facts.preprocess.name,
            "version": __version__}
    mine = json.loads(json.dumps(mine))  # tuples as lists, as they read back
    path = parts / "fingerprint.json"
    if path.exists():
        try:
            theirs = json.loads(path.read_text())
        except (OSError, ValueError):
            theirs = None
        if theirs != mine:
            differs = [key for key in mine if theirs is None or theirs.get(key) != mine[key]]
            raise CnnvizError(f"{parts.parent} holds the parts of an atlas of another "
                              f"{' and '.join(differs) or 'run'}: pass --force to start "
                              "again, or choose another --out")
        return
    write_text(path, json.dumps(mine, indent=1) + "\n")


def overlay_maps(facts: ModelFacts, layer: str, images: np.ndarray) -> np.ndarray:
    """Each model-ready image's maps of ``layer``: (N, h, w, maps), for the overlays."""
    from cnnviz.activations import activations

    return activations(facts, images, [layer]).maps[layer]
