"""Computing an atlas in parts that survive an interruption: the optimal input patterns of
every (layer, chunk of filters) and the statistics of every shard of the data, each written
to its own file as it finishes. A run that finds a part's file reads it instead of computing
it again, so an interrupted atlas continues where it stopped; the parts of another model,
data set or settings are refused."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.atlas.stats import MapStatistics, map_statistics
from cnnviz.data.readers import Source
from cnnviz.errors import CnnvizError
from cnnviz.fileio import write_text
from cnnviz.models import ModelFacts, conv_layers, get_layer, resolve_map_layers
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.presets import preset
from cnnviz.results import FilterResult, merge
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


@dataclass(frozen=True)
class Part:
    """One piece of an atlas: the patterns of filters ``first``..``last`` of ``layer``, or
    (``layer`` empty) the statistics of data shard ``first``..``last``; ``units`` counts its
    ascent steps or images for the progress bar."""

    layer: str
    first: int
    last: int
    units: int

    def path(self, parts: Path) -> Path:
        """Where the part's file lives under ``parts``."""
        if not self.layer:
            return parts / "statistics" / f"shard-{self.first:08d}-{self.last:08d}.npz"
        return parts / file_stem(self.layer) / f"filters-{self.first:05d}-{self.last:05d}.npz"

    def read(self, parts: Path) -> Any:
        """The part an earlier run left, or ``None`` (none, or a damaged one)."""
        return _read(self.path(parts), MapStatistics.load if not self.layer
                     else FilterResult.load)


def compute_part(facts: ModelFacts, data: Source | None, spec: AtlasSpec, layers: list[str],
                 part: Part, on_progress: Callable[[int, Any], None] | None = None) -> Any:
    """Compute one part (in this process, or in a worker that got the same arguments)."""
    shape, _ = facts.default_size(spec.size)
    if not part.layer:
        assert data is not None
        return map_statistics(facts, data, layers, spec.k, start=part.first, stop=part.last,
                              size=shape[:2] if facts.any_size else None,
                              on_progress=on_progress)
    settings = preset("default", facts, part.layer, shape, seed=spec.seed, steps=spec.steps)
    found = visualize_filters(facts, part.layer, list(range(part.first, part.last)), settings,
                              size=spec.size, budget=spec.budget, on_progress=on_progress)
    if found.interrupted:  # the finished parts stay; the next run continues
        raise KeyboardInterrupt
    return found


class InProcess:
    """Runs the parts one after the other in this process."""

    def run(self, facts: ModelFacts, data: Source | None, spec: AtlasSpec, layers: list[str],
            todo: list[Part], progress: _Progress) -> Iterator[tuple[Part, Any]]:
        """Each part with its result, as it finishes."""
        for part in todo:
            yield part, compute_part(facts, data, spec, layers, part, progress.within)


def plan_parts(facts: ModelFacts, data: Source | None, spec: AtlasSpec,
               layers: list[str]) -> list[Part]:
    """The atlas's parts: every (layer, chunk of filters), then every data shard."""
    todo = [Part(layer, first, last, spec.steps) for layer in layers
            for first, last in _chunks(int(get_layer(facts.model, layer).output.shape[-1]),
                                       spec.chunk)]
    size = (data.size() or 0) if data is not None else 0
    return todo + [Part("", a, min(a + spec.shard, size), min(spec.shard, size - a))
                   for a in range(0, size, spec.shard)]


def compute_parts(facts: ModelFacts, parts: Path, data: Source | None, spec: AtlasSpec,
                  on_progress: ProgressFn | None = None, runner: Any = None) -> AtlasParts:
    """Every part of the atlas in ``parts`` (a folder), computed where its file is missing —
    in this process, or by ``runner`` (:class:`~cnnviz.atlas.ray.RayRunner`); each is saved as
    it finishes."""
    layers = plan_layers(facts, spec.layers)
    _check_fingerprint(parts, facts, data, spec, layers)
    plan = plan_parts(facts, data, spec, layers)
    progress = _Progress(sum(p.units for p in plan), on_progress)
    found = {part: part.read(parts) for part in plan}
    result = AtlasParts(layers, {}, None,
                        classes=tuple(data.class_names) if data is not None else ())
    for part in plan:
        if found[part] is not None:
            result.count(computed=False)
            progress.advance(part.units)
    todo = [part for part in plan if found[part] is None]
    for part, value in (runner or InProcess()).run(facts, data, spec, layers, todo, progress):
        if part.layer:
            value.save(part.path(parts), twin=False)
        else:
            value.save(part.path(parts))
        found[part] = value
        result.count(computed=True)
        progress.advance(part.units)
    for layer in layers:
        joined = merge(*(found[p] for p in plan if p.layer == layer))
        joined.params = {**joined.params, "requested": joined.filters.tolist()}
        result.filters[layer] = joined
    result.statistics = merged_statistics(found[p] for p in plan if not p.layer)
    return result


def merged_statistics(shards: Iterable[MapStatistics | None]) -> MapStatistics | None:
    """The statistics of the shards given (``None`` ones skipped) as one, or ``None``."""
    joined = None
    for shard in shards:
        if shard is not None:
            joined = shard if joined is None else joined.merged(shard)
    return joined


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


def read_atlas(out: Path, facts: ModelFacts, data: Source | None = None) -> AtlasParts:
    """The parts an atlas run left in ``out`` (its site folder), without computing any: the
    filters of each layer found, and the statistics when they were made from ``data``. An atlas
    of another model is refused."""
    parts = out / "parts"
    try:
        made = json.loads((parts / "fingerprint.json").read_text())
    except (OSError, ValueError):
        raise CnnvizError(f"{out} holds no atlas (no readable parts/fingerprint.json): make one "
                          "with cnnviz atlas --out") from None
    if made.get("model") != facts.digest:
        raise CnnvizError(f"the atlas in {out} was made from another model (or other weights) "
                          f"than {facts.name}")
    layers = [name for name in made.get("spec", {}).get("layers", [])
              if isinstance(name, str) and (parts / file_stem(name)).is_dir()]
    atlas = AtlasParts(layers, {}, None)
    for layer in layers:
        found = [piece for path in sorted((parts / file_stem(layer)).glob("filters-*.npz"))
                 if (piece := _read(path, FilterResult.load)) is not None]
        if found:
            atlas.filters[layer] = merge(*found)
    same_data = data is not None and made.get("data") == data.digest()
    atlas.statistics = merged_statistics(
        _read(path, MapStatistics.load)
        for path in (sorted((parts / "statistics").glob("shard-*.npz")) if same_data else []))
    atlas.layers = list(atlas.filters)
    return atlas
