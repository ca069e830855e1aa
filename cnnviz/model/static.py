"""A ``.keras`` file's layers read from its configuration alone: names, types and output
shapes without importing TensorFlow or Keras, for ``cnnviz layers``.

Shapes are inferred per layer type from the configuration; a file with a layer type this
module does not know (or custom code, several inputs or outputs, shared layers, channels-first
data) is not read here: :func:`read_config_model` returns ``None`` and the caller loads the
model with Keras, which knows every layer.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Shape = tuple[int | None, ...]

_SAME_SHAPE = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "UnitNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "Rescaling", "ActivityRegularization", "Identity", "Normalization",
})
_MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
_WINDOWS = frozenset({"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D",
                      "AveragePooling2D"})
_MODELS = frozenset({"Sequential", "Functional", "Model"})


class Unsupported(Exception):  # noqa: N818 - a signal to load with Keras, not an error
    """The configuration holds something this reader does not infer."""


@dataclass
class ConfigLayer:
    """One layer as its configuration describes it: name, class, config, the layers that feed
    it, its output shape (batch first) and, for a nested model, its own layers."""

    name: str
    kind: str
    config: dict[str, Any]
    parents: list[str]
    shape: Shape = ()
    layers: list[ConfigLayer] = field(default_factory=list)


@dataclass
class ConfigModel:
    """A model read from its configuration: its name, input shape (batch first) and layers."""

    name: str
    input_shape: Shape
    layers: list[ConfigLayer]
    any_size: bool = False


def read_config_model(path: str | Path, size: tuple[int, int] | None = None
                      ) -> ConfigModel | None:
    """The model in a ``.keras`` file from its ``config.json``, with every output shape: at
    ``size`` for a model that takes any (default 224×224 for colour, 64×64 otherwise, as
    :meth:`~cnnviz.model.facts.ModelFacts.default_size`); ``None`` where only Keras can tell (and
    for a ``size`` a fixed-size model refuses)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        model = _model(config, None, None)
        shape = model.input_shape
        if len(shape) != 4 or shape[3] is None:
            return None
        if None not in shape[1:3]:
            return model if size is None else None
        if size is None:
            side = 224 if shape[3] == 3 else 64
            size = (side, side)
        if min(size) < 1:
            return None
        model = _model(config, None, size)
        model.any_size = True
        return model
    except (OSError, KeyError, ValueError, TypeError, IndexError, AttributeError,
            zipfile.BadZipFile, Unsupported):
        return None


def _model(entry: dict[str, Any], given: Shape | None,
           size: tuple[int, int] | None) -> ConfigModel:
    kind, config = entry["class_name"], entry["config"]
    if kind not in _MODELS or entry.get("registered_name") not in (None, kind):
        raise Unsupported(kind)
    if kind == "Sequential":
        return _sequential(config, given, size)
    return _functional(config, given, size)


def _input_shape(shape: Shape, size: tuple[int, int] | None) -> Shape:
    """An input's batch shape, its unknown height and width set to ``size`` when given."""
    shape = tuple(None if s is None else int(s) for s in shape)
    if len(shape) == 4 and size is not None:
        return (shape[0], size[0] if shape[1] is None else shape[1],
                size[1] if shape[2] is None else shape[2], shape[3])
    return shape


def _sequential(config: dict[str, Any], given: Shape | None,
                size: tuple[int, int] | None) -> ConfigModel:
    entries = list(config["layers"])
    shape: Shape | None = given
    if entries and entries[0]["class_name"] == "InputLayer":
        first = entries.pop(0)["config"]
        shape = shape or _input_shape(first.get("batch_shape") or first["batch_input_shape"],
                                      size)
    if shape is None:
        shape = _input_shape(config["build_input_shape"], size)
    start = shape
    layers, parent = [], []
    for entry in entries:
        layer = _layer(entry, shape, [shape], size)
        layer.parents = parent
        layers.append(layer)
        shape, parent = layer.shape, [layer.name]
    return ConfigModel(config["name"], start, layers)


def _functional(config: dict[str, Any], given: Shape | None,
                size: tuple[int, int] | None) -> ConfigModel:
    if len(_tensor_refs(config["input_layers"])) != 1 or \
            len(_tensor_refs(config["output_layers"])) != 1:
        raise Unsupported("several inputs or outputs")
    shapes: dict[str, Shape] = {}
    layers: list[ConfigLayer] = []
    start: Shape = ()
    for entry in config["layers"]:
        name = entry["config"]["name"] if "name" not in entry else entry["name"]
        if entry["class_name"] == "InputLayer":
            own = entry["config"].get("batch_shape") or entry["config"]["batch_input_shape"]
            start = shapes[name] = given or _input_shape(own, size)
            layers.append(ConfigLayer(name, "InputLayer", entry["config"], [], start))
            continue
        nodes = entry.get("inbound_nodes", [])
        if len(nodes) != 1:
            raise Unsupported(f"layer {name} is called {len(nodes)} times")
        parents = [ref[0] for ref in _tensor_refs(nodes[0])]
        if not parents or any(p not in shapes for p in parents):
            raise Unsupported(f"layer {name}: inputs not known")
        layer = _layer(entry, shapes[parents[0]], [shapes[p] for p in parents], size)
        layer.name, layer.parents = name, parents
        shapes[name] = layer.shape
        layers.append(layer)
    return ConfigModel(config["name"], start, layers)


def _tensor_refs(value: Any) -> list[list[Any]]:
    """The (layer, node, tensor) references a node's arguments or a model's outputs hold."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"]]
        return [ref for item in value.values() for ref in _tensor_refs(item)]
    if isinstance(value, list):
        if len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], int):
            return [value]
        return [ref for item in value for ref in _tensor_refs(item)]
    return []


def _layer(entry: dict[str, Any], shape: Shape, inputs: list[Shape],
           size: tuple[int, int] | None) -> ConfigLayer:
    kind, config = entry["class_name"], entry["config"]
    module = str(entry.get("module") or "keras")
    if not (module == "keras" or module.startswith("keras.")) or \
            entry.get("registered_name") not in (None, kind):
        raise Unsupported(f"{kind} from {module}")  # custom code: only Keras may load it
    if kind in _MODELS:
        inner = _model(entry, shape, size)
        out = inner.layers[-1].shape if inner.layers else shape
        return ConfigLayer(config["name"], kind, config, [], out, inner.layers)
    if config.get("data_format", "channels_last") != "channels_last":
        raise Unsupported("channels_first")
    return ConfigLayer(config["name"], kind, config, [], _output_shape(kind, config, shape,
                                                                        inputs))


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if not isinstance(value, (list, tuple)) else \
        (int(value[0]), int(value[1]))


def _window(n: int | None, kernel: int, stride: int, dilation: int, padding: str) -> int | None:
    if n is None:
        return None
    if padding == "same":
        return -(-n // stride)
    if padding != "valid":
        raise Unsupported(f"padding {padding}")
    return (n - (dilation * (kernel - 1) + 1)) // stride + 1


def _output_shape(kind: str, config: dict[str, Any], shape: Shape,
                  inputs: list[Shape]) -> Shape:
    """The output shape of one layer of ``kind`` fed ``shape`` (``inputs`` for merges)."""
    if kind in _SAME_SHAPE:
        return shape
    if kind in _MERGES:
        if any(s != shape for s in inputs):
            raise Unsupported("a merge of different shapes")
        return shape
    if kind == "Dense":
        return (*shape[:-1], int(config["units"]))
    if kind == "Flatten":
        rest = shape[1:]
        return (shape[0], None if None in rest else math.prod(rest))  # type: ignore[arg-type]
    if kind == "Reshape":
        return _reshaped(shape, [int(s) for s in config["target_shape"]])
    if kind == "Concatenate":
        axis = int(config.get("axis", -1)) % len(shape)
        total = sum(s[axis] for s in inputs) if all(s[axis] is not None for s in inputs) \
            else None  # type: ignore[misc]
        return (*shape[:axis], total, *shape[axis + 1:])
    if len(shape) != 4:
        raise Unsupported(f"{kind} on a shape {shape}")
    batch, h, w, c = shape
    if kind in _WINDOWS:
        kernel = _pair(config.get("kernel_size", config.get("pool_size")))
        strides = _pair(config.get("strides") or kernel)
        dilation = _pair(config.get("dilation_rate", 1))
        padding = config.get("padding", "valid")
        h, w = (_window(n, k, s, d, padding)
                for n, k, s, d in zip((h, w), kernel, strides, dilation, strict=True))
        if kind == "DepthwiseConv2D":
            c = None if c is None else c * int(config.get("depth_multiplier", 1))
        elif kind in ("Conv2D", "SeparableConv2D"):
            c = int(config["filters"])
        return (batch, h, w, c)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return (batch, 1, 1, c) if config.get("keepdims") else (batch, c)
    if kind in ("ZeroPadding2D", "Cropping2D"):
        key, sign = ("padding", 1) if kind == "ZeroPadding2D" else ("cropping", -1)
        (top, bottom), (left, right) = (_pair(p) for p in _pairs(config[key]))
        return (batch, None if h is None else h + sign * (top + bottom),
                None if w is None else w + sign * (left + right), c)
    if kind == "UpSampling2D":
        fy, fx = _pair(config["size"])
        return (batch, None if h is None else h * fy, None if w is None else w * fx, c)
    if kind == "Resizing":
        return (batch, int(config["height"]), int(config["width"]), c)
    raise Unsupported(kind)


def _pairs(value: Any) -> tuple[Any, Any]:
    """ZeroPadding2D/Cropping2D amounts as ((top, bottom), (left, right))."""
    if not isinstance(value, (list, tuple)):
        return (value, value), (value, value)
    return tuple(v if isinstance(v, (list, tuple)) else (v, v) for v in value)  # type: ignore


def _reshaped(shape: Shape, target: list[int]) -> Shape:
    rest = shape[1:]
    if None in rest:
        raise Unsupported("a reshape of an unknown size")
    total = math.prod(rest)  # type: ignore[arg-type]
    if -1 in target:
        known = math.prod(t for t in target if t != -1)
        target = [total // known if t == -1 else t for t in target]
    return (shape[0], *target)
