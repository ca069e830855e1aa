"""What computations return: plain dataclasses of numpy arrays with one metadata layout, saved as
``.npz`` (arrays) + ``.json`` (metadata) and merged when a run was made in parts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.errors import CnnvizError
from cnnviz.fileio import load_results, save_results
from cnnviz.preprocess import Preprocess, named
from cnnviz.version import __version__


@dataclass(frozen=True)
class Meta:
    """Where a result came from: the model, the layers it covers, the data (and its class
    names), how pixels were preprocessed, the seed and the cnnviz version that made it."""

    model: str = ""
    preprocess: Preprocess = field(default_factory=lambda: named("unit"))
    layers: tuple[str, ...] = ()
    data: str | None = None
    seed: int | None = None
    version: str = __version__
    classes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"model": self.model, "preprocess": self.preprocess.to_params(),
                "layers": list(self.layers), "data": self.data, "classes": list(self.classes),
                "seed": self.seed, "version": self.version}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Meta:
        """The metadata :meth:`to_json` wrote."""
        return cls(values["model"], Preprocess.from_params(values["preprocess"]),
                   tuple(values["layers"]), values.get("data"), values.get("seed"),
                   values.get("version", "?"), tuple(values.get("classes", ())))

    def class_name(self, label: int) -> str:
        """The name of class ``label`` (its number where the data named none)."""
        return self.classes[label] if 0 <= label < len(self.classes) else str(label)

    def display(self, images: np.ndarray) -> np.ndarray:
        """Model inputs → display pixels (0..1, RGB order)."""
        return self.preprocess.to_unit(images)

    def same_run(self, other: Meta, what: str) -> None:
        """Refuse to merge parts of different runs (other model, layers or preprocessing)."""
        for name in ("model", "layers", "preprocess"):
            if getattr(self, name) != getattr(other, name):
                raise CnnvizError(f"cannot merge {what} of different runs: {name} "
                                  f"{getattr(self, name)!r} vs {getattr(other, name)!r}")


def _save(path: str | Path, kind: str, arrays: dict[str, Any], meta: Meta,
          params: dict[str, Any], **extra: Any) -> tuple[Path, Path]:
    kept = {key: value for key, value in arrays.items() if value is not None}
    return save_results(path, kind, kept, {"meta": meta.to_json(), "params": params, **extra})


def _load(path: str | Path, kind: str) -> tuple[dict[str, np.ndarray], Meta, dict[str, Any],
                                                dict[str, Any]]:
    arrays, saved = load_results(path, kind)
    if not isinstance(saved.get("meta"), dict) or "preprocess" not in saved["meta"]:
        raise CnnvizError(f"{Path(path).with_suffix('.npz')} was saved by an older cnnviz: "
                          "compute it again")
    return arrays, Meta.from_json(saved["meta"]), saved.get("params", {}), saved


def _numbered(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"conv": a, "pool": b}`` → ``{"map_0": a, "map_1": b}``: npz keys that any layer or
    method name fits (names go to the JSON, in order)."""
    return {f"{prefix}_{i}": value for i, value in enumerate(arrays.values())}


def _named(prefix: str, data: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """What :func:`_numbered` wrote, under its names again."""
    return {name: data[f"{prefix}_{i}"] for i, name in enumerate(names)}


def _stacked(first: dict[str, np.ndarray], second: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
    """Per key, the first part's rows followed by the second's."""
    return {name: np.concatenate([first[name], second[name]]) for name in first}


def _joined(parts: list[Any], name: str) -> np.ndarray | None:
    values = [getattr(p, name) for p in parts]
    return None if any(v is None for v in values) else np.concatenate(values)


@dataclass
class Activations:
    """Layer outputs for a batch of inputs, with the model's outputs.

    ``maps[layer]`` is (N, height, width, maps) for map layers and (N, units) otherwise;
    ``inputs`` are the model inputs in the model's value range."""

    inputs: np.ndarray
    maps: dict[str, np.ndarray]
    probabilities: np.ndarray
    labels: np.ndarray | None = None
    meta: Meta = field(default_factory=Meta)

    @property
    def layers(self) -> list[str]:
        """Layer names in model order."""
        return list(self.maps)

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class of each input."""
        return np.argmax(self.probabilities, axis=-1)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (.npz arrays) and the same name with ``.json`` (metadata)."""
        arrays = {"inputs": self.inputs, "probabilities": self.probabilities,
                  "labels": self.labels, **_numbered("map", self.maps)}
        return _save(path, "activations", arrays, self.meta, {}, maps=self.layers)

    @classmethod
    def load(cls, path: str | Path) -> Activations:
        """Read what :meth:`save` wrote."""
        data, meta, _, saved = _load(path, "activations")
        return cls(data["inputs"], _named("map", data, saved["maps"]), data["probabilities"],
                   data.get("labels"), meta)

    def merged(self, other: Activations) -> Activations:
        """These inputs followed by ``other``'s (the same model and layers)."""
        self.meta.same_run(other.meta, "activations")
        if other.layers != self.layers:
            raise CnnvizError("cannot merge activations of different layers")
        parts = [self, other]
        return Activations(np.concatenate([self.inputs, other.inputs]),
                           _stacked(self.maps, other.maps),
                           np.concatenate([self.probabilities, other.probabilities]),
                           _joined(parts, "labels"), self.meta)


@dataclass
class ClassPatterns:
    """Per class, the mean (and standard deviation) of each map's mean activation — or of each
    unit, for dense layers — over a labelled data set."""

    means: dict[str, np.ndarray]
    stds: dict[str, np.ndarray]
    counts: np.ndarray
    class_names: tuple[str, ...]
    meta: Meta = field(default_factory=Meta)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        """Layer names, as computed."""
        return list(self.means)

    def top_maps(self, layer: str, k: int = 5) -> dict[str, list[int]]:
        """For each class, the ``k`` maps (units) with the highest mean, highest first."""
        order = np.argsort(-self.means[layer], axis=1, kind="stable")[:, :k]
        return {name: order[c].tolist() for c, name in enumerate(self.class_names)}

    def preferred_class(self, layer: str) -> np.ndarray:
        """The class on which each map (unit) has its highest mean."""
        return np.argmax(self.means[layer], axis=0)

    def selectivity(self, layer: str) -> np.ndarray:
        """(best class mean − mean of the others) / (|best| + |others| + ε), per map: 1 for a
        map that fires for one class only, 0 for one that fires alike for all."""
        means = self.means[layer]
        best = means.max(axis=0)
        others = (means.sum(axis=0) - best) / max(1, means.shape[0] - 1)
        return (best - others) / (np.abs(best) + np.abs(others) + 1e-12)

    def unit_kind(self, layer: str) -> str:
        """"map" for a layer with 2-D maps, "unit" for a dense layer."""
        return "map" if self.params.get("kinds", {}).get(layer) == "maps" else "unit"

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (.npz) and its ``.json`` twin."""
        arrays = {"counts": self.counts, **_numbered("mean", self.means),
                  **_numbered("std", self.stds)}
        return _save(path, "class patterns", arrays, self.meta, self.params,
                     maps=self.layers, class_names=list(self.class_names))

    @classmethod
    def load(cls, path: str | Path) -> ClassPatterns:
        """Read what :meth:`save` wrote."""
        data, meta, params, saved = _load(path, "class patterns")
        return cls(_named("mean", data, saved["maps"]), _named("std", data, saved["maps"]),
                   data["counts"], tuple(saved["class_names"]), meta, params)

    def merged(self, other: ClassPatterns) -> ClassPatterns:
        """The patterns of both data shards together, as if computed in one pass."""
        self.meta.same_run(other.meta, "class patterns")
        if other.layers != self.layers or other.class_names != self.class_names:
            raise CnnvizError("cannot merge class patterns of different layers or classes")
        counts = self.counts + other.counts
        safe = np.maximum(counts, 1)[:, None]
        means, stds = {}, {}
        for name in self.layers:
            sums = sum(p.means[name] * p.counts[:, None] for p in (self, other))
            squares = sum((p.stds[name] ** 2 + p.means[name] ** 2) * p.counts[:, None]
                          for p in (self, other))
            means[name] = sums / safe
            stds[name] = np.sqrt(np.maximum(squares / safe - means[name] ** 2, 0.0))
        params = {**self.params, "images": int(counts.sum())}
        data = self.meta.data if self.meta.data == other.meta.data else \
            f"{self.meta.data} + {other.meta.data}"
        return ClassPatterns(means, stds, counts, self.class_names,
                             replace(self.meta, data=data), params)


@dataclass
class FilterResult:
    """Synthesized images for filters of a layer, how strongly each activates its filter, and
    everything needed to redraw them without recomputing (``params``: the ascent settings)."""

    filters: np.ndarray
    images: np.ndarray
    activation: np.ndarray
    post_max: np.ndarray
    curves: np.ndarray
    meta: Meta = field(default_factory=Meta)
    params: dict[str, Any] = field(default_factory=dict)
    best_real: np.ndarray | None = None
    notes: dict[int, str] = field(default_factory=dict)
    interrupted: bool = False
    example_images: np.ndarray | None = None
    example_values: np.ndarray | None = None
    example_indices: np.ndarray | None = None
    example_labels: np.ndarray | None = None

    @property
    def layer(self) -> str:
        """The layer whose filters these are."""
        return self.meta.layers[0]

    @property
    def dead(self) -> np.ndarray:
        """Filters whose map stays zero after the activation, even for their own image."""
        return self.post_max <= 0

    @property
    def ratio(self) -> np.ndarray:
        """Activation over the filter's best real image (NaN where that is ≤ 0 or unknown)."""
        if self.best_real is None:
            return np.full(len(self.filters), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.best_real > 0, self.activation / self.best_real, np.nan)

    @property
    def beats_real(self) -> np.ndarray:
        """Whether each image activates its filter more than any real image does."""
        if self.best_real is None:
            return np.zeros(len(self.filters), bool)
        return self.activation > self.best_real

    @property
    def requested(self) -> list[int]:
        """The filters the run was asked for (some may be missing after an interruption)."""
        return [int(f) for f in self.params.get("requested", self.filters)]

    def summary(self) -> str:
        """One line: filters, chunk size, mean activation, dead filters, real-image share."""
        live = ~self.dead
        mean = self.activation.mean() if live.size else float("nan")
        line = (f"{self.layer}: {len(self.filters)} filters in chunks of "
                f"{self.params.get('chunk', '?')}; mean activation {mean:.3f}; "
                f"{int(self.dead.sum())} dead")
        if self.best_real is not None and live.any():
            line += (f"; {self.beats_real[live].mean():.0%} of live filters beat their best "
                     f"real image of {self.meta.data or 'the data'}")
        return line

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (.npz) and its ``.json`` twin."""
        arrays = {"filters": self.filters, "images": self.images, "activation": self.activation,
                  "post_max": self.post_max, "curves": self.curves, "best_real": self.best_real,
                  "example_images": self.example_images, "example_values": self.example_values,
                  "example_indices": self.example_indices, "example_labels": self.example_labels}
        return _save(path, "filters", arrays, self.meta, self.params,
                     notes={str(k): v for k, v in self.notes.items()},
                     interrupted=self.interrupted)

    @classmethod
    def load(cls, path: str | Path) -> FilterResult:
        """Read what :meth:`save` wrote."""
        a, meta, params, saved = _load(path, "filters")
        return cls(a["filters"], a["images"], a["activation"], a["post_max"], a["curves"], meta,
                   params, a.get("best_real"), {int(k): v for k, v in saved["notes"].items()},
                   saved["interrupted"], a.get("example_images"), a.get("example_values"),
                   a.get("example_indices"), a.get("example_labels"))

    def merged(self, other: FilterResult) -> FilterResult:
        """This result and ``other`` (more filters of the same run) as one, in the order the
        run requested its filters."""
        self.meta.same_run(other.meta, "filter results")
        requested = self.requested
        parts = [self, other]
        filters = np.concatenate([self.filters, other.filters])
        rank = {f: i for i, f in enumerate(requested)}
        order = np.argsort([rank.get(int(f), len(rank) + int(f)) for f in filters], kind="stable")

        def pick(name: str) -> np.ndarray | None:
            values = _joined(parts, name)
            return None if values is None else values[order]

        done = {int(f) for f in filters}
        return FilterResult(
            filters[order], pick("images"), pick("activation"), pick("post_max"),
            pick("curves"), self.meta, self.params, pick("best_real"),
            {**self.notes, **other.notes}, any(f not in done for f in requested),
            pick("example_images"), pick("example_values"), pick("example_indices"),
            pick("example_labels"))


@dataclass
class Attributions:
    """Attribution maps of inputs for target classes: ``maps[method]`` is (N, H, W, C) for
    gradient methods and (N, H, W) for class activation maps, as the method computed them."""

    inputs: np.ndarray
    maps: dict[str, np.ndarray]
    targets: np.ndarray
    probabilities: np.ndarray
    meta: Meta = field(default_factory=Meta)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """Method names, as computed."""
        return list(self.maps)

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class of each input."""
        return np.argmax(self.probabilities, axis=-1)

    def heatmaps(self) -> dict[str, np.ndarray]:
        """Per method, one non-negative (N, H, W) display map per input."""
        return {name: to_heatmap(maps) for name, maps in self.maps.items()}

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (.npz) and its ``.json`` twin."""
        arrays = {"inputs": self.inputs, "targets": self.targets,
                  "probabilities": self.probabilities, **_numbered("map", self.maps)}
        return _save(path, "attributions", arrays, self.meta, self.params, maps=self.methods)

    @classmethod
    def load(cls, path: str | Path) -> Attributions:
        """Read what :meth:`save` wrote."""
        a, meta, params, saved = _load(path, "attributions")
        return cls(a["inputs"], _named("map", a, saved["maps"]), a["targets"],
                   a["probabilities"], meta, params)

    def merged(self, other: Attributions) -> Attributions:
        """These inputs followed by ``other``'s (the same model and methods)."""
        self.meta.same_run(other.meta, "attributions")
        if other.methods != self.methods:
            raise CnnvizError("cannot merge attributions of different methods")
        return Attributions(np.concatenate([self.inputs, other.inputs]),
                            _stacked(self.maps, other.maps),
                            np.concatenate([self.targets, other.targets]),
                            np.concatenate([self.probabilities, other.probabilities]),
                            self.meta, self.params)


def to_heatmap(attribution: np.ndarray) -> np.ndarray:
    """One non-negative map per image: |attribution| maxed over channels for (N, H, W, C)."""
    attribution = np.asarray(attribution)
    return np.abs(attribution).max(axis=-1) if attribution.ndim == 4 else np.abs(attribution)


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
