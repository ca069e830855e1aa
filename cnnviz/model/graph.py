"""Sub-models of a Keras graph: the outputs of named layers (nested models included, without
"Graph disconnected"), a layer's output before its fused activation, and the path to an output."""

from __future__ import annotations

from typing import Any

import numpy as np

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


# Layers ``activations`` draws by default at most, and the map values they may hold together
# (12 MB of float32) before merges are added; ``--layers all`` draws every one.
SHOWN_LAYERS = 16
SHOWN_VALUES = 3_000_000
_MERGES = ("Add", "Concatenate", "Multiply", "Average", "Maximum", "Subtract")
_SPACERS = ("ZeroPadding2D", "Cropping2D")


def shown_map_layers(model: Any, grids: dict[str, tuple[int, int]] | None = None,
                     cap: int = SHOWN_LAYERS, values: int = SHOWN_VALUES
                     ) -> tuple[list[str], str | None]:
    """The layers ``activations`` draws when none are named, in model order, and a note when
    that is a selection: every convolution and pooling layer when there are at most ``cap``;
    else the end of each stage (the last layer before the maps shrink, and the last) and every
    pooling layer, then, while their maps hold at most ``values`` numbers, the merges (Add,
    Concatenate: the ends of residual and dense blocks) spread evenly — at most ``cap``.
    ``grids`` gives a layer's map size where its shape does not (a model of any size)."""
    from cnnviz.model.facts import map_layers, resolve_map_layers

    every = resolve_map_layers(model, None)
    if len(every) <= cap:
        return every, None
    infos = [i for i in map_layers(model) if i.type not in _SPACERS]
    grids = grids or {}
    side = [grids.get(i.name, i.output_shape[1:3]) for i in infos]
    ends = [i.name for k, i in enumerate(infos)
            if k == len(infos) - 1 or _smaller(side[k + 1], side[k])]
    pools = [i.name for i in infos if "Pool" in i.type]
    merges = [i.name for i in infos if i.type in _MERGES]
    order = [i.name for i in infos]
    kept = _spread([n for n in order if n in ends or n in pools], cap)
    after = {n: order[k + 1] for k, n in enumerate(order[:-1])}
    merges = [m for m in merges if m not in kept and after.get(m) not in kept]  # not twice
    size = {i.name: _values(grid, i.maps) for i, grid in zip(infos, side, strict=True)}
    for room in range(cap - len(kept), 0, -1):  # as many merges as the budget holds
        more = _spread(merges, room)
        if sum(size[n] for n in [*kept, *more]) <= values:
            kept += more
            break
    if len(kept) < min(cap, 4):
        kept = _spread(every, cap)
    chosen = sorted(set(kept), key=order.index)
    parts = [f"{len([n for n in chosen if n in ends])} stage ends" if ends else "",
             "its pooling layers" if pools else "",
             "merges between" if any(n in merges for n in chosen) else ""]
    note = (f"model '{model.name}' has {len(every)} convolution and pooling layers: drawing "
            f"{len(chosen)} — {', '.join(p for p in parts if p)} (--layers all for every "
            "one, or name them)")
    return chosen, note


def _values(grid: tuple[Any, ...], maps: int | None) -> int:
    """The numbers a layer's maps hold (0 where a size is unknown)."""
    if maps is None or None in tuple(grid):
        return 0
    return int(grid[0]) * int(grid[1]) * int(maps)


def _smaller(after: tuple[Any, ...], before: tuple[Any, ...]) -> bool:
    """Whether the maps shrink from ``before`` to ``after`` (unknown sizes never do)."""
    if None in tuple(after) or None in tuple(before):
        return False
    return after[0] * after[1] < before[0] * before[1]


def _spread(names: list[str], count: int) -> list[str]:
    """At most ``count`` of ``names``, evenly spaced, the last always among them."""
    if len(names) <= count:
        return list(names)
    picks = np.linspace(len(names) - 1, 0, count).round().astype(int)
    return [names[i] for i in sorted(set(picks.tolist()))]
