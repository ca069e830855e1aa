"""What is explained (a class logit or a channel's mean) and the gradient methods: saliency,
SmoothGrad, integrated gradients (black, blurred, noise or data-mean baselines) and expected
gradients over reference images."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cnnviz.core.backend import compile_step, keras, value_and_grad
from cnnviz.core.errors import CnnvizError
from cnnviz.core.tables import BASELINES
from cnnviz.model.facts import ModelFacts, as_facts, input_struct
from cnnviz.model.graph import feature_model, preactivation_output


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


def resolve_target(target: Target, scores: Any, images: np.ndarray,
                   is_class: bool) -> ChannelTarget:
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


class GradientMethod:
    """Shared set-up: per explained layer (``None``: the output), a score model and a compiled
    gradient of the target's score with respect to the input."""

    signed = True

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
                                                       verbose=0, batch_size=128))

    def target_scores(self, images: np.ndarray, target: ChannelTarget) -> np.ndarray:
        """Each image's score of its own target column: (N,)."""
        values = self.scores(images, target.layer)
        return values[np.arange(len(values)), np.broadcast_to(target.channel, len(values))]

    def targets(self, images: np.ndarray, target: Target) -> ChannelTarget:
        """The given targets (checked), or the highest-scoring ones, one column per image."""
        x = np.asarray(images, dtype=np.float32)
        layer = target.layer if isinstance(target, ChannelTarget) else None
        return resolve_target(target, self._head(layer)[0], x, self.is_class)

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


class Saliency(GradientMethod):
    """The gradient of the target's score with respect to the input pixels, signed: positive
    where brightening a pixel raises the score."""

    def attribute(self, images: np.ndarray, target: Target = None) -> np.ndarray:
        """The gradient of the target's score with respect to each input pixel."""
        return self.gradient(images, target)[0]


def baselines(kind: str, images: np.ndarray, value_range: tuple[Any, Any], *,
              samples: int = 8, references: np.ndarray | None = None,
              seed: int = 0) -> np.ndarray:
    """(S, N, H, W, C) baselines for integrated gradients: ``black`` (the range's low end),
    ``blur`` (each image blurred with σ = 1/8 of its side), ``noise`` (``samples`` uniform
    noise images in the range), ``mean`` (the mean of ``references``)."""
    from scipy.ndimage import gaussian_filter

    x = np.asarray(images, np.float32)
    lo, hi = (np.broadcast_to(np.asarray(v, np.float32), x.shape[-1:]) for v in value_range)
    if kind == "black":
        return np.broadcast_to(lo, x.shape)[None].copy()
    if kind == "blur":
        sigma = max(x.shape[1:3]) / 8
        return np.stack([gaussian_filter(image, (sigma, sigma, 0), mode="nearest")
                         for image in x])[None]
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return (lo + (hi - lo) * rng.random((samples, *x.shape))).astype(np.float32)
    if kind == "mean":
        if references is None or not len(references):
            raise CnnvizError("a data-mean baseline needs reference images (--data)")
        mean = np.asarray(references, np.float64).mean(axis=0).astype(np.float32)
        return np.broadcast_to(mean, x.shape)[None].copy()
    BASELINES.check(kind)
    raise CnnvizError(f"the {kind} baseline is not one image per input: IntegratedGradients "
                      "draws it")


class IntegratedGradients(GradientMethod):
    """(x − baseline) × the mean gradient along the straight path from the baseline to x
    (trapezoid rule over ``steps`` intervals), averaged over the baselines drawn (several for
    ``noise``). ``expected``: expected gradients — one reference image and one random point on
    the path per sample, averaged over ``samples``."""

    def attribute(self, images: np.ndarray, target: Target = None, *,
                  baseline: str | float | np.ndarray = "black", steps: int = 50,
                  samples: int = 8, references: np.ndarray | None = None, seed: int = 0,
                  return_delta: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Integrated gradients of the target's score, one value per input pixel; with
        ``return_delta`` also each image's completeness error: the attributions' sum minus
        (score(x) − mean score of the baselines)."""
        if steps <= 0 or samples <= 0:
            raise CnnvizError("steps and samples must be positive")
        x = np.asarray(images, dtype=np.float32)
        chosen = self.targets(x, target)
        if isinstance(baseline, str) and baseline == "expected":
            attribution, base = self._expected(x, chosen, references, samples, seed)
        else:
            base = baselines(baseline, x, self.facts.value_range, samples=samples,
                             references=references, seed=seed) \
                if isinstance(baseline, str) else np.broadcast_to(
                    np.asarray(baseline, np.float32), x.shape)[None]
            attribution = np.mean([self._path(x, b, chosen, steps) for b in base], axis=0)
        if not return_delta:
            return attribution
        start = np.mean([self.target_scores(b, chosen) for b in base], axis=0)
        delta = attribution.reshape(len(x), -1).sum(axis=1) - (self.target_scores(x, chosen)
                                                                - start)
        return attribution, delta

    def _path(self, x: np.ndarray, base: np.ndarray, chosen: ChannelTarget,
              steps: int) -> np.ndarray:
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

    def _expected(self, x: np.ndarray, chosen: ChannelTarget, references: np.ndarray | None,
                  samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Expected gradients and the (S, N, ...) references drawn."""
        if references is None or not len(references):
            raise CnnvizError("expected gradients need reference images (--data)")
        rng = np.random.default_rng(seed)
        refs = np.asarray(references, np.float32)[rng.integers(0, len(references),
                                                               (samples, len(x)))]
        alphas = rng.random((samples, len(x), 1, 1, 1)).astype(np.float32)
        points = refs + alphas * (x[None] - refs)
        tiled = replace(chosen, channel=np.tile(chosen.channel, samples))
        g = self.gradient(points.reshape(-1, *x.shape[1:]), tiled)[0].reshape(points.shape)
        return ((x[None] - refs) * g).mean(axis=0), refs


class SmoothGrad:
    """The mean of any attribution method over ``samples`` noisy copies of the input (Gaussian,
    ``noise`` × the input range as standard deviation) — captum's NoiseTunnel: it wraps a
    gradient method or a class activation map alike, explaining the target chosen on the
    clean input in every copy."""

    def __init__(self, method: Any, samples: int = 25, noise: float = 0.15,
                 seed: int = 0) -> None:
        if samples <= 0 or noise < 0:
            raise CnnvizError("SmoothGrad needs samples > 0 and noise ≥ 0")
        self.method, self.samples, self.noise, self.seed = method, samples, noise, seed
        self.facts, self.signed = method.facts, method.signed
        self.layer = getattr(method, "layer", None)

    def targets(self, images: np.ndarray, target: Target) -> ChannelTarget:
        """The wrapped method's targets."""
        return self.method.targets(images, target)

    def attribute(self, images: np.ndarray, target: Target = None,
                  **kwargs: Any) -> np.ndarray:
        """The mean of the method's attributions of the noisy copies."""
        lo, hi = self.facts.value_range
        x = np.asarray(images, dtype=np.float32)
        chosen = self.method.targets(x, target)
        rng = np.random.default_rng(self.seed)
        total = None
        for _ in range(self.samples):
            noisy = x + rng.normal(0.0, self.noise * (np.asarray(hi) - np.asarray(lo)),
                                   x.shape).astype(np.float32)
            values = self.method.attribute(noisy, chosen, **kwargs)
            total = values if total is None else total + values
        return total / self.samples


def smoothgrad(model: ModelFacts | Any, seed: int = 0) -> SmoothGrad:
    """SmoothGrad as the table names it: saliency through the noise tunnel."""
    return SmoothGrad(Saliency(model), seed=seed)
