"""The batched ascent loop: K filters of a layer as K images in one compiled step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from cnnviz.backend import keras
from cnnviz.errors import CnnvizError
from cnnviz.oip import objectives as obj
from cnnviz.oip.compiled import ModelCache, backend_name, compile_step, value_and_grad
from cnnviz.oip.param import make_param, start_images
from cnnviz.oip.results import FilterResult
from cnnviz.oip.transforms import IDENTITY, Transforms, apply_affine, blur, total_variation

UPDATES = ("rms", "adam")
DEFAULT_BUDGET = 512 * 2**20
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Settings:
    """How to ascend. ``lr`` is a fraction of the input value range per step for the pixel
    parameterization and raw coefficient units for fourier."""

    steps: int = 100
    update: str = "rms"
    lr: float = 0.05
    param: str = "pixel"
    decay: float = 1.0
    start: str = "noise"
    wavelengths: tuple[float, ...] = (14.0, 7.0, 3.5, 1.75)
    amplitude: float = 0.15
    noise: float = 0.02
    precursors: int = 0
    precursor_steps: int = 20
    transforms: Transforms = field(default_factory=Transforms)
    tv: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    blur_every: int = 0
    blur_sigma: float = 0.5
    preactivation: bool = True
    seed: int = 0
    jit_compile: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        """The settings recorded in a result's ``params`` (to resume a run exactly)."""
        from dataclasses import fields

        names = {f.name for f in fields(cls)} - {"transforms"}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()
                  if k in names}
        moves = {k: tuple(v) if isinstance(v, list) else v
                 for k, v in params.get("transforms", {}).items()}
        return cls(**values, transforms=Transforms(**moves))

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise CnnvizError(f"steps must be positive, got {self.steps}")
        if self.update not in UPDATES:
            raise CnnvizError(f"unknown method '{self.update}': use {' or '.join(UPDATES)}")
        if self.lr <= 0:
            raise CnnvizError(f"learning rate must be positive, got {self.lr}")
        if self.precursors < 0 or (self.precursors and self.precursor_steps <= 0):
            raise CnnvizError("precursors must be ≥ 0, with precursor steps > 0")
        if min(self.tv, self.l1, self.l2, self.blur_every, self.blur_sigma) < 0:
            raise CnnvizError("penalties, blur interval and blur sigma must be ≥ 0")


def bytes_per_image(model: Any, layer: str) -> int:
    """Rough memory one image needs in a step: the float32 outputs of every layer up to
    ``layer``, kept for the backward pass and matched by gradients (×3)."""
    from cnnviz.models import list_layers

    total = int(np.prod(model.inputs[0].shape[1:]))
    for info in list_layers(model):
        # A nested model's output is its last layer's, already counted inside it.
        if info.output_shape and info.type not in ("Functional", "Sequential"):
            total += int(np.prod([s for s in info.output_shape[1:] if s]))
        if info.name == layer:
            break
    return 4 * 3 * total


def chunk_size(model: Any, layer: str, n: int, batch: int | None = None,
               budget: int = DEFAULT_BUDGET) -> int:
    """Images per compiled step: ``batch`` if given, else as many as fit ``budget`` bytes."""
    if batch is not None:
        if batch <= 0:
            raise CnnvizError(f"batch must be positive, got {batch}")
        return min(batch, n)
    return max(1, min(n, budget // bytes_per_image(model, layer)))


class _Stepper:
    """Compiled ascent step and measurement for one model, objective and settings."""

    def __init__(self, model: Any, objective: obj.Objective, settings: Settings,
                 value_range: tuple[float, float], shape: tuple[int, int, int]) -> None:
        from cnnviz.models import _as_list, feature_model

        ops = keras().ops
        self.settings, self.value_range, self.shape = settings, value_range, shape
        self.param = make_param(settings.param, value_range, shape, settings.decay)
        self.names = list(objective.layers)
        feature = feature_model(model, self.names, preactivation=settings.preactivation)
        lo, hi = value_range
        mid = (lo + hi) / 2
        span = float(np.mean(np.asarray(hi) - np.asarray(lo)))  # per-channel ranges: their mean
        s, param, transforms = settings, self.param, settings.transforms
        lr = s.lr * param.step_scale
        b1, b2, eps = 0.9, 0.999, 1e-8

        def scores(raw: Any, channels: Any, affine: Any) -> tuple[Any, Any]:
            image = param.to_image(raw)
            seen = apply_affine(image, affine, transforms.pad) if transforms.active else image
            acts = dict(zip(self.names, _as_list(feature(seen)), strict=True))
            score = objective(acts, channels)
            total = score
            if s.tv:
                total = total - s.tv * total_variation((image - mid) / span)
            if s.l1:
                total = total - s.l1 * ops.mean(ops.abs(image - mid), axis=(1, 2, 3)) / span
            if s.l2:
                total = total - s.l2 * ops.mean(ops.square((image - mid) / span), axis=(1, 2, 3))
            return total, score

        def step(raw: Any, m: Any, v: Any, t: Any, alive: Any, channels: Any,
                 affine: Any) -> tuple[Any, ...]:
            def loss(r: Any) -> tuple[Any, Any]:
                total, score = scores(r, channels, affine)
                return -ops.sum(total), score

            (_, score), grad = value_and_grad(loss)(raw)
            if s.update == "rms":
                rms = ops.sqrt(ops.mean(ops.square(grad), axis=(1, 2, 3), keepdims=True))
                delta = lr * grad / (rms + 1e-12)
            else:
                m = b1 * m + (1 - b1) * grad
                v = b2 * v + (1 - b2) * ops.square(grad)
                m_hat = m / (1 - ops.power(b1, t + 1.0))
                v_hat = v / (1 - ops.power(b2, t + 1.0))
                delta = lr * m_hat / (ops.sqrt(v_hat) + eps)
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
            acts = dict(zip(self.names, _as_list(feature(image)), strict=True))
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
                 shape: tuple[int, int]) -> np.ndarray:
    """(steps, K, 8) transform parameters, one random stream per image."""
    if not settings.transforms.active:
        return np.broadcast_to(IDENTITY, (steps, len(streams), 8)).copy()
    plans = [settings.transforms.sample(np.random.default_rng([settings.seed, f, j, 1]), steps,
                                        shape) for f, j in streams]
    return np.stack(plans, axis=1)


def _float32_range(value_range: tuple[Any, Any]) -> tuple[Any, Any]:
    """Scalars stay floats; per-channel bounds become float32 arrays (they meet float32
    tensors inside the compiled step)."""
    lo, hi = value_range
    if np.ndim(lo) == 0 and np.ndim(hi) == 0:
        return float(lo), float(hi)
    return np.asarray(lo, np.float32), np.asarray(hi, np.float32)


def ascend(model: Any, objective: obj.Objective, channels: np.ndarray,
           settings: Settings = Settings(), *, value_range: tuple[float, float] | None = None,
           batch: int | None = None, budget: int = DEFAULT_BUDGET,
           on_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run the ascent for images scored by ``objective`` with ``channels[k]`` as image k's
    filter, in chunks; with ``precursors`` M, M short runs per image first, continuing the best.
    Returns images, per-image scores, curves, notes and the chunk size; stops cleanly (with
    ``interrupted``) at Ctrl-C, keeping the finished chunks."""
    from cnnviz.models import input_range, input_shape

    channels = np.asarray(channels, dtype=np.int64)
    shape = input_shape(model)
    value_range = _float32_range(value_range or input_range(model))
    stepper = _stepper(model, objective, settings, value_range, shape)
    layer = objective.layers[0]
    s = settings
    size = chunk_size(model, layer, len(channels) * max(1, s.precursors), batch, budget)
    if s.precursors:
        size = max(1, size // s.precursors)
    starts_per = max(1, s.precursors)
    total = -(-len(channels) // size) * (s.steps + (s.precursor_steps if s.precursors else 0))
    done = [0]

    def tick() -> None:
        done[0] += 1
        if on_progress:
            on_progress(done[0], total)

    out_raw, alive_all, curves_all, finished = [], [], [], 0
    interrupted = False
    try:
        for begin in range(0, len(channels), size):
            chunk = channels[begin:begin + size]
            streams = [(int(f), j) for f in chunk for j in range(starts_per)]
            starts = start_images(streams, shape, value_range, kind=s.start, seed=s.seed,
                                  wavelengths=s.wavelengths, amplitude=s.amplitude,
                                  noise=s.noise)
            raw = stepper.param.init(starts)
            if s.precursors:
                pre_ch = np.repeat(chunk, starts_per)
                pre_raw, pre_alive, pre_curves = stepper.run(
                    raw, pre_ch, _affine_plan(s, streams, s.precursor_steps, shape[:2]),
                    s.precursor_steps, tick)
                final = np.where(pre_alive, pre_curves[:, -1], -np.inf)
                best = final.reshape(len(chunk), starts_per).argmax(axis=1)
                raw = pre_raw[np.arange(len(chunk)) * starts_per + best]
            main_streams = [(int(f), starts_per) for f in chunk]
            raw, alive, curves = stepper.run(raw, chunk,
                                             _affine_plan(s, main_streams, s.steps, shape[:2]),
                                             s.steps, tick)
            out_raw.append(raw)
            alive_all.append(alive)
            curves_all.append(curves)
            finished += len(chunk)
    except KeyboardInterrupt:
        interrupted = True
    if not out_raw:
        return {"images": np.zeros((0, *shape), np.float32), "scores": np.zeros(0),
                "maps": np.zeros((0,)),
                "curves": np.zeros((0, s.steps)), "alive": np.zeros(0, bool), "chunk": size,
                "interrupted": interrupted}
    raw_all = np.concatenate(out_raw)
    ops = keras().ops
    images, scores, maps = [], [], []
    for begin in range(0, finished, size):
        image, score, own = stepper.measure(
            ops.convert_to_tensor(raw_all[begin:begin + size]),
            ops.convert_to_tensor(channels[begin:begin + size].astype(np.int32)))
        images.append(ops.convert_to_numpy(image))
        scores.append(ops.convert_to_numpy(score))
        maps.append(ops.convert_to_numpy(own))
    return {"images": np.concatenate(images), "scores": np.concatenate(scores),
            "maps": np.concatenate(maps),
            "curves": np.concatenate(curves_all), "alive": np.concatenate(alive_all),
            "chunk": size, "interrupted": interrupted}


def visualize_filters(model: Any, layer: str, filters: list[int] | None = None,
                      settings: Settings = Settings(), *,
                      objective: obj.Objective | None = None,
                      reference_images: np.ndarray | None = None, examples: int = 0,
                      batch: int | None = None, budget: int = DEFAULT_BUDGET,
                      on_progress: ProgressFn | None = None) -> FilterResult:
    """The image that maximally activates each filter (map) of ``layer``, all filters at once.

    The default objective is the mean of the filter's map, read before the layer's fused
    activation (``settings.preactivation``). With ``reference_images`` (a data set of raw
    images, uint8 or 0..1), each filter's best real activation is measured too, for the ratio
    shown in galleries, and with ``examples`` k its k most exciting real images are kept."""
    from cnnviz.activations import top_examples
    from cnnviz.data import images_to_model_input
    from cnnviz.models import (
        check_finite_weights,
        get_layer,
        has_fused_activation,
        input_range,
        input_shape,
        resolve_map_layers,
    )
    from cnnviz.preprocess import preprocess_of

    resolve_map_layers(model, [layer])
    target = get_layer(model, layer)
    n_maps = int(target.output.shape[-1])
    chosen = np.arange(n_maps) if filters is None else np.asarray(filters, dtype=np.int64)
    if chosen.size == 0:
        raise CnnvizError("no filters chosen")
    bad = chosen[(chosen < 0) | (chosen >= n_maps)]
    if bad.size:
        raise CnnvizError(f"filter {int(bad[0])} is out of range: layer '{layer}' has "
                          f"{n_maps} filters (0..{n_maps - 1})")
    check_finite_weights(model)
    preact = settings.preactivation and has_fused_activation(model, layer)
    settings = replace(settings, preactivation=preact)
    objective = objective or obj.channel(layer)
    value_range = input_range(model)
    preprocess = preprocess_of(model)
    run = ascend(model, objective, chosen, settings, value_range=value_range, batch=batch,
                 budget=budget, on_progress=on_progress)
    done = len(run["images"])
    images = run["images"]
    post_max = np.zeros(done)
    if done:  # the filter's own map after the layer's activation
        own = run["maps"] if objective.layers[0] == layer else None
        if own is None or own.ndim != 3:
            from cnnviz.activations import activations

            own = activations(model, images, [layer]).maps[layer]
            own = own[np.arange(done), :, :, chosen[:done]]
        elif preact:
            own = keras().ops.convert_to_numpy(target.activation(own))
        post_max = own.max(axis=(1, 2))
    notes = {int(f): "stopped: the ascent produced NaN or Inf" for f, ok in
             zip(chosen[:done], run["alive"], strict=True) if not ok}
    for f, dead in zip(chosen[:done], post_max <= 0, strict=True):
        if dead:
            notes.setdefault(int(f), "dead: its map stays zero after the activation")
    best_real = example_images = example_values = example_indices = None
    if examples and reference_images is None:
        raise CnnvizError("examples need reference images to choose from")
    if reference_images is not None and done:
        index, values = top_examples(model, layer, reference_images, max(1, examples),
                                     preactivation=preact)
        best_real = values[chosen[:done], 0]
        if examples:
            example_indices = index[chosen[:done]]
            example_values = values[chosen[:done]]
            picked = images_to_model_input(reference_images[example_indices.reshape(-1)],
                                           input_shape(model), preprocess)
            example_images = picked.reshape(*example_indices.shape, *picked.shape[1:])
    params = {**asdict(settings), "transforms": asdict(settings.transforms),
              "objective": objective.name, "chunk": run["chunk"], "backend": backend_name(),
              "model": model.name, "requested": chosen.tolist(),
              "value_range": [np.asarray(v).tolist() for v in value_range],
              "preprocess": preprocess.to_params()}
    return FilterResult(layer, chosen[:done], images, run["scores"], post_max, run["curves"],
                        best_real, notes, params, run["interrupted"], example_images,
                        example_values, example_indices)


def resume_filters(model: Any, previous: FilterResult, *,
                   reference_images: np.ndarray | None = None, batch: int | None = None,
                   budget: int = DEFAULT_BUDGET,
                   on_progress: ProgressFn | None = None) -> FilterResult:
    """Finish an interrupted :func:`visualize_filters` run with its own layer, settings,
    preprocessing and number of examples; the result equals an uninterrupted run's."""
    from cnnviz.preprocess import set_preprocess

    if not previous.interrupted:
        raise CnnvizError("the saved run is complete: nothing to resume")
    if previous.params.get("model") != model.name:
        raise CnnvizError(f"the saved run is of model '{previous.params.get('model')}', "
                          f"not '{model.name}'")
    if previous.params.get("objective") != obj.channel(previous.layer).name:
        raise CnnvizError(f"the saved run used objective {previous.params.get('objective')}: "
                          "resume it with visualize_filters and that objective")
    examples = 0 if previous.example_images is None else previous.example_images.shape[1]
    if (previous.best_real is not None or examples) and reference_images is None:
        raise CnnvizError("the saved run compared with real images: pass them again")
    set_preprocess(model, previous.params.get("preprocess", {}).get("name", "auto"))
    done = set(previous.filters.tolist())
    rest = [f for f in previous.params["requested"] if f not in done]
    reference = reference_images if previous.best_real is not None or examples else None
    more = visualize_filters(model, previous.layer, rest, Settings.from_params(previous.params),
                             reference_images=reference, examples=examples, batch=batch,
                             budget=budget, on_progress=on_progress)
    return previous.merged(more)
