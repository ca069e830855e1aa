"""What the live explorer computes, with the model loaded once and its compiled passes kept: for
an input, the model's output, one layer's maps and an attribution; for a filter, its optimal
input pattern, the real images that excite it most and its class profile — from an atlas when
one is given, else computed on the first request and kept."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.atlas.build import AtlasParts, read_atlas
from cnnviz.atlas.site import example_strips
from cnnviz.atlas.stats import MapStatistics, map_statistics
from cnnviz.attribution import ATTRIBUTIONS, CAMS, METHODS, cam_layer, make_method
from cnnviz.core.backend import compile_step, keras
from cnnviz.core.errors import CnnvizError
from cnnviz.data import to_model_input, to_unit_range
from cnnviz.data.sources import data_for, model_inputs
from cnnviz.model.facts import (
    ModelFacts,
    as_list,
    conv_layers,
    get_layer,
    map_layers,
)
from cnnviz.model.graph import feature_model
from cnnviz.model.heads import output_layer
from cnnviz.model.receptive import receptive_field
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.presets import preset
from cnnviz.results import to_display

DRAWN = (28, 28, 1)  # models that take this get a drawing canvas


@dataclass(frozen=True)
class Look:
    """One input seen by the model: its display pixels (H, W, C in 0..1), the model's output
    vector, the maps of ``layer`` (h, w, maps) and the attribution map (H, W) of ``method`` —
    signed for gradient methods — to the output's top class."""

    pixels: np.ndarray
    output: np.ndarray
    layer: str
    maps: np.ndarray
    method: str | None
    attribution: np.ndarray | None
    signed: bool


@dataclass(frozen=True)
class FilterView:
    """One filter: its optimal input pattern (display pixels), where it came from ("atlas" or
    "computed") and the pattern's output; its top real images with the map over each (one
    strip), their labels and values; per class, the mean and spread of its map mean."""

    layer: str
    index: int
    pattern: np.ndarray
    origin: str
    output: float
    strip: np.ndarray | None
    labels: list[str]
    values: np.ndarray
    profile: tuple[np.ndarray, np.ndarray] | None
    class_names: tuple[str, ...]


class Explorer:
    """A model ready to answer live questions; safe to call from many threads."""

    def __init__(self, facts: ModelFacts, data: Any = None, atlas: str | Path | None = None,
                 *, size: tuple[int, int] | None = None, steps: int = 100, top: int = 9,
                 seed: int = 0) -> None:
        self.facts = facts
        self.shape, _ = facts.default_size(size)
        self.size, self.steps, self.top, self.seed = size, steps, top, seed
        self.layers = [info.name for info in map_layers(facts.model)]
        if not self.layers:
            raise CnnvizError(f"model '{facts.name}' has no layer with 2-D maps to explore")
        self.source = data_for(facts.input_shape, data)
        self.class_names = tuple(self.source.class_names) if self.source is not None else ()
        self.atlas: AtlasParts | None = None if atlas is None else read_atlas(
            Path(atlas), facts, self.source)
        self._lock = threading.RLock()
        self._passes: dict[str, Any] = {}
        self._methods: dict[tuple[str, str], Any] = {}
        self._filters: dict[tuple[str, int], tuple[np.ndarray, float, str]] = {}
        self._statistics: dict[str, MapStatistics] = {}
        self._cam_layer = cam_layer(facts) if len(facts.model.outputs[0].shape) == 2 else None
        self.classes_layer = output_layer(facts.model)  # a click on a class bar draws it

    @property
    def drawable(self) -> bool:
        """Whether the model takes 28×28 grey images (then digits can be drawn)."""
        return tuple(self.shape) == DRAWN

    def check_layer(self, layer: Any) -> str:
        """``layer`` if it is one of the model's map layers, else a one-line error."""
        if not isinstance(layer, str) or layer not in self.layers:
            raise CnnvizError(f"unknown layer {str(layer)[:60]!r}: choose one of the menu's")
        return layer

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """Display pixels (0..1, any size, grey or colour) → one model-ready batch (1, H, W, C)."""
        return to_model_input(pixels, self.shape, self.facts.preprocess)[None].astype(np.float32)

    def look(self, pixels: np.ndarray, layer: str, method: str | None = None) -> Look:
        """The model's output, ``layer``'s maps and ``method``'s attribution for one image."""
        layer = self.check_layer(layer)
        if method is not None and method not in METHODS:
            raise CnnvizError(f"unknown attribution method {str(method)[:40]!r}")
        x = self.model_input(pixels)
        maps, output = self._forward(layer, x)
        if not np.all(np.isfinite(output)):
            raise CnnvizError("the model's output for this input is NaN or infinite")
        attribution, signed = None, False
        if method is not None:
            attribution, signed = self._attribute(method, layer, x, output)
        shown = self.facts.preprocess.to_unit(x[0])
        return Look(shown, output, layer, maps, method, attribution, signed)

    def _forward(self, layer: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if layer not in self._passes:
                sub = feature_model(self.facts.model, [layer], with_output=True)
                self._passes[layer] = compile_step(lambda images: as_list(sub(images)))
            run = self._passes[layer]
        ops = keras().ops
        maps, output = (np.asarray(ops.convert_to_numpy(o), np.float64)
                        for o in run(ops.convert_to_tensor(x)))
        return maps[0], output[0]

    def _attribute(self, method: str, layer: str, x: np.ndarray,
                   output: np.ndarray) -> tuple[np.ndarray, bool]:
        cam_layer = self.cam_layer(layer)
        key = (method, cam_layer if method in CAMS else "")
        with self._lock:
            if key not in self._methods:
                self._methods[key] = make_method(method, self.facts, layer=cam_layer,
                                                 seed=self.seed)
            explainer = self._methods[key]
        target = int(np.argmax(output)) if output.ndim == 1 else None
        found = np.asarray(explainer.attribute(x, target), np.float64)
        signed = bool(ATTRIBUTIONS[method].signed)
        return to_display(found, signed)[0], signed  # colour channels summed where signed

    def cam_layer(self, layer: str) -> str | None:
        """The layer a class-activation map is made at when ``layer`` is shown: that layer when
        it is a top-level convolution or pooling at or after the first convolution, else the
        default CAM layer (:func:`~cnnviz.attribution.cam_layer`)."""
        convs = conv_layers(self.facts.model)
        after = self.layers[self.layers.index(convs[0]):] if convs else []
        return layer if layer in after and "/" not in layer else self._cam_layer

    def map_count(self, layer: str) -> int:
        """How many maps ``layer`` has."""
        return int(get_layer(self.facts.model, self.check_layer(layer)).output.shape[-1])

    def test_images(self, count: int = 60) -> tuple[np.ndarray, list[str]]:
        """The first ``count`` images of the data (display pixels) and their names."""
        if self.source is None:
            return np.zeros((0, *self.shape)), []
        _, shown, names = self._gathered(list(range(min(count, self.source.size() or count))))
        return shown, names

    def _gathered(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Images ``indices`` of the data: as read, as display pixels, and their names."""
        assert self.source is not None
        pixels, labels = self.source.gather(indices, self.shape)
        shown = to_unit_range(np.asarray(pixels), source=self.source.name)
        names = [self.source.item_name(i) + ("" if labels is None else
                                             f" · {self._class(labels[n])}")
                 for n, i in enumerate(indices)]
        return pixels, shown, names

    def _class(self, label: Any) -> str:
        label = int(label)
        return self.class_names[label] if label < len(self.class_names) else str(label)

    def unit_count(self, layer: str) -> int:
        """How many maps ``layer`` has, or classes for the output layer."""
        if layer is not None and layer == self.classes_layer:
            return int(get_layer(self.facts.model, layer).output.shape[-1])
        return self.map_count(layer)

    def filter_view(self, layer: str, index: int) -> FilterView:
        """Filter ``index`` of ``layer`` — or, for the output layer, class ``index`` — its
        pattern, top real images and class profile."""
        if not isinstance(index, int) or not 0 <= index < self.unit_count(layer):
            raise CnnvizError(f"filter {str(index)[:20]} is not a map of {layer}")
        pattern, output, origin = self._pattern(layer, index)
        strip, labels, values, profile = None, [], np.zeros(0), None
        statistics = self._layer_statistics(layer)
        if statistics is not None:
            strip, labels, values = self._examples(layer, index, statistics)
            mean, std = statistics.mean(layer)[:, index], statistics.std(layer)[:, index]
            profile = (mean, std)
        names = self.class_names or tuple(str(c) for c in range(len(profile[0]) if profile else 0))
        return FilterView(layer, index, pattern, origin, output, strip, labels, values, profile,
                          names)

    def _pattern(self, layer: str, index: int) -> tuple[np.ndarray, float, str]:
        if self.atlas is not None and layer in self.atlas.filters:
            result = self.atlas.filters[layer]
            where = np.flatnonzero(result.filters == index)
            if where.size:
                shown = result.meta.display(result.patterns()[where])
                return shown[0], float(result.output[where[0]]), "atlas"
        with self._lock:  # one ascent at a time; a second request for it waits and reuses it
            if (layer, index) not in self._filters:
                settings = preset("default", self.facts, layer, self.shape, seed=self.seed,
                                  steps=self.steps)
                result = visualize_filters(self.facts, layer, [index], settings, size=self.size)
                shown = result.meta.display(result.patterns())
                self._filters[(layer, index)] = (shown[0], float(result.output[0]), "computed")
            return self._filters[(layer, index)]

    def _layer_statistics(self, layer: str) -> MapStatistics | None:
        if self.atlas is not None and self.atlas.statistics is not None \
                and layer in self.atlas.statistics.layers:
            return self.atlas.statistics
        if self.source is None:
            return None
        with self._lock:
            if layer not in self._statistics:
                self._statistics[layer] = map_statistics(
                    self.facts, self.source, [layer], self.top,
                    size=self.shape[:2] if self.facts.any_size else None)
            return self._statistics[layer]

    def _examples(self, layer: str, index: int, statistics: MapStatistics
                  ) -> tuple[np.ndarray, list[str], np.ndarray]:
        chosen = [int(i) for i in statistics.top_index[layer][index]]
        pixels, shown, names = self._gathered(chosen)
        if layer == self.classes_layer:  # a class has no map to light its images with
            maps, field = [None] * len(chosen), None
        else:
            maps = [self._forward(layer, x[None].astype(np.float32))[0]
                    for x in model_inputs(pixels, self.facts.preprocess)]
            field = receptive_field(self.facts, layer,
                                    tuple(self.shape[:2]) if self.facts.any_size else None)
        strip = example_strips([index], {index: chosen}, dict(zip(chosen, shown, strict=True)),
                               dict(zip(chosen, maps, strict=True)), field)[0]
        return strip, names, statistics.top_values[layer][index]
