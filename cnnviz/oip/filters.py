"""Optimal input patterns of a layer's filters: the ascent for every filter at once, measured
after the layer's activation and compared with the real images that excite each filter most."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np

from cnnviz.activations import activations, top_examples
from cnnviz.backend import backend_name, keras
from cnnviz.errors import CnnvizError
from cnnviz.graph import has_fused_activation
from cnnviz.models import (
    ModelFacts,
    as_facts,
    check_finite_weights,
    get_layer,
    resolve_map_layers,
)
from cnnviz.oip import objectives as obj
from cnnviz.oip.optimize import Ascent, ProgressFn, ascend
from cnnviz.oip.settings import DEFAULT_BUDGET, Settings
from cnnviz.readers import Source
from cnnviz.results import FilterResult, Meta
from cnnviz.sources import as_source, model_inputs


def chosen_filters(model: ModelFacts | Any, layer: str,
                   filters: list[int] | None = None) -> np.ndarray:
    """The filter indices of ``layer`` to visualize (all when ``None``), checked."""
    facts = as_facts(model)
    resolve_map_layers(facts.model, [layer])
    n_maps = int(get_layer(facts.model, layer).output.shape[-1])
    chosen = np.arange(n_maps) if filters is None else np.asarray(filters, dtype=np.int64)
    if chosen.size == 0:
        raise CnnvizError("no filters chosen")
    bad = chosen[(chosen < 0) | (chosen >= n_maps)]
    if bad.size:  # the number the user typed: the end of a range that runs past the layer
        worst = int(bad.max()) if bad.max() >= n_maps else int(bad.min())
        raise CnnvizError(f"filter {worst} is out of range: layer '{layer}' has "
                          f"{n_maps} filters (0..{n_maps - 1})")
    return chosen


def visualize_filters(model: ModelFacts | Any, layer: str, filters: list[int] | None = None,
                      settings: Settings | None = None, *,
                      objective: obj.Objective | None = None,
                      reference_images: Any = None, examples: int = 0,
                      data: str | None = None, size: tuple[int, int] | None = None,
                      batch: int | None = None, budget: int = DEFAULT_BUDGET,
                      on_progress: ProgressFn | None = None) -> FilterResult:
    """The image that maximally activates each filter (map) of ``layer``, all filters at once.

    The default objective is the mean of the filter's map, read before the layer's fused
    activation (``settings.preactivation``). With ``reference_images`` (raw images, uint8 or
    0..1, or any data source; ``data`` names them), each filter's best real activation is
    measured too, for the ratio shown in galleries, and with ``examples`` k its k most exciting
    real images are kept, with their labels. ``size`` is the image size for a model that takes
    any (default: 224 colour, 64 grey)."""
    facts = as_facts(model)
    chosen = chosen_filters(facts, layer, filters)
    if examples < 0:
        raise CnnvizError(f"--examples must be ≥ 0, got {examples}")
    if examples and reference_images is None:
        raise CnnvizError("examples need reference images to choose from")
    check_finite_weights(facts.model)
    settings = settings or Settings()
    preact = settings.preactivation and has_fused_activation(facts.model, layer)
    settings = replace(settings, preactivation=preact)
    objective = objective or obj.channel(layer)
    run = ascend(facts, objective, chosen, settings, size=size, batch=batch, budget=budget,
                 on_progress=on_progress)
    done = chosen[:len(run.images)]
    post_max = _post_activation_max(facts, layer, objective, run, done, preact)
    notes = {int(f): "stopped: the ascent produced NaN or Inf" for f, ok in
             zip(done, run.alive, strict=True) if not ok}
    for f, dead in zip(done, post_max <= 0, strict=True):
        if dead:
            notes.setdefault(int(f), "dead: its map stays zero after the activation")
    params = {**asdict(settings), "transforms": asdict(settings.transforms),
              "objective": objective.name, "chunk": run.chunk, "backend": backend_name(),
              "requested": chosen.tolist(), "size": list(run.images.shape[1:3]) or None}
    reference = None if reference_images is None else as_source(reference_images)
    meta = Meta(facts.name, facts.preprocess, (layer,),
                None if reference is None else data or reference.name, settings.seed,
                classes=() if reference is None else reference.class_names)
    result = FilterResult(done, run.images, run.scores, post_max, run.curves, meta, params,
                          notes=notes, interrupted=run.interrupted)
    if reference is not None and len(done):
        _add_real_images(result, facts, reference, examples, preact)
    return result


def _post_activation_max(facts: ModelFacts, layer: str, objective: obj.Objective, run: Ascent,
                         done: np.ndarray, preact: bool) -> np.ndarray:
    """The largest value of each filter's own map for its image, after the layer's activation
    (a filter is dead when it is ≤ 0)."""
    if not len(done):
        return np.zeros(0)
    own = run.maps if objective.layers[0] == layer else None
    if own is None or own.ndim != 3:
        own = activations(facts, run.images, [layer]).maps[layer]
        own = own[np.arange(len(done)), :, :, done]
    elif preact:
        own = keras().ops.convert_to_numpy(get_layer(facts.model, layer).activation(own))
    return own.max(axis=(1, 2))


def _add_real_images(result: FilterResult, facts: ModelFacts, reference: Source,
                     examples: int, preact: bool) -> None:
    """Each filter's best real activation and, with ``examples``, its top real images (at the
    ascent's size) and their labels."""
    shape = tuple(result.images.shape[1:])
    index, values = top_examples(facts, result.layer, reference, max(1, examples),
                                 preactivation=preact, size=shape[:2])
    done = result.filters
    result.best_real = values[done, 0]
    if examples:
        result.example_indices = index[done]
        result.example_values = values[done]
        pixels, labels = reference.gather(result.example_indices.reshape(-1), shape)
        picked = model_inputs(pixels, facts.preprocess)
        result.example_images = picked.reshape(*result.example_indices.shape,
                                                *picked.shape[1:])
        if labels is not None:
            result.example_labels = labels.reshape(result.example_indices.shape)


def resume_filters(model: ModelFacts | Any, previous: FilterResult, *,
                   reference_images: np.ndarray | None = None, batch: int | None = None,
                   budget: int = DEFAULT_BUDGET,
                   on_progress: ProgressFn | None = None) -> FilterResult:
    """Finish an interrupted :func:`visualize_filters` run with its own layer, settings,
    preprocessing and number of examples; the result equals an uninterrupted run's."""
    facts = as_facts(model)
    if not previous.interrupted:
        raise CnnvizError("the saved run is complete: nothing to resume")
    if previous.meta.model != facts.name:
        raise CnnvizError(f"the saved run is of model '{previous.meta.model}', not "
                          f"'{facts.name}'")
    if previous.params.get("objective") != obj.channel(previous.layer).name:
        raise CnnvizError(f"the saved run used objective {previous.params.get('objective')}: "
                          "resume it with visualize_filters and that objective")
    examples = 0 if previous.example_images is None else previous.example_images.shape[1]
    compared = previous.best_real is not None or examples > 0
    if compared and reference_images is None:
        raise CnnvizError("the saved run compared with real images: pass them again")
    done = set(previous.filters.tolist())
    rest = [f for f in previous.requested if f not in done]
    more = visualize_filters(as_facts(facts, previous.meta.preprocess), previous.layer, rest,
                             Settings.from_params(previous.params),
                             reference_images=reference_images if compared else None,
                             examples=examples, data=previous.meta.data,
                             size=tuple(previous.images.shape[1:3]) if len(previous.images)
                             else previous.params.get("size"), batch=batch, budget=budget,
                             on_progress=on_progress)
    return previous.merged(more)
