"""Optimal input patterns of a layer's filters: the ascent for every filter at once, measured
after the layer's activation and compared with the real images that excite each filter most."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from cnnviz.core.backend import backend_name, keras
from cnnviz.core.errors import CnnvizError
from cnnviz.core.precision import Precision, choose
from cnnviz.core.tables import OBJECTIVES
from cnnviz.core.text import number_spans
from cnnviz.core.timing import span, timed
from cnnviz.data.readers import Source
from cnnviz.data.sources import as_source, model_inputs
from cnnviz.maps.activations import activations, top_examples
from cnnviz.model.facts import (
    ModelFacts,
    as_facts,
    check_finite_weights,
    get_layer,
)
from cnnviz.model.graph import has_fused_activation
from cnnviz.model.heads import class_output, resolve_unit_layer
from cnnviz.model.receptive import crops_where_answered, receptive_field
from cnnviz.oip import objectives as obj
from cnnviz.oip.optimize import Ascent, ProgressFn, ascend
from cnnviz.oip.presets import ascent_goal, objective_kind, preset
from cnnviz.oip.settings import (
    DEFAULT_BUDGET,
    RECORD_BYTES,
    RECORD_STEPS,
    Settings,
    bytes_per_image,
    examples_that_fit,
)
from cnnviz.results import FilterResult, Meta
from cnnviz.results.filters import ChunkState


def chosen_filters(model: ModelFacts | Any, layer: str,
                   filters: str | Sequence[int] | None = None) -> np.ndarray:
    """The filter indices of ``layer`` to visualize (all when ``None``), checked against the
    layer before any list is built: numbers, or ranges as text (``"0-15,20"``)."""
    facts = as_facts(model)
    n_maps = resolve_unit_layer(facts.model, layer)
    if filters is None:
        return np.arange(n_maps)
    spans = number_spans(filters, "filter") if isinstance(filters, str) \
        else [(f, f) for f in filters]
    if not spans:
        raise CnnvizError("no filters chosen")
    for lo, hi in spans:
        for end in (hi, lo):  # the number the user typed: the end of a range past the layer
            if isinstance(end, bool) or not isinstance(end, int | np.integer):
                raise CnnvizError(f"filter {end!r} is not a whole number")
            if not 0 <= end < n_maps:
                raise CnnvizError(f"filter {end} is out of range: layer '{layer}' has "
                                  f"{n_maps} filters (0..{n_maps - 1})")
    return np.asarray(list(dict.fromkeys(i for lo, hi in spans for i in range(lo, hi + 1))),
                      np.int64)


@timed("compute")
def visualize_filters(model: ModelFacts | Any, layer: str,
                      filters: str | Sequence[int] | None = None,
                      settings: Settings | None = None, *,
                      objective: obj.Objective | str = "auto",
                      reference_images: Any = None, examples: int = 0,
                      data: str | None = None, size: tuple[int, int] | None = None,
                      start_image: np.ndarray | None = None,
                      batch: int | None = None, budget: int = DEFAULT_BUDGET,
                      on_progress: ProgressFn | None = None,
                      on_checkpoint: Callable[[FilterResult], None] | None = None,
                      checkpoint_every: float = 60.0,
                      resume: ChunkState | None = None, diversity: int = 1,
                      diversity_weight: float = 0.5, closeness: float = 0.0) -> FilterResult:
    """The image that maximally activates each filter (map or unit) of ``layer``, all at once.

    ``settings``: the ``default`` preset unless given. ``objective``: a name of
    ``tables.OBJECTIVES`` — ``channel`` (the map's mean), ``neuron`` (its centre unit; the
    gallery shows its receptive field), ``layer``/``layer_pre`` (DeepDream after/before the
    activation: one image), ``unit`` (a Dense unit; the output layer's class logit), ``auto`` —
    or an :class:`~cnnviz.oip.objectives.Objective`, read before the fused activation
    (``settings.preactivation``); outputs are measured after it, in float32. With
    ``reference_images`` (uint8 or 0..1 images, or any source; ``data`` names them) each filter's
    best real value is found too, and ``examples`` k keeps its k most exciting real images.
    ``size``: the size for a model of any; ``start_image``: the model-ready start of ``image``;
    ``diversity`` N: N images a filter, pushed apart; ``closeness``: kept near the start image.
    Ctrl-C returns the finished filters and the running chunk's state, as ``on_checkpoint``."""
    facts = as_facts(model)
    shape, _ = facts.default_size(size)
    kind = objective_kind(facts, layer, shape, objective)
    dream = kind in OBJECTIVES.names(dream=True)
    chosen = chosen_filters(facts, layer, [0] if dream else filters)
    _check_examples(examples, reference_images is not None, len(chosen), shape, budget)
    settings, precision = _settings(settings, facts, layer, shape, kind)
    goal, rows = ascent_goal(facts, kind, layer, objective, chosen, diversity=diversity,
                             weight=diversity_weight, closeness=closeness, start=start_image,
                             preactivation=settings.preactivation)
    reference = None if reference_images is None or dream or kind == "custom" \
        else as_source(reference_images)
    meta = _meta(facts, layer, reference, data, settings.seed)
    classes = class_output(facts.model, layer) if kind == "unit" else None

    def result_of(run: Ascent) -> FilterResult:
        done = rows[:len(run.images)]
        own = _own_maps(facts, layer, goal, run, done, settings.preactivation)
        params = {**settings.to_params(), "objective": goal.name, "objective_kind": kind,
                  "chunk": run.chunk, "backend": backend_name(), "requested": chosen.tolist(),
                  "size": list(shape[:2]), "compared": reference is not None,
                  "closeness": closeness, "precision_reason": precision.reason,
                  "crop": _crop(facts, layer, shape) if kind == "neuron" else None,
                  "examples": examples if reference is not None else 0, "classes": classes,
                  "diversity": diversity, "diversity_weight": diversity_weight}
        return FilterResult(done, run.images, run.scores, own.max(axis=(1, 2)) if len(done)
                            else np.zeros(0), run.curves, meta, params,
                            notes=_notes(done, run.alive, own), interrupted=run.interrupted,
                            post_value=_statistic(own, kind), start_image=start_image,
                            pending=run.pending)

    beside = _reference_beside(facts, layer, reference, examples, kind, shape, len(rows),
                               settings, batch, budget)  # the pass over real images, meanwhile
    with span("ascent"):
        run = ascend(facts, goal, rows, settings, size=size, batch=batch, budget=budget,
                     copies=diversity, start_image=start_image, resume=resume,
                     on_progress=on_progress,
                     on_checkpoint=None if on_checkpoint is None
                     else lambda part: on_checkpoint(result_of(part)),
                     checkpoint_every=checkpoint_every)
    result = result_of(run)
    if dream and start_image is not None and len(result.filters):
        result.params["prediction"] = _predictions(facts, start_image, result.images[0])
    if reference is not None and len(result.filters):
        compare_with_real(result, facts, reference, examples, budget,
                          found=None if beside is None else beside())
    return result


def _predictions(facts: ModelFacts, before: np.ndarray, after: np.ndarray) -> list[int] | None:
    """The class the model reads in the start image and in the dreamed one (``None`` for a
    model whose output is not a class vector)."""
    outputs = np.asarray(facts.model.predict(np.stack([before, after]).astype(np.float32),
                                             verbose=0))
    return None if outputs.ndim != 2 else [int(c) for c in outputs.argmax(axis=1)]


def _settings(settings: Settings | None, facts: ModelFacts, layer: str,
              shape: tuple[int, int, int], kind: str) -> tuple[Settings, Precision]:
    """The settings to run: the default preset unless given; read before the activation only
    where the layer has one fused — and for DeepDream only when asked (``layer_pre``); in the
    precision chosen here (``auto`` settled, and why); a model with NaN or infinite weights is
    refused first."""
    check_finite_weights(facts.model)
    settings = settings or preset("default", facts, layer, shape)
    before = kind == "layer_pre" if kind in OBJECTIVES.names(dream=True) \
        else settings.preactivation
    precision = choose(settings.precision)
    return replace(settings, preactivation=before and has_fused_activation(facts.model, layer),
                   precision=precision.dtype), precision


def _reference_beside(facts: ModelFacts, layer: str, reference: Source | None, examples: int,
                      kind: str, shape: tuple[int, int, int], filters: int, settings: Settings,
                      batch: int | None, budget: int
                      ) -> Callable[[], tuple[np.ndarray, np.ndarray]] | None:
    """Start the pass over the real images in a thread, to run while the ascent does, where
    both fit ``budget`` together; returns what waits for its answer (``None``: run it after
    the ascent)."""
    if reference is None:
        return None
    per_image = bytes_per_image(facts.model, layer, shape)
    ascent = min(filters, batch or filters) * (
        per_image + min(settings.steps, RECORD_STEPS) * RECORD_BYTES)
    if ascent + _reference_batch(per_image, shape, budget) * _reference_bytes(per_image, shape) \
            > budget:
        return None
    found: dict[str, Any] = {}

    def work() -> None:
        try:
            found["answer"] = _top(facts, layer, reference, examples, kind, shape, budget)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            found["error"] = exc

    thread = threading.Thread(target=work, name="cnnviz-reference", daemon=True)
    thread.start()

    def wait() -> tuple[np.ndarray, np.ndarray]:
        thread.join()
        if "error" in found:
            raise found["error"]
        return found["answer"]

    return wait


def _reference_bytes(per_image: int, shape: tuple[int, ...]) -> int:
    """What one real image costs in the reference pass: a third of an ascent image's
    activations (no gradients kept), and its conversion to the model's input — resampled in
    float64, then float32 — in the batch being converted, the one the model runs and the one
    waiting (48 bytes a value: a 28×28 digit for a 2048² model costs 2048² values)."""
    return per_image // 3 + 48 * int(np.prod(shape))


def _reference_batch(per_image: int, shape: tuple[int, ...], budget: int) -> int:
    """Real images per batch of the reference pass, as many as fit ``budget``."""
    return max(1, min(256, budget // _reference_bytes(per_image, shape)))


def _top(facts: ModelFacts, layer: str, reference: Source, examples: int, kind: str,
         shape: tuple[int, ...], budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Each map's top real images and values on the objective's measure, at the ascent's
    size."""
    per_image = bytes_per_image(facts.model, layer, shape)
    return top_examples(facts, layer, reference, max(1, examples),
                        reduce="max" if kind == "neuron" else "mean", size=shape[:2],
                        batch_size=_reference_batch(per_image, shape, budget))


def _check_examples(examples: int, reference: bool, filters: int, shape: tuple[int, int, int],
                    budget: int) -> None:
    """Refuse a number of examples that is negative, has no images to come from, or whose
    images would not fit ``budget``."""
    if examples < 0:
        raise CnnvizError(f"--examples must be ≥ 0, got {examples}")
    if examples and not reference:
        raise CnnvizError("examples need reference images to choose from")
    if examples > examples_that_fit(filters, shape, budget):
        kept = filters * examples * int(np.prod(shape)) * 4
        raise CnnvizError(f"{examples} examples for each of {filters} filters keep "
                          f"{kept / 2**20:,.0f} MiB of images: more than the "
                          f"{budget / 2**20:g} MiB budget; ask for fewer examples or filters, "
                          "or raise --budget")


def _meta(facts: ModelFacts, layer: str, reference: Source | None, data: str | None,
          seed: int) -> Meta:
    """Where a filter result comes from: the model, the layer and the reference data."""
    if reference is None:
        return Meta(facts.name, facts.preprocess, (layer,), None, seed, model_digest=facts.digest)
    return Meta(facts.name, facts.preprocess, (layer,), data or reference.name, seed,
                classes=reference.class_names, model_digest=facts.digest,
                data_digest=reference.digest())


def _crop(facts: ModelFacts, layer: str, shape: tuple[int, int, int]) -> list[int]:
    """[top, bottom, left, right] of the input window the layer's centre unit sees."""
    field = receptive_field(facts, layer, shape[:2] if facts.any_size else None)
    return field.centre_window(shape[:2])


def _statistic(own: np.ndarray, kind: str) -> np.ndarray:
    """Each filter's value of the objective's measure on its own map after the activation: the
    centre unit for ``neuron``, the map mean otherwise."""
    if not len(own):
        return np.zeros(0)
    if kind == "neuron":
        return own[:, own.shape[1] // 2, own.shape[2] // 2]
    return own.mean(axis=(1, 2))


def _notes(done: np.ndarray, alive: np.ndarray, own: np.ndarray) -> dict[int, str]:
    notes = {int(f): "stopped: the ascent produced NaN or Inf"
             for f, ok in zip(done, alive, strict=True) if not ok}
    for f, peak in zip(done, own.max(axis=(1, 2)) if len(own) else [], strict=True):
        if peak <= 0:
            notes.setdefault(int(f), "dead: its map stays zero after the activation")
    return notes


def _own_maps(facts: ModelFacts, layer: str, objective: obj.Objective, run: Ascent,
              done: np.ndarray, preact: bool) -> np.ndarray:
    """Each filter's own map of ``layer`` for its image, after the layer's activation:
    (K, h, w)."""
    if not len(done):
        return np.zeros((0, 1, 1))
    own = run.maps if objective.layers[0] == layer else None
    if own is None or own.ndim != 3:
        own = activations(facts, run.images, [layer]).maps[layer]
        if own.ndim == 2:  # a layer of units: each unit's value, as a 1×1 map
            return own[np.arange(len(done)), done][:, None, None]
        return own[np.arange(len(done)), :, :, done]
    if preact:
        own = keras().ops.convert_to_numpy(get_layer(facts.model, layer).activation(own))
    return np.asarray(own)


def compare_with_real(result: FilterResult, facts: ModelFacts, reference: Source,
                      examples: int, budget: int = DEFAULT_BUDGET,
                      found: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Give ``result`` each filter's best real value of the objective's measure after the
    activation (map mean; for a neuron, the largest unit anywhere, as the layer is the same
    filter at every position) and, with ``examples``, its top real images (at the ascent's size)
    and their labels; ``found`` is that pass's answer when it already ran."""
    shape = tuple(result.images.shape[1:])
    kind = result.params.get("objective_kind", "channel")
    index, values = found or _top(facts, result.layer, reference, examples, kind, shape, budget)
    done = result.filters
    result.best_real = values[done, 0]
    if examples:
        result.example_indices = index[done]
        result.example_values = values[done]
        pixels, labels = reference.gather(result.example_indices.reshape(-1), shape)
        picked = _cropped(facts, result, model_inputs(pixels, facts.preprocess))
        result.example_images = picked.reshape(*result.example_indices.shape,
                                                *picked.shape[1:])
        result.params["example_names"] = [[reference.item_name(int(i)) for i in row]
                                          for row in result.example_indices]
        if labels is not None:
            result.example_labels = labels.reshape(result.example_indices.shape)


def _cropped(facts: ModelFacts, result: FilterResult, images: np.ndarray) -> np.ndarray:
    """Each filter's real examples (model inputs, filter-major) cut to where its map answers
    most (:func:`~cnnviz.model.receptive.crops_where_answered`); a layer of units keeps them."""
    maps = activations(facts, images, [result.layer]).maps[result.layer]
    if maps.ndim != 4:
        return images
    field = receptive_field(facts, result.layer,
                            tuple(images.shape[1:3]) if facts.any_size else None)
    result.params["example_crops"] = True
    channels = np.repeat(result.filters, result.example_indices.shape[1])
    return crops_where_answered(images, maps[np.arange(len(images)), :, :, channels], field)


@timed("compute")
def resume_filters(model: ModelFacts | Any, previous: FilterResult, *,
                   reference_images: Any = None, batch: int | None = None,
                   budget: int = DEFAULT_BUDGET, on_progress: ProgressFn | None = None,
                   on_checkpoint: Callable[[FilterResult], None] | None = None,
                   checkpoint_every: float = 60.0) -> FilterResult:
    """Finish an interrupted :func:`visualize_filters` run with its own layer, settings,
    preprocessing and number of examples, continuing the chunk that was running from the step
    it reached; the result equals an uninterrupted run's (to float32 precision)."""
    facts = as_facts(model)
    if not previous.interrupted:
        raise CnnvizError("the saved run is complete: nothing to resume")
    if previous.meta.model != facts.name:
        raise CnnvizError(f"the saved run is of model '{previous.meta.model}', not "
                          f"'{facts.name}'")
    if not previous.meta.made_by(facts.digest):
        raise CnnvizError(f"the saved run was made by another model '{facts.name}' (other "
                          "weights or layers): run again without --resume")
    kind = previous.params.get("objective_kind", "channel")
    if kind == "custom":
        raise CnnvizError(f"the saved run used objective {previous.params.get('objective')}: "
                          "resume it with visualize_filters and that objective")
    examples = int(previous.params.get("examples", 0 if previous.example_images is None
                                       else previous.example_images.shape[1]))
    compared = bool(previous.params.get("compared", previous.best_real is not None))
    reference = None
    if compared:
        if reference_images is None:
            raise CnnvizError("the saved run compared with real images: pass them again")
        reference = as_source(reference_images)
        if previous.meta.data_digest and reference.digest() != previous.meta.data_digest:
            raise CnnvizError(f"the saved run compared with other images than "
                              f"{reference.name}: pass the same data again "
                              f"({previous.meta.data or 'as before'}), or run again without "
                              "--resume")
    done = set(previous.filters.tolist())
    rest = [f for f in previous.requested if f not in done]
    facts = as_facts(facts, previous.meta.preprocess)
    size = previous.params.get("size") or \
        (list(previous.images.shape[1:3]) if len(previous.images) else None)
    more = visualize_filters(facts, previous.layer, rest,
                             Settings.from_params(previous.params), objective=kind,
                             start_image=previous.start_image,
                             size=tuple(size) if size else None, batch=batch, budget=budget,
                             on_progress=on_progress, resume=previous.pending,
                             diversity=int(previous.params.get("diversity", 1)),
                             diversity_weight=float(previous.params.get("diversity_weight",
                                                                        0.5)),
                             closeness=float(previous.params.get("closeness", 0.0)),
                             on_checkpoint=None if on_checkpoint is None
                             else lambda part: on_checkpoint(previous.merged(part)),
                             checkpoint_every=checkpoint_every)
    result = previous.merged(more)
    if reference is not None and len(result.filters):
        compare_with_real(result, facts, reference, examples, budget)
    return result
