"""Receptive fields from the graph: for each layer, how many input pixels one output unit sees,
the step between neighbouring units' fields (the stride) and where unit 0's field is centred.

Geometry is computed per axis from the layer configurations (convolutions, pooling, padding,
cropping, upsampling), so it holds for any weights; layers that keep the spatial grid
(activations, normalization, merges of equal grids) pass it on. Coordinates are input pixel
centres: pixel i is at i.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnviz.core.backend import native_logs_muted
from cnnviz.core.errors import CnnvizError
from cnnviz.model.facts import ModelFacts, as_facts, get_layer, layer_output_shape
from cnnviz.model.static import ConfigLayer, ConfigModel

_KERNELS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D",
            "AveragePooling2D")
_GLOBAL = ("GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Dense", "Reshape")
_CONFIGURED = (*_KERNELS, "ZeroPadding2D", "Cropping2D", "UpSampling2D")


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a layer's output grid: ``n`` units (None when unknown), each seeing
    ``size`` input pixels, ``jump`` pixels apart, unit 0 centred at ``start``."""

    n: int | None
    size: float
    jump: float
    start: float

    def centre(self, index: Any) -> Any:
        """The input coordinate at the centre of unit ``index``'s field."""
        return self.start + np.asarray(index) * self.jump


@dataclass(frozen=True)
class Field:
    """A layer's receptive-field geometry; ``rows``/``cols`` are None for a layer whose units
    see the whole input (dense, flatten, global pooling) or whose geometry is unknown."""

    rows: Axis | None
    cols: Axis | None
    whole: bool = False

    @property
    def size(self) -> tuple[int, int] | None:
        """Receptive field (height, width) in input pixels."""
        if self.rows is None or self.cols is None:
            return None
        return int(round(self.rows.size)), int(round(self.cols.size))

    @property
    def stride(self) -> tuple[float, float] | None:
        """Input pixels between neighbouring units (height, width)."""
        if self.rows is None or self.cols is None:
            return None
        return self.rows.jump, self.cols.jump

    def describe(self) -> tuple[str, str]:
        """(field, stride) as table cells: "18×18", "4"; "all" for a whole-input layer."""
        if self.whole:
            return "all", ""
        if self.size is None or self.stride is None:
            return "?", "?"
        (h, w), (sy, sx) = self.size, self.stride
        return f"{h}×{w}", f"{sy:g}" if sy == sx else f"{sy:g}×{sx:g}"

    def centre_window(self, shape: tuple[int, int]) -> list[int]:
        """[top, bottom, left, right] of the input window the layer's centre unit sees."""
        n_rows = self.rows.n if self.rows and self.rows.n else 1
        n_cols = self.cols.n if self.cols and self.cols.n else 1
        rows, cols = self.crop(n_rows // 2, n_cols // 2, shape)
        return [rows.start, rows.stop, cols.start, cols.stop]

    def crop(self, y: int, x: int, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The input window (clipped to ``shape``) that unit (y, x) sees."""
        if self.rows is None or self.cols is None:
            return slice(0, shape[0]), slice(0, shape[1])
        return _window(self.rows, y, shape[0]), _window(self.cols, x, shape[1])


def _window(axis: Axis, index: int, n: int) -> slice:
    centre = float(axis.centre(index))
    lo = math.ceil(centre - (axis.size - 1) / 2 - 1e-9)
    hi = math.floor(centre + (axis.size - 1) / 2 + 1e-9) + 1
    return slice(max(0, lo), min(n, hi))


def _windowed(axis: Axis, kernel: int, stride: int, dilation: int, padding: str) -> Axis:
    """The axis after a kernel of ``kernel`` taps ``dilation`` apart moving ``stride`` units."""
    span = dilation * (kernel - 1) + 1
    if padding == "same":
        n_out = None if axis.n is None else -(-axis.n // stride)
        if axis.n is None:
            before = (span - 1) // 2  # the stride-1 case; unknown grids cannot say more
        else:
            total = max(span - stride, 0) if axis.n % stride == 0 else \
                max(span - axis.n % stride, 0)
            before = total // 2
    else:
        n_out = None if axis.n is None else (axis.n - span) // stride + 1
        before = 0
    return Axis(n_out, axis.size + (span - 1) * axis.jump, axis.jump * stride,
                axis.start + ((span - 1) / 2 - before) * axis.jump)


def _pair(value: Any) -> tuple[Any, Any]:
    return (value, value) if not isinstance(value, (list, tuple)) else (value[0], value[1])


def _step(layer: ConfigLayer, field: Field) -> Field:
    """The field after ``layer`` given its input's."""
    kind = layer.kind
    if field.whole or kind in _GLOBAL:
        return Field(None, None, whole=True)
    if field.rows is None or field.cols is None:
        return field
    config = layer.config
    axes = (field.rows, field.cols)
    if kind in _KERNELS:
        kernel = config.get("kernel_size", config.get("pool_size"))
        strides = config.get("strides") or kernel
        dilation = config.get("dilation_rate", 1)
        new = [_windowed(a, k, s, d, config.get("padding", "valid"))
               for a, k, s, d in zip(axes, _pair(kernel), _pair(strides), _pair(dilation),
                                     strict=True)]
        return Field(*new)
    if kind in ("ZeroPadding2D", "Cropping2D"):
        sign = 1 if kind == "ZeroPadding2D" else -1
        key = "padding" if kind == "ZeroPadding2D" else "cropping"
        new = []
        for axis, (before, after) in zip(axes, [_pair(p) for p in config[key]], strict=True):
            n = None if axis.n is None else axis.n + sign * (before + after)
            new.append(Axis(n, axis.size, axis.jump, axis.start - sign * before * axis.jump))
        return Field(*new)
    if kind == "UpSampling2D":
        new = []
        for axis, factor in zip(axes, _pair(config["size"]), strict=True):
            jump = axis.jump / factor
            new.append(Axis(None if axis.n is None else axis.n * factor, axis.size, jump,
                            axis.start - (factor - 1) / 2 * jump))
        return Field(*new)
    return _kept(layer.shape, field)


def _kept(shape: tuple[int | None, ...], field: Field) -> Field:
    """Layers that are not known to move the grid keep it when their output grid matches."""
    if not shape:
        return Field(None, None)
    if len(shape) != 4:
        return Field(None, None, whole=len(shape) == 2)
    rows, cols = field.rows, field.cols
    assert rows is not None and cols is not None
    known = [s for s in shape[1:3]]
    if any(k is not None and n is not None and k != n
           for k, n in zip(known, (rows.n, cols.n), strict=True)):
        return Field(None, None)  # resizing or a custom layer: geometry unknown
    return field


def _merged(fields: list[Field]) -> Field:
    """Several inputs (add, concatenate): the widest field, which covers the others."""
    if any(f.whole for f in fields):
        return Field(None, None, whole=True)
    known = [f for f in fields if f.rows is not None and f.cols is not None]
    if len(known) < len(fields):
        return Field(None, None)
    return max(known, key=lambda f: (f.rows.size * f.cols.size))  # type: ignore[union-attr]


def _keras_layers(container: Any) -> list[ConfigLayer]:
    """A Keras model's layers as :class:`ConfigLayer` (parents: the first call whose inputs
    come from earlier layers)."""
    seen: set[str] = set()
    layers = []
    for layer in container.layers:
        parents: list[str] = []
        for node in layer._inbound_nodes:
            names = [t._keras_history[0].name for t in node.input_tensors]
            if names and all(n in seen for n in names):
                parents = names
                break
        nested = hasattr(layer, "layers") and hasattr(layer, "inputs")
        kind = type(layer).__name__
        layers.append(ConfigLayer(layer.name, kind,
                                  layer.get_config() if kind in _CONFIGURED else {}, parents,
                                  layer_output_shape(layer),
                                  _keras_layers(layer) if nested else []))
        seen.add(layer.name)
    return layers


def _walk(layers: list[ConfigLayer], start: Field, prefix: str, out: dict[str, Field]) -> Field:
    """Fields of every layer of a model fed with ``start``; returns the last."""
    fields: dict[str, Field] = {}
    last = start
    for layer in layers:
        if layer.kind == "InputLayer":
            fields[layer.name] = start
            continue
        known = layer.parents and all(p in fields for p in layer.parents)
        here = _merged([fields[p] for p in layer.parents]) if known else start
        if layer.layers:
            field = _walk(layer.layers, here, f"{prefix}{layer.name}/", out)
        else:
            field = _step(layer, here)
        fields[layer.name] = out[f"{prefix}{layer.name}"] = last = field
    return last


def fields_of(layers: list[ConfigLayer], shape: tuple[int, int]) -> dict[str, Field]:
    """Every layer's receptive field ("outer/inner" names for nested models) for an input of
    ``shape`` (height, width)."""
    start = Field(Axis(shape[0], 1.0, 1.0, 0.0), Axis(shape[1], 1.0, 1.0, 0.0))
    out: dict[str, Field] = {}
    _walk(layers, start, "", out)
    return out


def receptive_fields(model: ModelFacts | Any, size: tuple[int, int] | None = None
                     ) -> dict[str, Field]:
    """Every layer's receptive field ("outer/inner" names for nested models) at the model's
    input size, or ``size`` for a model that takes any."""
    facts = as_facts(model)
    shape, _ = facts.default_size(size)
    with native_logs_muted():  # layer configs serialize: Keras loads TensorFlow where installed
        layers = _keras_layers(facts.model)
    return fields_of(layers, shape[:2])


def map_grids(model: ModelFacts | Any, size: tuple[int, int] | None = None
              ) -> dict[str, tuple[int | None, int | None]]:
    """Each map layer's (rows, columns) of units at the model's input size, or ``size`` for a
    model that takes any."""
    return {name: (f.rows.n, f.cols.n) for name, f in receptive_fields(model, size).items()
            if f.rows is not None and f.cols is not None}


def receptive_field(model: ModelFacts | Any, layer: str,
                    size: tuple[int, int] | None = None) -> Field:
    """The receptive field of one layer (see :func:`receptive_fields`)."""
    get_layer(as_facts(model).model, layer)
    fields = receptive_fields(model, size)
    if layer not in fields:
        raise CnnvizError(f"no receptive field for layer '{layer}'")
    return fields[layer]


def layer_rows(model: ModelFacts | Any, size: tuple[int, int] | None = None
               ) -> list[tuple[str, str, str, str, str, str]]:
    """One row per layer for ``cnnviz layers``: name, type, output shape, maps, receptive field
    and stride (at the model's input size, or ``size`` for a model that takes any)."""
    from cnnviz.model.facts import list_layers

    facts = as_facts(model)
    fields = receptive_fields(facts, size)
    rows = []
    for info in list_layers(facts.model):
        found = fields.get(info.name)
        field, stride = found.describe() if found else ("?", "?")
        rows.append(_row(info.name, info.type, _sized(info.output_shape, found), field, stride))
    return rows


def _sized(shape: tuple[int | None, ...], field: Field | None) -> tuple[int | None, ...]:
    """A map shape with the height and width the model takes any of set to the grid at the
    size the fields were computed for."""
    if len(shape) != 4 or field is None or field.rows is None or field.cols is None:
        return shape
    return (shape[0], field.rows.n if shape[1] is None else shape[1],
            field.cols.n if shape[2] is None else shape[2], shape[3])


def config_rows(model: ConfigModel) -> list[tuple[str, str, str, str, str, str]]:
    """:func:`layer_rows` of a model read from its configuration (:mod:`cnnviz.model.static`)."""
    shape = model.input_shape
    fields = fields_of(model.layers, (shape[1], shape[2])) if len(shape) == 4 else {}
    rows = []

    def walk(layers: list[ConfigLayer], prefix: str) -> None:
        for layer in layers:
            if layer.kind == "InputLayer":
                continue
            name = prefix + layer.name
            field, stride = fields[name].describe() if name in fields else ("?", "?")
            rows.append(_row(name, layer.kind, layer.shape, field, stride))
            walk(layer.layers, f"{name}/")

    walk(model.layers, "")
    return rows


def _row(name: str, kind: str, shape: tuple[int | None, ...], field: str,
         stride: str) -> tuple[str, str, str, str, str, str]:
    text = "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"
    maps = str(shape[-1]) if len(shape) == 4 and shape[-1] is not None else ""
    return name, kind, text, maps, field, stride


def _spread(axis: Axis | None, units: int, pixels: int) -> np.ndarray:
    """(pixels, units) weights: each pixel linearly between the two unit centres around it,
    the nearest unit's value beyond the outermost centres. Without geometry, the units are
    spread evenly over the frame."""
    coords = np.arange(pixels, dtype=np.float64)
    if axis is None:
        position = (coords + 0.5) * units / pixels - 0.5
    else:
        position = (coords - axis.start) / axis.jump
    position = np.clip(position, 0, units - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, units - 1)
    frac = position - low
    weights = np.zeros((pixels, units))
    weights[np.arange(pixels), low] += 1 - frac
    weights[np.arange(pixels), high] += frac
    return weights


def upsample(maps: np.ndarray, field: Field, shape: tuple[int, int]) -> np.ndarray:
    """(N, h, w) layer maps onto the (N, H, W) input grid, each value at the centre of its
    unit's receptive field and linear in between."""
    rows = _spread(field.rows, maps.shape[1], shape[0])
    cols = _spread(field.cols, maps.shape[2], shape[1])
    return np.einsum("Hh,nhw,Ww->nHW", rows, np.asarray(maps, np.float64), cols)


def crops_where_answered(images: np.ndarray, maps: np.ndarray, field: Field) -> np.ndarray:
    """Each image (N, H, W, C) cut to the receptive field of the unit where its own map
    (N, h, w) answers most, enlarged back to H×W (nearest pixel) — as Microscope shows a
    unit's dataset examples."""
    height, width = images.shape[1:3]
    out = np.empty_like(images)
    for n in range(len(images)):
        y, x = np.unravel_index(np.argmax(maps[n]), maps.shape[1:3])
        rows, cols = field.crop(int(y), int(x), (height, width))
        r = rows.start + np.arange(height) * (rows.stop - rows.start) // height
        c = cols.start + np.arange(width) * (cols.stop - cols.start) // width
        out[n] = images[n][r][:, c]
    return out
