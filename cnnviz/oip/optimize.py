"""The batched ascent loop: K filters of a layer as K images in one compiled step."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnviz.core.backend import ModelCache, compile_step, keras, value_and_grad
from cnnviz.core.errors import CnnvizError, Stopped
from cnnviz.core.precision import computing_in
from cnnviz.model.facts import ModelFacts, as_facts, as_list
from cnnviz.model.graph import feature_model
from cnnviz.oip import objectives as obj
from cnnviz.oip.fastgrad import ascent_forward
from cnnviz.oip.param import make_param, start_images
from cnnviz.oip.pieces import Penalty
from cnnviz.oip.record import Curves, TransformPlan, curve_points
from cnnviz.oip.settings import DEFAULT_BUDGET, Settings, memory_plan
from cnnviz.oip.transforms import apply_affine, blur
from cnnviz.results.filters import ChunkState

ProgressFn = Callable[[int, int], None]
StepFn = Callable[[Callable[[], ChunkState]], None]


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
        forward = ascent_forward(feature)  # the same values, a cheaper input gradient
        lo, hi = value_range
        mid = (lo + hi) / 2
        span = float(np.mean(np.asarray(hi) - np.asarray(lo)))  # per-channel ranges: their mean
        s, param, transforms = settings, self.param, settings.transforms
        updater, penalties = settings.updater, settings.all_penalties
        lr = s.lr * param.step_scale
        reduced = s.precision != "float32"

        def scores(raw: Any, channels: Any, affine: Any, moving: Any) -> tuple[Any, Any]:
            image = param.to_image(raw)
            outputs = as_list(forward(_moved(image, affine, moving, transforms)))
            if reduced:  # the objective and what follows it in float32
                outputs = [ops.cast(o, "float32") for o in outputs]
            acts = dict(zip(self.names, outputs, strict=True))
            score = objective(acts, channels)
            return _penalized(score, image, penalties, mid, span), score

        def step(raw: Any, m: Any, v: Any, t: Any, alive: Any, channels: Any,
                 affine: Any, moving: Any) -> tuple[Any, ...]:
            def loss(r: Any) -> tuple[Any, Any]:
                total, score = scores(r, channels, affine, moving)
                return -ops.sum(total), score

            (_, score), grad = value_and_grad(loss)(raw)
            delta, m, v = updater(lr, grad, m, v, t)
            new = param.project(raw - delta)
            finite = ops.all(ops.isfinite(new), axis=(1, 2, 3))
            ok = ops.logical_and(ops.logical_and(alive, ops.isfinite(score)), finite)
            new = ops.where(ops.reshape(ok, (-1, 1, 1, 1)), new, raw)
            return new, m, v, ok, score

        def smooth(raw: Any) -> Any:
            return param.project(blur(raw, s.blur_sigma))

        def measure(raw: Any, channels: Any) -> tuple[Any, Any, Any]:
            """In-range images, their scores and each image's own map of the first layer, in
            float32 whatever the ascent's precision."""
            image = param.to_image(raw)
            acts = dict(zip(self.names, as_list(feature(image)), strict=True))
            first = acts[self.names[0]]
            own = first
            if len(first.shape) == 4:
                onehot = ops.one_hot(ops.cast(channels, "int32"), first.shape[-1],
                                     dtype=first.dtype)
                own = ops.sum(first * onehot[:, None, None, :], axis=-1)
            return image, objective(acts, channels), own

        self.step = _in_precision(compile_step(step, jit_compile=s.jit_compile), model,
                                  s.precision)
        self.smooth = compile_step(smooth)
        self.measure = compile_step(measure)

    def run(self, raw: np.ndarray, channels: np.ndarray, affine: Any, steps: int,
            on_step: StepFn | None = None, *, filters: np.ndarray | None = None,
            phase: str = "main", resume: ChunkState | None = None, passes: int = 1
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ascend from raw variables (K, ...) for ``steps``, or from where ``resume`` stopped;
        returns raw, alive (K,) and the score curves (:class:`Curves`). ``affine[t]`` is step
        ``t``'s (K, 8) transform parameters (from step ``affine.still`` on, where it has one,
        the identity). With ``passes`` P, rows ``j::P`` step as a batch
        of their own (each step P calls of K/P images: the batch shape of a run without them).
        ``on_step`` gets a function that returns the current :class:`ChunkState` (of
        ``filters`` in ``phase``); Ctrl-C raises :class:`Stopped` with that state."""
        ops = keras().ops
        s = self.settings
        curve = Curves(len(raw), steps, None if resume is None else resume.curves)
        if resume is None:
            xs = [ops.convert_to_tensor(raw[j::passes]) for j in range(passes)]
            ms = [ops.zeros_like(x) for x in xs]
            vs = [ops.zeros_like(x) for x in xs]
            alives = [ops.ones((x.shape[0],), dtype="bool") for x in xs]
        else:
            xs = [ops.convert_to_tensor(resume.raw[j::passes]) for j in range(passes)]
            ms, vs = ([ops.zeros_like(x) if a is None else ops.convert_to_tensor(a[j::passes])
                       for j, x in enumerate(xs)] for a in (resume.m, resume.v))
            alives = [ops.convert_to_tensor(resume.alive[j::passes].astype(bool))
                      for j in range(passes)]
        chs = [ops.convert_to_tensor(channels[j::passes].astype(np.int32))
               for j in range(passes)]
        # replaced whole after each step: never torn
        state = (0 if resume is None else resume.step, xs, ms, vs, alives)

        def rows(parts: list[Any]) -> np.ndarray:
            """The passes' arrays back in the rows' order."""
            values = [ops.convert_to_numpy(p) for p in parts]
            return np.stack(values, axis=1).reshape(-1, *values[0].shape[1:])

        def snapshot() -> ChunkState:
            done, xs, ms, vs, alives = state
            adam = s.updater.moments
            return ChunkState(np.asarray(channels if filters is None else filters), phase,
                              done, rows(xs), rows(alives), curve.upto(done),
                              rows(ms) if adam else None, rows(vs) if adam else None)

        still = getattr(affine, "still", steps)
        try:
            for t in range(state[0], steps):
                tt = ops.convert_to_tensor(float(t))
                moving = ops.convert_to_tensor(t < still)
                out = [self.step(xs[j], ms[j], vs[j], tt, alives[j], chs[j],
                                 ops.convert_to_tensor(affine[t][j::passes]), moving)
                       for j in range(passes)]
                xs, ms, vs, alives, scores = (list(a) for a in zip(*out, strict=True))
                if s.blur_every and s.param == "pixel" and (t + 1) % s.blur_every == 0:
                    xs = [self.smooth(x) for x in xs]
                curve.add(t, scores[0] if passes == 1 else
                          ops.reshape(ops.stack(scores, axis=1), (-1,)))
                state = (t + 1, xs, ms, vs, alives)
                if on_step:
                    on_step(snapshot)
        except KeyboardInterrupt:
            raise Stopped(snapshot()) from None
        return rows(xs), rows(alives), curve.upto(steps)


def _moved(image: Any, affine: Any, moving: Any, transforms: Any) -> Any:
    """``image`` resampled by ``affine`` while ``moving`` (a boolean tensor; the settling steps
    skip the resampling, which for their identity parameters is exact)."""
    if not transforms.active:
        return image
    return keras().ops.cond(moving, lambda: apply_affine(image, affine, transforms.pad),
                            lambda: image)


def _in_precision(compiled: Callable[..., Any], model: Any, precision: str
                  ) -> Callable[..., Any]:
    """``compiled`` run (so traced, and retraced) with ``model``'s layers in ``precision``."""
    if precision == "float32":
        return compiled

    def run(*args: Any) -> Any:
        with computing_in(model, precision):
            return compiled(*args)

    return run


def _penalized(score: Any, image: Any, penalties: tuple[Penalty, ...], mid: Any,
               span: float) -> Any:
    """The score minus each penalty on the image, by its weight."""
    total = score
    for penalty in penalties:
        amount = penalty(image, mid, span)
        total = total - (obj.scaled_share(score, penalty.weight, amount) if penalty.relative
                         else penalty.weight * amount)
    return total


_STEPPERS = ModelCache()


def _stepper(model: Any, objective: obj.Objective, settings: Settings,
             value_range: tuple[float, float], shape: tuple[int, int, int]) -> _Stepper:
    """A compiled stepper, reused while the model, what the objective computes and the
    settings it depends on stay the same (a second gallery of the same layer skips tracing,
    with other steps or another seed too)."""
    key = (objective.key, settings.step_key(),
           tuple(tuple(np.atleast_1d(np.asarray(v, np.float64)).tolist()) for v in value_range),
           shape)
    return _STEPPERS.get(model, key,
                         lambda: _Stepper(model, objective, settings, value_range, shape))


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
    whether Ctrl-C stopped it early (then the finished chunks are here, and ``pending`` holds
    the chunk that was running, to continue)."""

    images: np.ndarray
    scores: np.ndarray
    maps: np.ndarray
    curves: np.ndarray
    alive: np.ndarray
    chunk: int
    interrupted: bool = False
    pending: ChunkState | None = None


CheckpointFn = Callable[[Ascent], None]


def ascend(model: ModelFacts | Any, objective: obj.Objective, channels: np.ndarray,
           settings: Settings | None = None, *, size: tuple[int, int] | None = None,
           batch: int | None = None, budget: int = DEFAULT_BUDGET,
           start_image: np.ndarray | None = None, resume: ChunkState | None = None,
           on_progress: ProgressFn | None = None, on_checkpoint: CheckpointFn | None = None,
           checkpoint_every: float = 60.0, copies: int = 1) -> Ascent:
    """Run the ascent for images scored by ``objective`` with ``channels[k]`` as image k's
    filter, in chunks (``copies``: how many images in a row are one filter's, kept together);
    with ``precursors`` M, M short runs per image first (without the random transforms: a
    start is judged by where it climbs untransformed), continuing the best.
    ``size`` is the image size for a model that takes any (default: 224 colour, 64 grey);
    ``start_image`` the model-ready image an ``image`` start begins from; ``resume`` the state
    of a stopped chunk, whose filters come first in ``channels``, to continue.
    Ctrl-C stops it cleanly: the result keeps the finished chunks and the running one's state.
    ``on_checkpoint`` gets such a partial result every ``checkpoint_every`` seconds."""
    facts = as_facts(model)
    settings = settings or Settings()
    channels = np.asarray(channels, dtype=np.int64)
    shape, _ = facts.default_size(size)
    value_range = _float32_range(facts.value_range)
    stepper = _stepper(facts.model, objective, settings, value_range, shape)
    s = settings
    pre_steps = s.precursor_steps if s.precursors else 0
    # the precursors' starts step one at a time: every step is of one batch shape
    plan = memory_plan(facts.model, objective.layers[0], len(channels), batch, budget, shape,
                       s.counted_steps)
    size = max(copies, plan.chunk // copies * copies)  # a filter's images stay in one chunk
    first = 0 if resume is None else len(resume.filters)
    if resume is not None:
        _check_resume(resume, channels[:first], stepper, s)
    chunks = ([channels[:first]] if first else []) + \
        [channels[b:b + size] for b in range(first, len(channels), size)]
    total = len(chunks) * s.counted_steps
    done = [0 if resume is None else resume.step + (pre_steps if resume.phase == "main" else 0)]
    parts: list[_Part] = []
    last = [time.monotonic()]

    def tick(snapshot: Callable[[], ChunkState]) -> None:
        done[0] += 1
        if on_progress:
            on_progress(done[0], total)
        if on_checkpoint and checkpoint_every > 0 and \
                time.monotonic() - last[0] >= checkpoint_every:
            on_checkpoint(_joined(parts, shape, max(size, first), s.steps, True, snapshot()))
            last[0] = time.monotonic()

    finished: ChunkState | None = None
    try:
        for i, chunk in enumerate(chunks):
            raw, alive, curves = _ascend_chunk(stepper, chunk, s, value_range, tick,
                                               start_image, resume if i == 0 else None)
            finished = ChunkState(chunk, "main", s.steps, raw, alive, curves)
            parts.append(_measure(stepper, finished))
            finished = None
    except Stopped as stop:
        return _joined(parts, shape, max(size, first), s.steps, True, stop.state)
    except KeyboardInterrupt:  # between the steps: keep a finished chunk not yet measured
        return _joined(parts, shape, max(size, first), s.steps, True, finished)
    return _joined(parts, shape, max(size, first), s.steps)


def _check_resume(resume: ChunkState, first: np.ndarray, stepper: _Stepper,
                  s: Settings) -> None:
    """Refuse a stopped chunk that does not fit the run it should continue."""
    rows = len(first) * (max(1, s.precursors) if resume.phase == "precursors" else 1)
    steps = s.precursor_steps if resume.phase == "precursors" else s.steps
    raw = stepper.param.init(np.zeros((1, *stepper.shape), np.float32)).shape[1:]
    if not np.array_equal(first, resume.filters) or resume.raw.shape != (rows, *raw) or \
            resume.step > steps or (resume.phase == "precursors" and not s.precursors):
        raise CnnvizError("the stopped chunk does not fit the run's settings (its filters, "
                          "steps or image size): run again without --resume")


def _ascend_chunk(stepper: _Stepper, chunk: np.ndarray, s: Settings, value_range: Any,
                  tick: StepFn, start_image: np.ndarray | None,
                  resume: ChunkState | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw variables, alive flags and score curves of one chunk of filters (continuing
    ``resume`` where it stopped)."""
    shape = stepper.shape
    starts_per = max(1, s.precursors)
    copy = copy_index(chunk)  # a filter's 2nd, 3rd … image (--diversity) has streams of its own
    streams = [(int(f), j, *((c,) if c else ())) for f, c in zip(chunk, copy, strict=True)
               for j in range(starts_per)]
    raw = None if resume is None else resume.raw
    if resume is None or resume.phase == "precursors":
        if raw is None:
            starts = start_images(streams, shape, value_range, kind=s.start, seed=s.seed,
                                  wavelengths=s.wavelengths, amplitude=s.amplitude,
                                  noise=s.noise, image=start_image)
            raw = stepper.param.init(starts)
        if s.precursors:
            pre_raw, pre_alive, pre_curves = stepper.run(
                raw, np.repeat(chunk, starts_per),
                TransformPlan(s, streams, s.precursor_steps, shape[:2], settle=1.0),
                s.precursor_steps,
                tick, filters=chunk, phase="precursors", resume=resume, passes=starts_per)
            final = np.where(pre_alive, pre_curves[:, -1], -np.inf).reshape(len(chunk),
                                                                            starts_per)
            top = final.max(axis=1, keepdims=True)
            # starts that tie (an optimum both reach) within float noise: the first one, so
            # that a resumed run, whose last bits may differ, picks the same
            best = (final >= top - 1e-4 * np.abs(top)).argmax(axis=1)
            raw = pre_raw[np.arange(len(chunk)) * starts_per + best]
        resume = None
    main_streams = [(int(f), starts_per, *((c,) if c else ()))
                    for f, c in zip(chunk, copy, strict=True)]
    return stepper.run(raw, chunk, TransformPlan(s, main_streams, s.steps, shape[:2], s.settle),
                       s.steps, tick, filters=chunk, resume=resume)


def copy_index(chunk: np.ndarray) -> list[int]:
    """For each row, how many rows before it in ``chunk`` are of the same filter."""
    seen: dict[int, int] = {}
    index = []
    for f in chunk.tolist():
        index.append(seen.get(f, 0))
        seen[f] = index[-1] + 1
    return index


_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _measure(stepper: _Stepper, chunk: ChunkState) -> _Part:
    """A finished chunk's in-range images, scores and own maps, measured on the untransformed
    images, with its score curves and alive flags."""
    ops = keras().ops
    image, score, own = stepper.measure(ops.convert_to_tensor(chunk.raw),
                                        ops.convert_to_tensor(chunk.filters.astype(np.int32)))
    return (ops.convert_to_numpy(image), ops.convert_to_numpy(score), ops.convert_to_numpy(own),
            chunk.curves, chunk.alive)


def _joined(parts: list[_Part], shape: tuple[int, ...], size: int, steps: int,
            interrupted: bool = False, pending: ChunkState | None = None) -> Ascent:
    """The measured chunks as one :class:`Ascent`."""
    if not parts:
        return Ascent(np.zeros((0, *shape), np.float32), np.zeros(0), np.zeros((0,)),
                      np.zeros((0, curve_points(steps))), np.zeros(0, bool), size,
                      interrupted, pending)
    images, scores, maps, curves, alive = (np.concatenate(a) for a in zip(*parts, strict=True))
    return Ascent(images, scores, maps, curves, alive, size, interrupted, pending)
