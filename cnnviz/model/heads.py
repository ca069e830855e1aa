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


def class_output(model: Any, name: str) -> str | None:
    """How ``name`` gives the model's classes: ``"probability"`` for the output layer of a
    classifier read through a softmax or sigmoid (a Dense layer with one fused, or an
    Activation layer), ``"logit"`` for a Dense output of two or more units without one, and
    ``None`` for any other layer (features, a regression output, a hidden layer)."""
    layer = get_layer(model, name)
    if not model.outputs or layer.output is not model.outputs[0] or \
            len(model.outputs[0].shape) != 2:
        return None
    kind = type(layer).__name__
    squash = getattr(getattr(layer, "activation", None), "__name__", "") in ("softmax",
                                                                              "sigmoid")
    units = int(model.outputs[0].shape[-1])
    if kind == "Dense" and squash:
        return "probability"
    if kind == "Dense" and units >= 2:
        return "logit"
    return None


def output_layer(model: Any) -> str | None:
    """The top-level layer that makes a classifier's classes (:func:`class_output`), else
    ``None``."""
    if not model.outputs or len(model.outputs[0].shape) != 2:
        return None
    name = next((layer.name for layer in reversed(model.layers)
                 if layer.output is model.outputs[0]), None)
    return name if name is not None and class_output(model, name) else None
