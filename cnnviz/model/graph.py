"""Sub-models of a Keras graph: the outputs of named layers (nested models included, without
"Graph disconnected"), a layer's output before its fused activation, and the path to an output."""

from __future__ import annotations

from typing import Any

from cnnviz.core.backend import keras
from cnnviz.core.errors import CnnvizError
from cnnviz.model.facts import as_list, get_layer, input_struct


def feature_model(model: Any, names: list[str], *, with_output: bool = False,
                  preactivation: bool = False) -> Any:
    """A model from ``model``'s inputs to the outputs of the named layers (nested paths allowed),
    followed by the model's own output when ``with_output`` is set. With ``preactivation``, a
    layer with a fused activation (Conv2D, Dense) gives its output before that activation."""
    k = keras()
    layer_output = preactivation_output if preactivation else (lambda layer: layer.output)
    nested: dict[str, list[str]] = {}
    for name in names:
        get_layer(model, name)  # unknown names raise with suggestions
        head, _, rest = name.partition("/")
        if rest:
            nested.setdefault(head, []).append(rest)
    flat = [name for name in names if "/" not in name]
    prefix_outputs = [layer_output(model.get_layer(name)) for name in flat]
    prefix_outputs += [_outer_input_of(model.get_layer(head), model) for head in nested]
    if with_output:
        prefix_outputs += list(model.outputs)
    if not nested:
        return k.Model(input_struct(model), prefix_outputs, name="cnnviz_features")
    # Nested models: re-run the outer graph up to each nested model's input, then the nested
    # feature model on it, so no "Graph disconnected" error arises.
    prefix = k.Model(input_struct(model), prefix_outputs, name="cnnviz_prefix")
    inputs = k.tree.map_structure(lambda t: k.Input(shape=t.shape[1:], dtype=t.dtype),
                                  input_struct(model))
    values = as_list(prefix(inputs))
    by_name: dict[str, Any] = dict(zip(flat, values, strict=False))
    for i, (head, rests) in enumerate(nested.items()):
        inner = feature_model(model.get_layer(head), rests, preactivation=preactivation)
        inner_values = as_list(inner(values[len(flat) + i]))
        by_name.update({f"{head}/{rest}": v for rest, v in zip(rests, inner_values, strict=True)})
    outputs = [by_name[name] for name in names]
    if with_output:
        outputs += values[len(flat) + len(nested):]
    return k.Model(inputs, outputs, name="cnnviz_features")


def _outer_input_of(nested: Any, outer: Any) -> Any:
    """The symbolic tensor that ``outer``'s graph feeds into the nested model ``nested``."""
    outer_ids = {id(t) for t in _graph_tensors(outer)}
    for node in nested._inbound_nodes:
        tensors = node.input_tensors
        if tensors and all(id(t) in outer_ids for t in tensors):
            return tensors[0] if len(tensors) == 1 else list(tensors)
    raise CnnvizError(f"cannot address layers inside '{nested.name}': it is not called in the "
                      f"graph of '{outer.name}'")


def _graph_tensors(model: Any) -> list[Any]:
    tensors = list(model.inputs)
    for layer in model.layers:
        for node in layer._inbound_nodes:
            tensors.extend(node.output_tensors)
    return tensors


def preactivation_output(layer: Any) -> Any:
    """The symbolic output of ``layer`` without its fused activation (a linear twin with the
    same weights, applied to the layer's input); the plain output if it has none."""
    k = keras()
    activation = getattr(layer, "activation", None)
    if activation is None or activation is k.activations.linear:
        return layer.output
    config = {**layer.get_config(), "activation": "linear", "name": f"{layer.name}_preactivation"}
    twin = type(layer).from_config(config)
    twin.build(layer.input.shape)
    twin.set_weights(layer.get_weights())
    return twin(layer.input)


def output_feeding(tensor: Any, layer: Any) -> Any:
    """The output of ``layer`` on the graph path that computes ``tensor``. A layer of a loaded
    Sequential model can hold several call nodes; only the one upstream of ``tensor`` connects."""
    seen, frontier = set(), [tensor]
    while frontier:
        current = frontier.pop()
        operation, node_index, _ = current._keras_history
        if operation is layer:
            return current
        node = operation._inbound_nodes[node_index]
        for parent in node.input_tensors:
            if id(parent) not in seen:
                seen.add(id(parent))
                frontier.append(parent)
    raise CnnvizError(f"layer '{layer.name}' does not feed the model output")


def has_fused_activation(model: Any, name: str) -> bool:
    """True when the layer applies a non-linear activation of its own (relu in a Conv2D)."""
    activation = getattr(get_layer(model, name), "activation", None)
    return activation is not None and activation is not keras().activations.linear
