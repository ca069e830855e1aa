"""Results of forward passes: activations of inputs, and per-class patterns over a data set."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.results.store import (
    Meta,
    joined,
    named_arrays,
    numbered,
    read_result,
    save_arrays,
    stacked,
)


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
                  "labels": self.labels, **numbered("map", self.maps)}
        return save_arrays(path, "activations", arrays, self.meta, {}, maps=self.layers)

    @classmethod
    def load(cls, path: str | Path) -> Activations:
        """Read what :meth:`save` wrote."""
        return read_result(path, "activations", lambda data, meta, _, saved: cls(
            data["inputs"], named_arrays("map", data, saved["maps"]), data["probabilities"],
            data.get("labels"), meta), ("inputs", "map_", "probabilities", "labels"), ("labels",))

    def merged(self, other: Activations) -> Activations:
        """These inputs followed by ``other``'s (the same model and layers)."""
        self.meta.same_run(other.meta, "activations")
        if other.layers != self.layers:
            raise CnnvizError("cannot merge activations of different layers")
        parts = [self, other]
        return Activations(np.concatenate([self.inputs, other.inputs]),
                           stacked(self.maps, other.maps),
                           np.concatenate([self.probabilities, other.probabilities]),
                           joined(parts, "labels"), self.meta)


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
    images: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        """Layer names, as computed."""
        return list(self.means)

    def map_images(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """Per class the mean image of every map of ``layer`` (classes, h, w, maps), and each
        minus the mean over all images (the difference from the all-class mean)."""
        if layer not in self.images:
            raise CnnvizError(f"no mean map images of {layer}: compute them with map_images "
                              "(cnnviz patterns --maps)")
        means = self.images[layer]
        overall = np.tensordot(self.counts, means, axes=1) / max(int(self.counts.sum()), 1)
        return means, means - overall[None]

    def contrast(self, layer: str) -> np.ndarray:
        """(classes, units): each class's mean minus the map's mean over the classes that have
        images (unweighted) — what answers to a class, not what is on for every class."""
        means = np.asarray(self.means[layer], np.float64)
        seen = np.asarray(self.counts) > 0
        return means - (means[seen].mean(axis=0, keepdims=True) if seen.any() else 0.0)

    def values(self, layer: str, kind: str = "contrast") -> np.ndarray:
        """The ``contrast`` or the raw ``means``, (classes, units)."""
        from cnnviz.core.tables import PATTERN_VALUES

        PATTERN_VALUES.check(kind)
        return self.contrast(layer) if kind == "contrast" else self.means[layer]

    def top_maps(self, layer: str, k: int = 5, values: str = "contrast") -> dict[str, list[int]]:
        """For each class, the ``k`` maps (units) with the highest ``values`` (the contrast
        with the other classes, or the raw means), highest first."""
        order = np.argsort(-self.values(layer, values), axis=1, kind="stable")[:, :k]
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

    def save(self, path: str | Path, twin: bool = True) -> tuple[Path, ...]:
        """Write ``path`` (.npz) and its ``.json`` twin (with ``twin=False`` the metadata goes
        inside the one ``.npz``: a checkpoint)."""
        arrays = {"counts": self.counts, **numbered("mean", self.means),
                  **numbered("std", self.stds), **numbered("image", self.images)}
        return save_arrays(path, "class patterns", arrays, self.meta, self.params, twin=twin,
                           maps=self.layers, class_names=list(self.class_names),
                           image_layers=list(self.images))

    @classmethod
    def load(cls, path: str | Path) -> ClassPatterns:
        """Read what :meth:`save` wrote."""
        return read_result(path, "class patterns", lambda data, meta, params, saved: cls(
            named_arrays("mean", data, saved["maps"]), named_arrays("std", data, saved["maps"]),
            data["counts"], tuple(saved["class_names"]), meta, params,
            named_arrays("image", data, saved.get("image_layers", []))),
            ("counts", "mean_", "std_", "image_"), ("counts",))

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
        weight = [p.counts.reshape(-1, 1, 1, 1) for p in (self, other)]
        images = {name: (self.images[name] * weight[0] + other.images[name] * weight[1])
                  / np.maximum(counts, 1).reshape(-1, 1, 1, 1)
                  for name in self.images if name in other.images}
        return ClassPatterns(means, stds, counts, self.class_names,
                             replace(self.meta, data=data), params, images)
