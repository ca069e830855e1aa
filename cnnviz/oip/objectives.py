"""Objectives: small pure objects that score a batch of images from layer activations.

An objective maps ``(activations, channels)`` to one score per image, where ``activations`` holds
the (K, ...) output of each layer it names and ``channels`` (K,) says which filter image k is
for, so one batch optimizes K filters at once. ``+``, ``-`` and scalar ``*`` build new objectives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cnnviz.core.backend import keras

ScoreFn = Callable[[Mapping[str, Any], Any], Any]


@dataclass(frozen=True)
class Objective:
    """A score per image; ``layers`` are the layer outputs it reads, ``name`` is for people.
    ``params`` says what it computes — its kind and parameters, for cnnviz's objectives and
    their sums and multiples; left out, the function itself stands for it — so that two
    objectives share a compiled step only when they compute the same score."""

    fn: ScoreFn
    layers: tuple[str, ...]
    name: str
    params: tuple[Any, ...] | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """What the objective computes (never its display name): a hashable key."""
        return self.params if self.params is not None else ("fn", self.fn, self.layers)

    def __call__(self, activations: Mapping[str, Any], channels: Any) -> Any:
        return self.fn(activations, channels)

    def __add__(self, other: Objective | float) -> Objective:
        if not isinstance(other, Objective):
            value = float(other)
            return Objective(lambda a, c: self.fn(a, c) + value, self.layers,
                             f"{self.name} + {value:g}", ("+", self.key, value))
        layers = self.layers + tuple(n for n in other.layers if n not in self.layers)
        return Objective(lambda a, c: self.fn(a, c) + other.fn(a, c), layers,
                         f"{self.name} + {other.name}", ("+", self.key, other.key))

    __radd__ = __add__

    def __neg__(self) -> Objective:
        return Objective(lambda a, c: -self.fn(a, c), self.layers, f"-({self.name})",
                         ("-", self.key))

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-other)

    def __rsub__(self, other: float) -> Objective:
        return (-self) + other

    def __mul__(self, factor: float) -> Objective:
        if isinstance(factor, Objective):
            return NotImplemented
        value = float(factor)
        return Objective(lambda a, c: value * self.fn(a, c), self.layers,
                         f"{value:g}·{self.name}", ("*", value, self.key))

    __rmul__ = __mul__


def _selected(values: Any, channels: Any, index: int | None) -> Any:
    """values (K, C) → (K,): column ``channels[k]`` of row k, or column ``index`` of every row."""
    ops = keras().ops
    if index is not None:
        return values[:, index]
    onehot = ops.one_hot(ops.cast(channels, "int32"), ops.shape(values)[-1],
                         dtype=values.dtype)
    return ops.sum(values * onehot, axis=-1)


def channel(layer: str, index: int | None = None) -> Objective:
    """Mean of one map over all positions: map ``index``, or each image's own filter."""
    ops = keras().ops
    label = f"channel({layer}{'' if index is None else f', {index}'})"
    return Objective(lambda a, c: _selected(ops.mean(a[layer], axis=(1, 2)), c, index),
                     (layer,), label, ("channel", layer, index))


def neuron(layer: str, index: int | None = None, y: int | None = None,
           x: int | None = None) -> Objective:
    """One position (default: the centre) of a map: map ``index`` or each image's own filter."""

    def fn(a: Mapping[str, Any], c: Any) -> Any:
        maps = a[layer]
        row = maps.shape[1] // 2 if y is None else y
        col = maps.shape[2] // 2 if x is None else x
        return _selected(maps[:, row, col, :], c, index)

    where = "centre" if y is None and x is None else f"y={y}, x={x}"
    return Objective(fn, (layer,), f"neuron({layer}{'' if index is None else f', {index}'}, "
                                   f"{where})", ("neuron", layer, index, y, x))


def layer(name: str) -> Objective:
    """DeepDream: the mean square of every map of a layer."""
    ops = keras().ops
    return Objective(lambda a, c: ops.mean(ops.square(a[name]), axis=(1, 2, 3)), (name,),
                     f"layer({name})", ("layer", name))


def class_logit(name: str, index: int | None = None) -> Objective:
    """A unit of a dense layer — the class logit when the engine reads pre-activations."""
    return Objective(lambda a, c: _selected(a[name], c, index), (name,),
                     f"unit({name}{'' if index is None else f', {index}'})",
                     ("class_logit", name, index))


def diversity(name: str) -> Objective:
    """Minus each image's mean cosine similarity of Gram matrices to the others in the batch
    (pushes a batch for one filter apart); zero for a batch of one."""
    ops = keras().ops

    def fn(a: Mapping[str, Any], c: Any) -> Any:
        maps = a[name]
        flat = ops.reshape(maps, (ops.shape(maps)[0], -1, ops.shape(maps)[-1]))
        gram = ops.reshape(ops.matmul(ops.transpose(flat, (0, 2, 1)), flat),
                           (ops.shape(maps)[0], -1))
        gram = gram / (ops.norm(gram, axis=-1, keepdims=True) + 1e-8)
        sims = ops.matmul(gram, ops.transpose(gram))
        n = ops.cast(ops.shape(maps)[0], sims.dtype)
        others = ops.sum(sims, axis=-1) - ops.diagonal(sims)
        return -others / ops.maximum(n - 1.0, 1.0)

    return Objective(fn, (name,), f"diversity({name})", ("diversity", name))


def scaled_share(score: Any, weight: float, amount: Any) -> Any:
    """``weight`` × ``amount`` as a share of each image's own score (its size, held constant
    in the gradient): a term that means the same for small map means and large logits."""
    return weight * keras().ops.abs(keras().ops.stop_gradient(score)) * amount


def _similarities(values: Any, channels: Any) -> Any:
    """Each image's mean cosine similarity to the other images of its own filter: of their
    Gram matrices for maps (K, h, w, C), of the vectors themselves for units (K, U)."""
    ops = keras().ops
    if len(values.shape) == 4:
        flat = ops.reshape(values, (ops.shape(values)[0], -1, ops.shape(values)[-1]))
        values = ops.reshape(ops.matmul(ops.transpose(flat, (0, 2, 1)), flat),
                             (ops.shape(values)[0], -1))
    values = values / (ops.norm(values, axis=-1, keepdims=True) + 1e-8)
    sims = ops.matmul(values, ops.transpose(values))
    same = ops.cast(ops.equal(channels[:, None], channels[None, :]), sims.dtype)
    others = same - ops.eye(ops.shape(sims)[0], dtype=sims.dtype)
    return ops.sum(sims * others, axis=-1) / ops.maximum(ops.sum(others, axis=-1), 1.0)


def diverse(goal: Objective, weight: float = 1.0, layer: str | None = None) -> Objective:
    """``goal`` with each image pushed away from the other images of its own filter (lucid's
    diversity: the cosine similarity of their Gram matrices at ``layer``, an early layer whose
    Gram is the image's style; default ``goal``'s first layer): the score minus ``weight`` times
    its own size times the image's mean similarity to them — scale-free, so one weight suits a
    layer of small map means and one of large logits."""
    name = layer or goal.layers[0]

    def fn(a: Mapping[str, Any], c: Any) -> Any:
        score = goal.fn(a, c)
        return score - scaled_share(score, weight, _similarities(a[name], c))

    layers = goal.layers + (() if name in goal.layers else (name,))
    return Objective(fn, layers, f"diverse({goal.name}, {weight:g}, {name})",
                     ("diverse", goal.key, weight, name))


def close_to(goal: Objective, layer: str, target: Any, weight: float) -> Objective:
    """``goal`` kept near ``target``, one image's maps of ``layer`` (feature accentuation):
    the score minus ``weight`` times its own size times the mean squared distance of the
    image's maps from the target, over the target's mean square."""
    import hashlib

    import numpy as np

    ops = keras().ops
    reference = np.asarray(target, np.float32)
    scale = float(np.mean(reference ** 2)) + 1e-8
    axes = tuple(range(1, reference.ndim + 1))

    def fn(a: Mapping[str, Any], c: Any) -> Any:
        score = goal.fn(a, c)
        distance = ops.mean(ops.square(a[layer] - reference[None]), axis=axes) / scale
        return score - scaled_share(score, weight, distance)

    layers = goal.layers + (() if layer in goal.layers else (layer,))
    digest = hashlib.sha256(reference.tobytes()).hexdigest()[:16]
    return Objective(fn, layers, f"close_to({goal.name}, {weight:g}, {layer})",
                     ("close_to", goal.key, layer, digest, weight))
