"""Optimal input patterns of a layer's filters: the ascent for every filter at once, measured
after the layer's activation and compared with the real images that excite each filter most."""

from __future__ import annotations

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
from cnnviz.data.sources import as_source
from cnnviz.maps.activations import activations
from cnnviz.model.facts import (
    ModelFacts,
    as_facts,
    check_finite_weights,
    get_layer,
)
from cnnviz.model.graph import has_fused_activation
from cnnviz.model.heads import class_output, resolve_unit_layer
from cnnviz.model.receptive import receptive_field
from cnnviz.oip import objectives as obj
from cnnviz.oip.optimize import Ascent, ProgressFn, ascend
from cnnviz.oip.pieces import Colourfulness
from cnnviz.oip.presets import ascent_goal, objective_kind, preset
from cnnviz.oip.real import compare_with_real, reference_beside
from cnnviz.oip.settings import (
    DEFAULT_BUDGET,
    Settings,
    examples_that_fit,
)
from cnnviz.oip.transparency import add_transparency
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
                      diversity_weight: float = 0.5, closeness: float = 0.0,
                      transparency: bool = False) -> FilterResult:
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
    ``diversity`` N: N images a filter, pushed apart; ``closeness``: kept near the start image;
    ``transparency``: each image's evidence map, drawn as its alpha. Ctrl-C returns the finished
    filters and the running chunk's state, as ``on_checkpoint``."""
    facts = as_facts(model)
    shape, _ = facts.default_size(size)
    kind = objective_kind(facts, layer, shape, objective)
    dream = kind in OBJECTIVES.names(dream=True)
    chosen = chosen_filters(facts, layer, [0] if dream else filters)
    _check_examples(examples, reference_images is not None, len(chosen), shape, budget)
    settings, precision = _settings(settings, facts, layer, shape, kind, diversity)
    goal, rows = ascent_goal(facts, kind, layer, objective, chosen, diversity=diversity,
                             weight=diversity_weight, closeness=closeness, start=start_image,
                             flat=settings.start == "grey", preactivation=settings.preactivation)
    reference = None if reference_images is None or dream or kind == "custom" \
        else as_source(reference_images)
    meta = _meta(facts, layer, reference, data, settings.seed)
    classes = class_output(facts.model, layer) if kind == "unit" else None

    def result_of(run: Ascent) -> FilterResult:
        done = rows[:len(run.images)]
        own = _own_maps(facts, layer, goal, run, done, settings.preactivation)
        params = {**settings.to_params(), "objective": goal.name, "objective_kind": kind,
                  "chunk": run.chunk, "backend": backend_name(), "requested": chosen.tolist(),
                  "size": list(shape[:2]), "compared": reference is not None, "classes": classes,
                  "precision_reason": precision.reason, "transparency": transparency,
                  "crop": _crop(facts, layer, shape) if kind == "neuron" else None,
                  "examples": examples if reference is not None else 0, "closeness": closeness,
                  "diversity": diversity, "diversity_weight": diversity_weight}
        return FilterResult(done, run.images, run.scores, own.max(axis=(1, 2)) if len(done)
                            else np.zeros(0), run.curves, meta, params,
                            notes=_notes(done, run.alive, own), interrupted=run.interrupted,
                            post_value=_statistic(own, kind), start_image=start_image,
                            pending=run.pending)

    beside = reference_beside(facts, layer, reference, examples, kind, shape, len(rows),
                              settings, batch, budget)  # the pass over real images, meanwhile
    with span("ascent"):
        run = ascend(facts, goal, rows, settings, size=size, batch=batch, budget=budget,
                     copies=diversity, start_image=start_image, resume=resume,
                     on_progress=on_progress, on_checkpoint=None if on_checkpoint is None
                     else lambda part: on_checkpoint(result_of(part)),
                     checkpoint_every=checkpoint_every)
    result = result_of(run)
    if len(result.filters):
        _after_ascent(facts, result, settings, budget, transparency, goal if kind == "custom"
                      else None, start_image if dream else None, reference, examples, beside)
    return result


def _after_ascent(facts: ModelFacts, result: FilterResult, settings: Settings, budget: int,
                  transparency: bool, custom: obj.Objective | None,
                  dream_start: np.ndarray | None, reference: Source | None, examples: int,
                  beside: Callable[[], tuple[np.ndarray, np.ndarray]] | None) -> None:
    """Each image's evidence map where asked (``custom``: the objective, else the kind's);
    for a dream from a real image, the class the model reads before and after; the comparison
    with the real images (``beside``: the pass that ran meanwhile)."""
    if transparency:
        add_transparency(facts, result, settings, budget, custom)
    if dream_start is not None:
        result.params["prediction"] = _predictions(facts, dream_start, result.images[0])
    if reference is not None:
        compare_with_real(result, facts, reference, examples, budget,
                          found=None if beside is None else beside())


def _predictions(facts: ModelFacts, before: np.ndarray, after: np.ndarray) -> list[int] | None:
    """The class the model reads in the start image and in the dreamed one (``None`` for a
    model whose output is not a class vector)."""
    outputs = np.asarray(facts.model.predict(np.stack([before, after]).astype(np.float32),
                                             verbose=0))
    return None if outputs.ndim != 2 else [int(c) for c in outputs.argmax(axis=1)]


def _settings(settings: Settings | None, facts: ModelFacts, layer: str,
              shape: tuple[int, int, int], kind: str,
              diversity: Any = 1) -> tuple[Settings, Precision]:
    """The settings to run: the default preset unless given (for ``diversity`` images a unit);
    read before the activation only
    where the layer has one fused — and for DeepDream only when asked (``layer_pre``); a
    centre unit's colourfulness priced in its receptive field; in the precision chosen here
    (``auto`` settled, and why); a model with NaN or infinite weights is refused first."""
    check_finite_weights(facts.model)
    settings = settings or preset("default", facts, layer, shape, diversity=diversity)
    before = kind == "layer_pre" if kind in OBJECTIVES.names(dream=True) \
        else settings.preactivation
    precision = choose(settings.precision)
    if kind == "neuron":  # colour is priced where the centre unit looks
        window = tuple(_crop(facts, layer, shape))
        settings = replace(settings, penalties=tuple(
            replace(p, window=window) if isinstance(p, Colourfulness) and not p.window else p
            for p in settings.penalties))
    return replace(settings, preactivation=before and has_fused_activation(facts.model, layer),
                   precision=precision.dtype), precision






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
                             transparency=bool(previous.params.get("transparency", False)),
                             on_checkpoint=None if on_checkpoint is None
                             else lambda part: on_checkpoint(previous.merged(part)),
                             checkpoint_every=checkpoint_every)
    if previous.params.get("transparency") and previous.alpha is None and \
            len(previous.filters):
        add_transparency(facts, previous, Settings.from_params(previous.params), budget)
    result = previous.merged(more)
    if reference is not None and len(result.filters):
        compare_with_real(result, facts, reference, examples, budget)
    return result
