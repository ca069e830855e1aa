"""Attribution maps, captum style: ``Method(model, layer=None).attribute(images, target=...)``.

Scores are the target class's logit (the last layer before its softmax). ``attribute`` returns
arrays shaped like the input (N, H, W, C) for gradient methods and (N, H, W) for Grad-CAM;
:func:`explain` runs several methods into one :class:`~cnnviz.results.Attributions`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cnnviz.backend import backend_name, compile_step, keras, value_and_grad
from cnnviz.errors import CnnvizError
from cnnviz.graph import feature_model, output_feeding, preactivation_output
from cnnviz.models import (
    ModelFacts,
    as_facts,
    default_layer,
    get_layer,
    input_struct,
    resolve_map_layers,
)
from cnnviz.results import Attributions, Meta

METHODS = ("saliency", "smoothgrad", "gradcam", "integrated_gradients")


@dataclass(frozen=True)
class ChannelTarget:
    """Explain the spatial mean of one channel: of the model's output (a headless backbone's
    maps) or, with ``layer``, of that layer's output. ``channel`` may differ per image."""

    channel: Any
    layer: str | None = None


Target = int | np.ndarray | ChannelTarget | None


def _logit_tensor(model: Any) -> Any:
    """The symbolic pre-softmax output of the model's last layer (its output if none)."""
    last = model.layers[-1]
    if last.output is not model.outputs[0]:
        return model.outputs[0]
    return preactivation_output(last)


def score_model(model: Any, layer: str | None = None) -> Any:
    """A model from the input to (N, C) scores: the pre-softmax output, or ``layer``'s output;
    maps are averaged over their positions."""
    k = keras()
    if layer is None:
        inputs, tensor = input_struct(model), _logit_tensor(model)
    else:
        sub = feature_model(model, [layer])
        inputs, tensor = input_struct(sub), sub.outputs[0]
    if len(tensor.shape) == 4:
        tensor = k.ops.mean(tensor, axis=(1, 2))
    if len(tensor.shape) != 2:
        raise CnnvizError(f"the {'output' if layer is None else f'layer {layer!r}'} has shape "
                          f"{tuple(tensor.shape)}: neither classes nor channels to explain")
    return k.Model(inputs, tensor)


def _resolve(target: Target, scores: Any, images: np.ndarray, is_class: bool) -> ChannelTarget:
    """``target`` with one checked column per image; ``None`` picks the highest score (the
    predicted class, or the strongest channel)."""
    layer, index = (target.layer, target.channel) if isinstance(target, ChannelTarget) \
        else (None, target)
    n, size = len(images), int(scores.outputs[0].shape[-1])
    if index is None:
        columns = np.argmax(np.asarray(scores.predict(images, verbose=0)), axis=-1)
    else:
        columns = np.broadcast_to(np.asarray(index, dtype=np.int64), (n,))
    bad = columns[(columns < 0) | (columns >= size)]
    if bad.size and is_class and layer is None:
        raise CnnvizError(f"class {int(bad[0])} is not an output of the model (0..{size - 1})")
    if bad.size:
        where = "the model's output" if layer is None else f"layer '{layer}'"
        raise CnnvizError(f"channel {int(bad[0])} is out of range: {where} has {size} channels")
    return ChannelTarget(np.array(columns), layer)


class _GradientMethod:
    """Shared set-up: per explained layer (``None``: the output), a score model and a compiled
    gradient of the target's score."""

    def __init__(self, model: ModelFacts | Any, layer: str | None = None) -> None:
        self.facts = as_facts(model)
        self.model, self.layer = self.facts.model, layer
        self.is_class = len(self.model.outputs[0].shape) == 2
        self._heads: dict[str | None, tuple[Any, Any]] = {}

    def _head(self, layer: str | None) -> tuple[Any, Any]:
        if layer not in self._heads:
            scores, ops = score_model(self.model, layer), keras().ops

            def grad(x: Any, onehot: Any) -> tuple[Any, Any]:
                def score(inputs: Any) -> tuple[Any, Any]:
                    values = scores(inputs)
                    return ops.sum(values * onehot), values

                (_, values), g = value_and_grad(score)(x)
                return g, values

            self._heads[layer] = (scores, compile_step(grad))
        return self._heads[layer]

    def scores(self, images: np.ndarray, layer: str | None = None) -> np.ndarray:
        """The (N, C) scores targets index: pre-softmax outputs, or channel means."""
        return np.asarray(self._head(layer)[0].predict(np.asarray(images, np.float32),
                                                       verbose=0))

    def targets(self, images: np.ndarray, target: Target) -> ChannelTarget:
        """The given targets (checked), or the highest-scoring ones, one column per image."""
        x = np.asarray(images, dtype=np.float32)
        layer = target.layer if isinstance(target, ChannelTarget) else None
        return _resolve(target, self._head(layer)[0], x, self.is_class)

    def gradient(self, images: np.ndarray, target: Target = None
                 ) -> tuple[np.ndarray, ChannelTarget]:
        """d score[target] / d input for each image, and the chosen targets."""
        ops = keras().ops
        x = np.asarray(images, dtype=np.float32)
        chosen = self.targets(x, target)
        scores, grad = self._head(chosen.layer)
        onehot = np.eye(int(scores.outputs[0].shape[-1]), dtype=np.float32)[chosen.channel]
        g, _ = grad(ops.convert_to_tensor(x), ops.convert_to_tensor(onehot))
        return ops.convert_to_numpy(g), chosen


class Saliency(_GradientMethod):
    """Vanilla gradient of the target logit with respect to the input pixels."""

    def attribute(self, images: np.ndarray, target: Target = None) -> np.ndarray:
        """The gradient of the target's score with respect to each input pixel."""
        return self.gradient(images, target)[0]


class IntegratedGradients(_GradientMethod):
    """(x − baseline) × the mean gradient along the straight path from the baseline to x
    (trapezoid rule over ``steps`` intervals); the baseline defaults to the range's low end."""

    def attribute(self, images: np.ndarray, target: Target = None, *,
                  baseline: float | np.ndarray | None = None, steps: int = 50) -> np.ndarray:
        """Integrated gradients of the target's score, one map per input pixel."""
        if steps <= 0:
            raise CnnvizError(f"steps must be positive, got {steps}")
        x = np.asarray(images, dtype=np.float32)
        base = np.broadcast_to(np.float32(self.facts.value_range[0] if baseline is None
                                          else baseline), x.shape)
        chosen = self.targets(x, target)
        alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
        weights = np.full(steps + 1, 1.0 / steps, dtype=np.float32)
        weights[[0, -1]] /= 2
        total = np.zeros_like(x)
        per_call = max(1, 256 // len(x))  # path points per gradient call
        for begin in range(0, steps + 1, per_call):
            a = alphas[begin:begin + per_call]
            path = base[None] + a[:, None, None, None, None] * (x - base)[None]
            tiled = replace(chosen, channel=np.tile(chosen.channel, len(a)))
            g = self.gradient(path.reshape(-1, *x.shape[1:]), tiled)[0]
            total += np.tensordot(weights[begin:begin + per_call], g.reshape(len(a), *x.shape),
                                  axes=1)
        return (x - base) * total


class SmoothGrad:
    """The mean of a gradient method over ``samples`` noisy copies of the input (Gaussian,
    ``noise`` × the input range as standard deviation)."""

    def __init__(self, method: _GradientMethod, samples: int = 25, noise: float = 0.15,
                 seed: int = 0) -> None:
        if samples <= 0 or noise < 0:
            raise CnnvizError("SmoothGrad needs samples > 0 and noise ≥ 0")
        self.method, self.samples, self.noise, self.seed = method, samples, noise, seed

    def attribute(self, images: np.ndarray, target: Target = None,
                  **kwargs: Any) -> np.ndarray:
        """The mean of the method's attributions of the noisy copies."""
        lo, hi = self.method.facts.value_range
        x = np.asarray(images, dtype=np.float32)
        chosen = self.method.targets(x, target)
        rng = np.random.default_rng(self.seed)
        total = np.zeros_like(x)
        for _ in range(self.samples):
            noisy = x + rng.normal(0.0, self.noise * (hi - lo), x.shape).astype(np.float32)
            total += self.method.attribute(noisy, chosen, **kwargs)
        return total / self.samples


class GradCAM:
    """Grad-CAM: the maps of a layer (default: the last conv layer) weighted by the spatial mean
    of the target score's gradient, summed, passed through ReLU and placed on the input along
    the layer's receptive-field centres."""

    def __init__(self, model: ModelFacts | Any, layer: str | None = None) -> None:
        self.facts = as_facts(model)
        self.model = model = self.facts.model
        self.layer = layer or default_layer(model, top_level=True, purpose="Grad-CAM")
        resolve_map_layers(model, [self.layer])
        if "/" in self.layer:
            raise CnnvizError(f"Grad-CAM needs a top-level layer; '{self.layer}' is inside a "
                              f"nested model (use '{self.layer.split('/')[0]}', its output)")
        self.is_class = len(model.outputs[0].shape) == 2
        self._heads: dict[str | None, tuple[Any, Any]] = {}

    def _head(self, target_layer: str | None) -> tuple[Any, Any]:
        """The model giving (maps, scores) and the compiled map weighting, per explained layer.
        One model with both outputs: the maps tensor it returns is the one the scores are
        computed from, so residual paths around the layer are handled."""
        if target_layer not in self._heads:
            k = keras()
            scores = score_model(self.model, target_layer)
            try:
                maps = output_feeding(scores.outputs[0], get_layer(self.model, self.layer))
            except CnnvizError:
                raise CnnvizError(f"Grad-CAM layer '{self.layer}' does not feed "
                                  f"{'the output' if target_layer is None else target_layer}: "
                                  "choose an earlier --layer") from None
            both = k.Model(input_struct(self.model), [maps, scores.outputs[0]])
            cam = _tf_cam(both) if backend_name() == "tensorflow" else \
                _head_cam(both, maps, scores.outputs[0], self.layer)
            self._heads[target_layer] = (both, compile_step(cam))
        return self._heads[target_layer]

    def attribute(self, images: np.ndarray, target: Target = None) -> np.ndarray:
        """One (H, W) map per image: the layer's map, each value placed at the centre of its
        unit's receptive field and interpolated linearly between centres."""
        from cnnviz.receptive import receptive_field, upsample

        ops = keras().ops
        x = np.asarray(images, dtype=np.float32)
        layer = target.layer if isinstance(target, ChannelTarget) else None
        both, cam = self._head(layer)
        scores = keras().Model(both.inputs, both.outputs[1])
        chosen = _resolve(target, scores, x, self.is_class)
        onehot = np.eye(int(both.outputs[1].shape[-1]), dtype=np.float32)[chosen.channel]
        cams = ops.convert_to_numpy(cam(ops.convert_to_tensor(x), ops.convert_to_tensor(onehot)))
        size = x.shape[1:3]
        field = receptive_field(self.facts, self.layer,
                                tuple(size) if self.facts.any_size else None)
        return upsample(cams, field, size).astype(np.float32)


def _tf_cam(both: Any) -> Any:
    """TensorFlow: the gradient with respect to the returned maps tensor itself."""
    import tensorflow as tf

    def cam(x: Any, onehot: Any) -> Any:
        with tf.GradientTape() as tape:
            a, out = both(x)
            score = tf.reduce_sum(out * onehot)
        g = tape.gradient(score, a)
        weights = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * a, axis=-1))

    return cam


def _head_cam(both: Any, maps: Any, scores: Any, layer: str) -> Any:
    """Other backends: the part of the model after the layer as a function of the maps
    (models whose later layers need nothing else, i.e. no skip path around the layer)."""
    k = keras()
    ops = k.ops
    try:
        head = k.Model(maps, scores)
    except ValueError:
        raise CnnvizError(f"Grad-CAM on '{layer}' needs the tensorflow backend: a path around "
                          "the layer reaches the output") from None

    def cam(x: Any, onehot: Any) -> Any:
        a, _ = both(x)
        _, g = value_and_grad(lambda acts: (ops.sum(head(acts) * onehot), acts))(a)
        weights = ops.mean(g, axis=(1, 2), keepdims=True)
        return ops.relu(ops.sum(weights * a, axis=-1))

    return cam


def make_method(name: str, model: Any, *, layer: str | None = None, seed: int = 0) -> Any:
    """An attribution method by name: saliency, smoothgrad, gradcam, integrated_gradients."""
    if name == "saliency":
        return Saliency(model)
    if name == "smoothgrad":
        return SmoothGrad(Saliency(model), seed=seed)
    if name == "gradcam":
        return GradCAM(model, layer)
    if name == "integrated_gradients":
        return IntegratedGradients(model)
    raise CnnvizError(f"unknown attribution method '{name}': use one of {', '.join(METHODS)}")


def explain(model: ModelFacts | Any, images: np.ndarray, methods: tuple[str, ...] = METHODS, *,
            target: Target = None, layer: str | None = None, seed: int = 0,
            data: str | None = None, classes: tuple[str, ...] = ()) -> Attributions:
    """Each named method's attribution of model-ready ``images`` to ``target``: a class (default:
    the predicted one) or a :class:`ChannelTarget` (default for a model whose output is maps:
    its strongest channel). ``data`` says where the images came from, ``classes`` names them."""
    facts = as_facts(model)
    for name in methods:
        if name not in METHODS:
            raise CnnvizError(f"unknown attribution method '{name}': use one of "
                              f"{', '.join(METHODS)}")
    x = np.asarray(images, dtype=np.float32)
    reference = Saliency(facts)
    chosen = reference.targets(x, target)
    if reference.is_class and chosen.layer is None:
        scores = np.asarray(facts.model.predict(x, verbose=0))  # the probabilities themselves
    else:
        scores = reference.scores(x, chosen.layer)
    maps, cam_layer = {}, None
    if layer is None and chosen.layer is not None and "/" not in chosen.layer and \
            len(get_layer(facts.model, chosen.layer).output.shape) == 4:
        layer = chosen.layer  # Grad-CAM of a layer's channel: where on that layer it fires
    for name in methods:
        method = make_method(name, facts, layer=layer, seed=seed)
        cam_layer = getattr(method, "layer", None) if name == "gradcam" else cam_layer
        maps[name] = method.attribute(x, chosen)
    kind = "class" if reference.is_class and chosen.layer is None else "channel"
    meta = Meta(facts.name, facts.preprocess, (cam_layer,) if cam_layer else (), data, seed,
                classes=classes if kind == "class" else ())
    params = {"explained": "predicted" if target is None else "given", "target": kind,
              "target_layer": chosen.layer}
    return Attributions(x, maps, chosen.channel, scores, meta, params)
