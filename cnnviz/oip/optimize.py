"""The batched ascent loop: K filters of a layer as K images in one compiled step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnviz.backend import ModelCache, compile_step, keras, value_and_grad
from cnnviz.graph import feature_model
from cnnviz.models import ModelFacts, as_facts, as_list
from cnnviz.oip import objectives as obj
from cnnviz.oip.param import make_param, start_images
from cnnviz.oip.settings import DEFAULT_BUDGET, Settings, memory_plan
from cnnviz.oip.transforms import IDENTITY, apply_affine, blur, total_variation

ProgressFn = Callable[[int, int], None]


class _Stepper:
    """Compiled ascent step and measurement for one model, objective and settings."""

    def __init__(self, model: Any, objective: obj.Objective, settings: Settings,
                 value_range: tuple[float, float], shape: tuple[int, int, int]) -> None:
        ops = keras().ops
        self.settings, self.value_range, self.shape = settings, value_range, shape
        self.param = make_param(settings.param, value_range, shape, settings.decay,
                                settings.colour)
        self.names = list(objective.layers)
        feature = feature_model(model, self.names, preactivation=settings.preactivation)
        lo, hi = value_range
        mid = (lo + hi) / 2
        span = float(np.mean(np.asarray(hi) - np.asarray(lo)))  # per-channel ranges: their mean
        s, param, transforms = settings, self.param, settings.transforms
        lr = s.lr * param.step_scale

        def scores(raw: Any, channels: Any, affine: Any) -> tuple[Any, Any]:
            image = param.to_image(raw)
            seen = apply_affine(image, affine, transforms.pad) if transforms.active else image
            acts = dict(zip(self.names, as_list(feature(seen)), strict=True))
            score = objective(acts, channels)
            return _penalized(score, image, s, mid, span), score

        def step(raw: Any, m: Any, v: Any, t: Any, alive: Any, channels: Any,
                 affine: Any) -> tuple[Any, ...]:
            def loss(r: Any) -> tuple[Any, Any]:
                total, score = scores(r, channels, affine)
                return -ops.sum(total), score

            (_, score), grad = value_and_grad(loss)(raw)
            delta, m, v = _update(s.update, lr, grad, m, v, t)
            new = param.project(raw - delta)
            finite = ops.all(ops.isfinite(new), axis=(1, 2, 3))
            ok = ops.logical_and(ops.logical_and(alive, ops.isfinite(score)), finite)
            new = ops.where(ops.reshape(ok, (-1, 1, 1, 1)), new, raw)
            return new, m, v, ok, score

        def smooth(raw: Any) -> Any:
            return param.project(blur(raw, s.blur_sigma))

        def measure(raw: Any, channels: Any) -> tuple[Any, Any, Any]:
            """In-range images, their scores and each image's own map of the first layer."""
            image = param.to_image(raw)
            acts = dict(zip(self.names, as_list(feature(image)), strict=True))
            first = acts[self.names[0]]
            own = first
            if len(first.shape) == 4:
                onehot = ops.one_hot(ops.cast(channels, "int32"), first.shape[-1],
                                     dtype=first.dtype)
                own = ops.sum(first * onehot[:, None, None, :], axis=-1)
            return image, objective(acts, channels), own

        self.step = compile_step(step, jit_compile=s.jit_compile)
        self.smooth = compile_step(smooth)
        self.measure = compile_step(measure)

    def run(self, raw: np.ndarray, channels: np.ndarray, affine: np.ndarray, steps: int,
            on_step: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
        """Ascend from raw variables (K, ...) for ``steps``; returns raw, alive (K,) and the
        score curves (K, steps). ``affine`` is (steps, K, 8)."""
        ops = keras().ops
        s = self.settings
        x = ops.convert_to_tensor(raw)
        m = ops.zeros_like(x)
        v = ops.zeros_like(x)
        alive = ops.ones((raw.shape[0],), dtype="bool")
        ch = ops.convert_to_tensor(channels.astype(np.int32))
        curve = []
        for t in range(steps):
            x, m, v, alive, score = self.step(x, m, v, ops.convert_to_tensor(float(t)), alive,
                                              ch, ops.convert_to_tensor(affine[t]))
            curve.append(score)
            if s.blur_every and s.param == "pixel" and (t + 1) % s.blur_every == 0:
                x = self.smooth(x)
            if on_step:
                on_step()
        curves = np.stack([ops.convert_to_numpy(c) for c in curve], axis=1)
        return ops.convert_to_numpy(x), ops.convert_to_numpy(alive), curves


def _penalized(score: Any, image: Any, s: Settings, mid: Any, span: float) -> Any:
    """The score minus the settings' total-variation, L1 and L2 penalties on the image."""
    ops = keras().ops
    total = score
    if s.tv:
        total = total - s.tv * total_variation((image - mid) / span)
    if s.l1:
        total = total - s.l1 * ops.mean(ops.abs(image - mid), axis=(1, 2, 3)) / span
    if s.l2:
        total = total - s.l2 * ops.mean(ops.square((image - mid) / span), axis=(1, 2, 3))
    return total


def _update(rule: str, lr: float, grad: Any, m: Any, v: Any, t: Any) -> tuple[Any, Any, Any]:
    """The step to subtract (RMS-normalized gradient, or Adam with moments m and v at step t),
    and the new moments."""
    ops = keras().ops
    if rule == "rms":
        rms = ops.sqrt(ops.mean(ops.square(grad), axis=(1, 2, 3), keepdims=True))
        return lr * grad / (rms + 1e-12), m, v
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * ops.square(grad)
    m_hat = m / (1 - ops.power(b1, t + 1.0))
    v_hat = v / (1 - ops.power(b2, t + 1.0))
    return lr * m_hat / (ops.sqrt(v_hat) + eps), m, v


_STEPPERS = ModelCache()


def _stepper(model: Any, objective: obj.Objective, settings: Settings,
             value_range: tuple[float, float], shape: tuple[int, int, int]) -> _Stepper:
    """A compiled stepper, reused while the model, objective name and settings stay the same
    (a second gallery of the same layer skips tracing)."""
    key = (objective.name, settings,
           tuple(tuple(np.atleast_1d(np.asarray(v, np.float64)).tolist()) for v in value_range),
           shape)
    return _STEPPERS.get(model, key,
                         lambda: _Stepper(model, objective, settings, value_range, shape))


def _affine_plan(settings: Settings, streams: list[tuple[int, int]], steps: int,
                 shape: tuple[int, int], settle: float = 0.0) -> np.ndarray:
    """(steps, K, 8) transform parameters, one random stream per image; the last ``settle``
    share of the steps untransformed."""
    if not settings.transforms.active:
        return np.broadcast_to(IDENTITY, (steps, len(streams), 8)).copy()
    plans = np.stack([settings.transforms.sample(np.random.default_rng([settings.seed, f, j, 1]),
                                                 steps, shape) for f, j in streams], axis=1)
    plans[steps - round(settle * steps):] = IDENTITY
    return plans


def _float32_range(value_range: tuple[Any, Any]) -> tuple[Any, Any]:
    """Scalars stay floats; per-channel bounds become float32 arrays (they meet float32
    tensors inside the compiled step)."""
    lo, hi = value_range
    if np.ndim(lo) == 0 and np.ndim(hi) == 0:
        return float(lo), float(hi)
    return np.asarray(lo, np.float32), np.asarray(hi, np.float32)


@dataclass
class Ascent:
    """What an ascent returns: final in-range images, their scores, each image's own map of the
    first objective layer, the score curves, which images stayed finite, the chunk size, and
    whether Ctrl-C stopped it early (then only the finished chunks are here)."""

    images: np.ndarray
    scores: np.ndarray
    maps: np.ndarray
    curves: np.ndarray
    alive: np.ndarray
    chunk: int
    interrupted: bool = False


def ascend(model: ModelFacts | Any, objective: obj.Objective, channels: np.ndarray,
           settings: Settings | None = None, *, size: tuple[int, int] | None = None,
           batch: int | None = None, budget: int = DEFAULT_BUDGET,
           start_image: np.ndarray | None = None,
           on_progress: ProgressFn | None = None) -> Ascent:
    """Run the ascent for images scored by ``objective`` with ``channels[k]`` as image k's
    filter, in chunks; with ``precursors`` M, M short runs per image first, continuing the best.
    ``size`` is the image size for a model that takes any (default: 224 colour, 64 grey);
    ``start_image`` the model-ready image an ``image`` start begins from.
    Stops cleanly at Ctrl-C, keeping the finished chunks."""
    facts = as_facts(model)
    settings = settings or Settings()
    channels = np.asarray(channels, dtype=np.int64)
    shape, _ = facts.default_size(size)
    value_range = _float32_range(facts.value_range)
    stepper = _stepper(facts.model, objective, settings, value_range, shape)
    s = settings
    starts_per = max(1, s.precursors)
    plan = memory_plan(facts.model, objective.layers[0], len(channels) * starts_per, batch,
                       budget, shape, s.steps + (s.precursor_steps if s.precursors else 0))
    size = max(1, plan.chunk // starts_per) if s.precursors else plan.chunk
    total = -(-len(channels) // size) * (s.steps + (s.precursor_steps if s.precursors else 0))
    done = [0]

    def tick() -> None:
        done[0] += 1
        if on_progress:
            on_progress(done[0], total)

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    try:
        for begin in range(0, len(channels), size):
            parts.append(_ascend_chunk(stepper, channels[begin:begin + size], s, value_range,
                                       tick, start_image))
    except KeyboardInterrupt:
        return _measured(stepper, parts, channels, size, s.steps, interrupted=True)
    return _measured(stepper, parts, channels, size, s.steps)


def _ascend_chunk(stepper: _Stepper, chunk: np.ndarray, s: Settings, value_range: Any,
                  tick: Callable[[], None], start_image: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw variables, alive flags and score curves of one chunk of filters."""
    shape = stepper.shape
    starts_per = max(1, s.precursors)
    streams = [(int(f), j) for f in chunk for j in range(starts_per)]
    starts = start_images(streams, shape, value_range, kind=s.start, seed=s.seed,
                          wavelengths=s.wavelengths, amplitude=s.amplitude, noise=s.noise,
                          image=start_image)
    raw = stepper.param.init(starts)
    if s.precursors:
        pre_raw, pre_alive, pre_curves = stepper.run(
            raw, np.repeat(chunk, starts_per),
            _affine_plan(s, streams, s.precursor_steps, shape[:2]), s.precursor_steps, tick)
        final = np.where(pre_alive, pre_curves[:, -1], -np.inf)
        best = final.reshape(len(chunk), starts_per).argmax(axis=1)
        raw = pre_raw[np.arange(len(chunk)) * starts_per + best]
    main_streams = [(int(f), starts_per) for f in chunk]
    return stepper.run(raw, chunk, _affine_plan(s, main_streams, s.steps, shape[:2], s.settle),
                       s.steps, tick)


def _measured(stepper: _Stepper, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
              channels: np.ndarray, size: int, steps: int, interrupted: bool = False) -> Ascent:
    """The finished chunks' images, scores and own maps, measured on the untransformed
    images."""
    if not parts:
        return Ascent(np.zeros((0, *stepper.shape), np.float32), np.zeros(0), np.zeros((0,)),
                      np.zeros((0, steps)), np.zeros(0, bool), size, interrupted)
    raw_all = np.concatenate([raw for raw, _, _ in parts])
    ops = keras().ops
    images, scores, maps = [], [], []
    for begin in range(0, len(raw_all), size):
        image, score, own = stepper.measure(
            ops.convert_to_tensor(raw_all[begin:begin + size]),
            ops.convert_to_tensor(channels[begin:begin + size].astype(np.int32)))
        images.append(ops.convert_to_numpy(image))
        scores.append(ops.convert_to_numpy(score))
        maps.append(ops.convert_to_numpy(own))
    return Ascent(np.concatenate(images), np.concatenate(scores), np.concatenate(maps),
                  np.concatenate([c for _, _, c in parts]),
                  np.concatenate([a for _, a, _ in parts]), size, interrupted)
