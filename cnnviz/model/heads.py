"""The layers whose units can be drawn besides maps: vectors of units (Dense layers, global
pooling) and the output layer that makes a classifier's classes."""

from __future__ import annotations

from typing import Any

from cnnviz.core.errors import CnnvizError
from cnnviz.model.facts import get_layer, list_layers


def resolve_unit_layer(model: Any, name: str) -> int:
    """The number of units (maps, or a vector's entries) of ``name``, a layer whose output has
    a channel axis — 2-D maps or a vector of units; any other is refused in one line."""
    get_layer(model, name)
    info = next(i for i in list_layers(model) if i.name == name)
    if not (info.has_maps or info.has_units):
        usable = [i.name for i in list_layers(model) if i.has_maps or i.has_units]
        raise CnnvizError(f"layer '{name}' has neither maps nor units (output shape "
                          f"{info.output_shape}); layers with them: {', '.join(usable)}")
    return int(info.output_shape[-1])


def is_output_layer(model: Any, name: str) -> bool:
    """Whether ``name`` is the layer that makes the model's (first) output."""
    return bool(model.outputs) and get_layer(model, name).output is model.outputs[0]


def output_layer(model: Any) -> str | None:
    """The top-level layer that makes the model's (first) output when that output is a vector
    of units (the class logits of a classifier), else ``None``."""
    if not model.outputs or len(model.outputs[0].shape) != 2:
        return None
    return next((layer.name for layer in reversed(model.layers)
                 if layer.output is model.outputs[0]), None)
