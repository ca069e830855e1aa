"""Where in a synthesized image a unit's evidence lies: MACO's transparency (Fel et al. 2023).

MACO accumulates the magnitude of the objective's gradient with respect to the image during
the ascent and draws it as the image's alpha channel, so the regions the unit ignores fade
out. :func:`evidence` measures the same at the final image: the gradient's magnitude averaged
over random shifts, zooms and turns of the ascent's own transforms (a fixed set of draws, so
the map does not depend on how the ascent was chunked or interrupted).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from cnnviz.core.backend import ModelCache, compile_step, keras, value_and_grad
from cnnviz.core.timing import span
from cnnviz.model.facts import ModelFacts, as_facts, as_list
from cnnviz.model.graph import feature_model
from cnnviz.oip import objectives as obj
from cnnviz.oip.optimize import copy_index
from cnnviz.oip.presets import make_objective
from cnnviz.oip.settings import DEFAULT_BUDGET, Settings, chunk_size
from cnnviz.oip.transforms import apply_affine, blur
from cnnviz.results import FilterResult

DRAWS = 16  # transform draws per image
QUANTILE = 99.0  # each map is scaled so that this percentile of its values is 1

_STEPS = ModelCache()


def _gradient_step(model: Any, objective: obj.Objective, preactivation: bool,
                   pad: str) -> Any:
    """The compiled ``(images, channels, affine) -> |d score / d image|`` summed over the
    image's channels, for images seen through the transforms ``affine`` (K, 8)."""
    return _STEPS.get(model, (objective.key, preactivation, pad),
                      lambda: _build(model, objective, preactivation, pad))


def _build(model: Any, objective: obj.Objective, preactivation: bool, pad: str) -> Any:
    ops = keras().ops
    names = list(objective.layers)
    feature = feature_model(model, names, preactivation=preactivation)

    def magnitude(images: Any, channels: Any, affine: Any) -> Any:
        def loss(x: Any) -> tuple[Any, Any]:
            seen = apply_affine(x, affine, pad)
            acts = dict(zip(names, as_list(feature(seen)), strict=True))
            score = objective(acts, channels)
            return ops.sum(score), score

        _, grad = value_and_grad(loss)(images)
        return ops.sum(ops.abs(grad), axis=-1)

    return compile_step(magnitude)


def evidence(model: ModelFacts | Any, objective: obj.Objective, images: np.ndarray,
             channels: np.ndarray, settings: Settings | None = None, *, draws: int = DRAWS,
             budget: int = DEFAULT_BUDGET, seed: int = 0) -> np.ndarray:
    """Per image (K, H, W, in 0..1): how much its unit's score (``objective`` of
    ``channels[k]``) depends on each pixel — the gradient's magnitude over the channels,
    averaged over ``draws`` random transforms (the ``settings``' shifts, zooms and turns; one
    pixel of shift at least; drawn per filter and copy from ``seed``, so a map does not depend
    on the images beside it), smoothed by a Gaussian of a 64th of the side and scaled so that
    each map's 99th percentile is 1 (0 where the score does not depend on the image)."""
    facts = as_facts(model)
    settings = settings or Settings()
    images = np.asarray(images, np.float32)
    channels = np.asarray(channels, np.int32)
    count, height, width = images.shape[:3]
    moves = replace(settings.transforms, jitter=max(1, settings.transforms.jitter))
    step = _gradient_step(facts.model, objective, settings.preactivation, moves.pad)
    plans = np.empty((count, draws, 8), np.float32)
    # each image's draws from its filter and copy: chunk-free
    for k, (channel, copy) in enumerate(zip(channels.tolist(), copy_index(channels),
                                            strict=True)):
        rng = np.random.default_rng([seed, channel, copy])
        plans[k] = moves.sample(rng, draws, (height, width))
    chunk = chunk_size(facts.model, objective.layers[0], count, budget=budget,
                       shape=images.shape[1:])
    ops = keras().ops
    total = np.zeros((count, height, width), np.float64)
    for start in range(0, count, chunk):
        rows = slice(start, start + chunk)
        x, ch = ops.convert_to_tensor(images[rows]), ops.convert_to_tensor(channels[rows])
        for t in range(draws):
            total[rows] += ops.convert_to_numpy(
                step(x, ch, ops.convert_to_tensor(plans[rows, t])))
    sigma = max(height, width) / 64
    if sigma >= 0.5:
        total = ops.convert_to_numpy(blur(ops.convert_to_tensor(
            total[..., None].astype(np.float32)), sigma))[..., 0].astype(np.float64)
    top = np.percentile(total.reshape(count, -1), QUANTILE, axis=1)[:, None, None]
    return np.where(top > 0, np.clip(total / np.where(top > 0, top, 1.0), 0.0, 1.0),
                    0.0).astype(np.float32)


def add_transparency(facts: ModelFacts, result: FilterResult, settings: Settings,
                     budget: int = DEFAULT_BUDGET, unit: obj.Objective | None = None) -> None:
    """Give ``result`` each image's evidence map (its alpha): where its unit's score — ``unit``,
    else its objective kind's, without diversity or closeness terms — depends on the image."""
    kind = result.params.get("objective_kind", "channel")
    with span("transparency"):
        result.alpha = evidence(facts, unit or make_objective(kind, result.layer), result.images,
                                result.filters, settings, budget=budget, seed=settings.seed)
