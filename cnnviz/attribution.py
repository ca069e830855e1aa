"""Attribution maps, captum style: ``Method(model, layer=None).attribute(images, target=...)``.

Scores are the target class's logit (the last layer before its softmax). ``attribute`` returns
arrays shaped like the input (N, H, W, C) for gradient methods and (N, H, W) for Grad-CAM;
:func:`explain` runs several methods into one :class:`~cnnviz.results.Attributions`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.backend import backend_name, compile_step, keras, value_and_grad
from cnnviz.errors import CnnvizError
from cnnviz.graph import output_feeding, preactivation_output
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


def _logit_tensor(model: Any) -> Any:
    """The symbolic pre-softmax output of the model's last layer (its output if none)."""
    last = model.layers[-1]
    if last.output is not model.outputs[0]:
        return model.outputs[0]
    return preactivation_output(last)


def _targets(scores: np.ndarray, target: int | np.ndarray | None) -> np.ndarray:
    n, classes = scores.shape
    chosen = np.argmax(scores, axis=-1) if target is None else np.broadcast_to(
        np.asarray(target, dtype=np.int64), (n,))
    bad = chosen[(chosen < 0) | (chosen >= classes)]
    if bad.size:
        raise CnnvizError(f"class {int(bad[0])} is not an output of the model (0..{classes - 1})")
    return chosen


class _GradientMethod:
    """Shared set-up: the logit model and a compiled gradient of the target logit."""

    def __init__(self, model: ModelFacts | Any, layer: str | None = None) -> None:
        k = keras()
        self.facts = as_facts(model)
        self.model, self.layer = self.facts.model, layer
        self.logits = k.Model(input_struct(self.model), _logit_tensor(self.model))
        ops = k.ops

        def grad(x: Any, onehot: Any) -> tuple[Any, Any]:
            def score(inputs: Any) -> tuple[Any, Any]:
                logits = self.logits(inputs)
                return ops.sum(logits * onehot), logits

            (_, logits), g = value_and_grad(score)(x)
            return g, logits

        self._grad = compile_step(grad)

    def gradient(self, images: np.ndarray, target: int | np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """d logit[target] / d input for each image, and the chosen targets."""
        ops = keras().ops
        x = np.asarray(images, dtype=np.float32)
        chosen = self.targets(x, target)
        onehot = np.eye(self.classes, dtype=np.float32)[chosen]
        g, _ = self._grad(ops.convert_to_tensor(x), ops.convert_to_tensor(onehot))
        return ops.convert_to_numpy(g), chosen

    @property
    def classes(self) -> int:
        return int(self.logits.outputs[0].shape[-1])

    def targets(self, images: np.ndarray, target: int | np.ndarray | None) -> np.ndarray:
        """The given target classes (checked), or the predicted ones."""
        if target is None:
            return np.argmax(np.asarray(self.logits.predict(images, verbose=0)), axis=-1)
        return _targets(np.zeros((len(images), self.classes)), target)


class Saliency(_GradientMethod):
    """Vanilla gradient of the target logit with respect to the input pixels."""

    def attribute(self, images: np.ndarray, target: int | np.ndarray | None = None
                  ) -> np.ndarray:
        return self.gradient(images, target)[0]


class IntegratedGradients(_GradientMethod):
    """(x − baseline) × the mean gradient along the straight path from the baseline to x
    (trapezoid rule over ``steps`` intervals); the baseline defaults to the range's low end."""

    def attribute(self, images: np.ndarray, target: int | np.ndarray | None = None, *,
                  baseline: float | np.ndarray | None = None, steps: int = 50) -> np.ndarray:
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
            g = self.gradient(path.reshape(-1, *x.shape[1:]), np.tile(chosen, len(a)))[0]
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

    def attribute(self, images: np.ndarray, target: int | np.ndarray | None = None,
                  **kwargs: Any) -> np.ndarray:
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
    of the target logit's gradient, summed, passed through ReLU and resized to the input."""

    def __init__(self, model: ModelFacts | Any, layer: str | None = None) -> None:
        k = keras()
        self.facts = as_facts(model)
        self.model = model = self.facts.model
        self.layer = layer or default_layer(model, top_level=True, purpose="Grad-CAM")
        resolve_map_layers(model, [self.layer])
        if "/" in self.layer:
            raise CnnvizError(f"Grad-CAM needs a top-level layer; '{self.layer}' is inside a "
                              f"nested model (use '{self.layer.split('/')[0]}', its output)")
        logits = _logit_tensor(model)
        maps = output_feeding(logits, get_layer(model, self.layer))
        # One model with both outputs: the maps tensor it returns is the one the logits are
        # computed from, so residual paths around the layer are handled.
        self.both = k.Model(input_struct(model), [maps, logits])
        self._cam = compile_step(self._tf_cam() if backend_name() == "tensorflow"
                                 else self._head_cam(maps, logits))

    def _tf_cam(self) -> Any:
        """TensorFlow: the gradient with respect to the returned maps tensor itself."""
        import tensorflow as tf

        def cam(x: Any, onehot: Any) -> Any:
            with tf.GradientTape() as tape:
                a, out = self.both(x)
                score = tf.reduce_sum(out * onehot)
            g = tape.gradient(score, a)
            weights = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
            return tf.nn.relu(tf.reduce_sum(weights * a, axis=-1))

        return cam

    def _head_cam(self, maps: Any, logits: Any) -> Any:
        """Other backends: the part of the model after the layer as a function of the maps
        (models whose later layers need nothing else, i.e. no skip path around the layer)."""
        k = keras()
        ops = k.ops
        try:
            head = k.Model(maps, logits)
        except ValueError:
            raise CnnvizError(f"Grad-CAM on '{self.layer}' needs the tensorflow backend: a "
                              "path around the layer reaches the output") from None

        def cam(x: Any, onehot: Any) -> Any:
            a, _ = self.both(x)
            _, g = value_and_grad(lambda acts: (ops.sum(head(acts) * onehot), acts))(a)
            weights = ops.mean(g, axis=(1, 2), keepdims=True)
            return ops.relu(ops.sum(weights * a, axis=-1))

        return cam

    def attribute(self, images: np.ndarray, target: int | np.ndarray | None = None
                  ) -> np.ndarray:
        from skimage.transform import resize

        ops = keras().ops
        x = np.asarray(images, dtype=np.float32)
        scores = np.asarray(self.both.predict(x, verbose=0)[1])
        chosen = _targets(scores, target)
        onehot = np.eye(scores.shape[1], dtype=np.float32)[chosen]
        cams = ops.convert_to_numpy(self._cam(ops.convert_to_tensor(x),
                                              ops.convert_to_tensor(onehot)))
        size = x.shape[1:3]
        return np.stack([resize(c, size, order=1, mode="edge", anti_aliasing=False)
                         for c in cams])


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
            target: int | np.ndarray | None = None, layer: str | None = None, seed: int = 0,
            data: str | None = None) -> Attributions:
    """Each named method's attribution of model-ready ``images`` to ``target`` (default: the
    predicted class), with the model's outputs; ``data`` says where the images came from."""
    facts = as_facts(model)
    for name in methods:
        if name not in METHODS:
            raise CnnvizError(f"unknown attribution method '{name}': use one of "
                              f"{', '.join(METHODS)}")
    x = np.asarray(images, dtype=np.float32)
    probabilities = np.asarray(facts.model.predict(x, verbose=0))
    chosen = _targets(probabilities.reshape(len(x), -1), target)
    maps, cam_layer = {}, None
    for name in methods:
        method = make_method(name, facts, layer=layer, seed=seed)
        cam_layer = getattr(method, "layer", None) if name == "gradcam" else cam_layer
        maps[name] = method.attribute(x, chosen)
    meta = Meta(facts.name, facts.preprocess, (cam_layer,) if cam_layer else (), data, seed)
    return Attributions(x, maps, chosen, probabilities, meta,
                        {"explained": "predicted" if target is None else "given"})
