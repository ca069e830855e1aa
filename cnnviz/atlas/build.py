"""Computing an atlas in parts that survive an interruption: the optimal input patterns of
every (layer, chunk of filters) and the statistics of every shard of the data, each written
to its own file as it finishes. A run that finds a part's file reads it instead of computing
it again, so an interrupted atlas continues where it stopped; the parts of another model,
data set or settings are refused."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.atlas.stats import MapStatistics, map_statistics
from cnnviz.core.errors import CnnvizError, Stopped
from cnnviz.core.fileio import write_text
from cnnviz.core.text import file_stem
from cnnviz.data.readers import Source
from cnnviz.model.facts import (
    ModelFacts,
    conv_layers,
    get_layer,
)
from cnnviz.model.heads import output_layer, resolve_unit_layer
from cnnviz.oip.filters import resume_filters, visualize_filters
from cnnviz.oip.presets import preset
from cnnviz.parts.engine import Part, ProgressFn, Work, run_parts
from cnnviz.results import FilterResult, merge
from cnnviz.version import __version__


@dataclass(frozen=True)
class AtlasSpec:
    """What an atlas covers and how: the layers (every convolution by default), the real
    images kept per filter, the ascent's steps and seed, filters per ascent part, images per
    data shard, the image size for a model that takes any, the memory budget and the float
    type of the ascent (``tables.PRECISIONS``)."""

    layers: tuple[str, ...] = ()
    k: int = 9
    steps: int = 100
    seed: int = 0
    chunk: int = 64
    shard: int = 2000
    size: tuple[int, int] | None = None
    budget: int = 512 * 2**20
    precision: str = "float32"


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


def plan_layers(facts: ModelFacts, layers: tuple[str, ...] = ()) -> list[str]:
    """The layers an atlas covers: those named (checked: maps or units), else every
    convolution and, for a classifier, its output layer (the classes page)."""
    if layers:
        for name in layers:
            resolve_unit_layer(facts.model, name)
        return list(layers)
    found = conv_layers(facts.model)
    if not found:
        raise CnnvizError(f"model '{facts.name}' has no convolution layer for an atlas")
    classes = output_layer(facts.model)
    return found + ([classes] if classes and classes not in found else [])


def compute_part(facts: ModelFacts, data: Source | None, spec: AtlasSpec, layers: list[str],
                 part: Part, on_progress: Callable[[int, Any], None] | None = None,
                 resume: FilterResult | MapStatistics | None = None) -> Any:
    """Compute one part (in this process, or in a worker that got the same arguments); an
    part stopped by Ctrl-C raises :class:`~cnnviz.core.errors.Stopped` with its state — an
    ascent's running images, or the statistics of the images seen — which ``resume``
    continues."""
    shape, _ = facts.default_size(spec.size)
    if not part.layer:
        assert data is not None
        first = part.first if resume is None else resume.stop  # the images not yet seen
        if resume is not None and first >= part.last:
            return resume
        try:
            found = map_statistics(facts, data, layers, spec.k, start=first, stop=part.last,
                                   size=shape[:2] if facts.any_size else None,
                                   on_progress=on_progress)
        except Stopped as stop:
            raise Stopped(merged_statistics([resume, stop.state])) from None
        return merged_statistics([resume, found])
    if isinstance(resume, FilterResult):
        found = resume_filters(facts, resume, budget=spec.budget, on_progress=on_progress)
    else:
        settings = _settings(facts, spec, part.layer)
        found = visualize_filters(facts, part.layer, list(range(part.first, part.last)),
                                  settings, size=spec.size, budget=spec.budget,
                                  on_progress=on_progress)
    if found.interrupted:  # kept as it stood; the next run continues it
        raise Stopped(found)
    return found


def _settings(facts: ModelFacts, spec: AtlasSpec, layer: str) -> Any:
    """The default preset's ascent for ``layer``, as the atlas runs it."""
    shape, _ = facts.default_size(spec.size)
    return preset("default", facts, layer, shape, seed=spec.seed, steps=spec.steps,
                  precision=spec.precision)


def plan_parts(facts: ModelFacts, data: Source | None, spec: AtlasSpec,
               layers: list[str]) -> list[Part]:
    """The atlas's parts: every (layer, chunk of filters), then every data shard; an ascent
    part's units are the steps its progress counts (precursors included)."""
    todo = [Part(layer, first, last, _settings(facts, spec, layer).counted_steps)
            for layer in layers
            for first, last in _chunks(int(get_layer(facts.model, layer).output.shape[-1]),
                                       spec.chunk)]
    size = (data.size() or 0) if data is not None else 0
    return todo + [Part("", a, min(a + spec.shard, size), min(spec.shard, size - a))
                   for a in range(0, size, spec.shard)]


class AtlasWork(Work):
    """The atlas's parts: every (layer, chunk of filters) ascent, then every data shard's
    statistics; kept under the site's ``parts/`` folder."""

    def __init__(self, facts: ModelFacts, data: Source | None, spec: AtlasSpec,
                 layers: list[str]) -> None:
        self.facts, self.data, self.spec, self.layers = facts, data, spec, layers

    def plan(self) -> list[Part]:
        return plan_parts(self.facts, self.data, self.spec, self.layers)

    def compute(self, part: Part, on_progress: Callable[[int, Any], None] | None = None,
                resume: FilterResult | MapStatistics | None = None) -> Any:
        return compute_part(self.facts, self.data, self.spec, self.layers, part, on_progress,
                            resume)

    def stamp(self) -> dict[str, Any]:
        return fingerprint(self.facts, self.data, self.spec, self.layers)

    def path(self, part: Part, folder: Path) -> Path:
        if not part.layer:
            return folder / "statistics" / f"shard-{part.first:08d}-{part.last:08d}.npz"
        return folder / file_stem(part.layer) / f"filters-{part.first:05d}-{part.last:05d}.npz"

    def load(self, part: Part, path: Path) -> Any:
        return (FilterResult if part.layer else MapStatistics).load(path)

    def save(self, part: Part, value: Any, path: Path) -> None:
        if part.layer:
            value.save(path, twin=False)
        else:
            value.save(path)


def compute_parts(facts: ModelFacts, parts: Path, data: Source | None, spec: AtlasSpec,
                  on_progress: ProgressFn | None = None, runner: Any = None) -> AtlasParts:
    """Every part of the atlas in ``parts`` (a folder), computed where its file is missing —
    in this process, or by ``runner`` (:class:`~cnnviz.parts.cluster.RayRunner`); each is
    saved as it finishes, stamped with the digests it came from."""
    layers = plan_layers(facts, spec.layers)
    _check_fingerprint(parts, facts, data, spec, layers)
    done = run_parts(AtlasWork(facts, data, spec, layers), runner, parts, on_progress)
    result = AtlasParts(layers, {}, None, done.reused, done.computed,
                        classes=tuple(data.class_names) if data is not None else ())
    for layer in layers:
        joined = merge(*done.of(layer))
        joined.params = {**joined.params, "requested": joined.filters.tolist()}
        result.filters[layer] = joined
    result.statistics = merged_statistics(done.of(""))
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


def fingerprint(facts: ModelFacts, data: Source | None, spec: AtlasSpec,
                layers: list[str]) -> dict[str, Any]:
    """What made an atlas's parts: the model's and the data's digests, the settings (with
    the layers), the preprocessing and the cnnviz version."""
    return {"model": facts.digest, "data": None if data is None else data.digest(),
            "spec": {**asdict(spec), "layers": layers}, "preprocess": facts.preprocess.name,
            "version": __version__}


def _check_fingerprint(parts: Path, facts: ModelFacts, data: Source | None, spec: AtlasSpec,
                       layers: list[str]) -> None:
    """Refuse parts made by another model, data set or settings; record ours for the next
    run."""
    mine = json.loads(json.dumps(fingerprint(facts, data, spec, layers)))  # tuples as lists
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
    from cnnviz.maps.activations import activations

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
