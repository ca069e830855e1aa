"""Attribution maps, captum style: ``Method(model, layer=None).attribute(images, target=...)``.

Scores are the target class's logit (the last layer before its softmax) or a channel's mean.
``attribute`` returns arrays shaped like the input (N, H, W, C) for gradient methods — signed:
the sign says whether a pixel raises or lowers the score — and non-negative (N, H, W) maps for
the class-activation-map family; :func:`explain` runs several methods into one
:class:`~cnnviz.results.Attributions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnviz.attribution.cams import (
    CAM_MIN_SIDE,
    ClassActivationMap,
    GradCAM,
    GradCAMPlusPlus,
    LayerCAM,
    cam_layer,
)
from cnnviz.attribution.gradients import (
    ChannelTarget,
    GradientMethod,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    Target,
    baselines,
    score_model,
)
from cnnviz.attribution.perturbation import RISE, Occlusion, Perturbation
from cnnviz.core.errors import CnnvizError, check_seed
from cnnviz.core.tables import ATTRIBUTIONS, BASELINES
from cnnviz.core.timing import timed
from cnnviz.model.facts import ModelFacts, as_facts, get_layer
from cnnviz.results import Attributions, Meta

METHODS = ATTRIBUTIONS.names()
CAMS = ATTRIBUTIONS.names(layer=True)

__all__ = ["ATTRIBUTIONS", "BASELINES", "CAMS", "CAM_MIN_SIDE", "METHODS", "ChannelTarget",
           "cam_layer", "chosen_methods",
           "ClassActivationMap", "GradCAM", "GradCAMPlusPlus", "GradientMethod",
           "IntegratedGradients", "LayerCAM", "Occlusion", "Perturbation", "RISE", "Saliency",
           "SmoothGrad", "Target", "baselines",
           "explain", "make_method", "score_model"]


def make_method(name: str, model: Any, *, layer: str | None = None, seed: int = 0) -> Any:
    """An attribution method by its name in :data:`ATTRIBUTIONS`: its factory, given the CAM
    layer where it reads one and the seed where it draws random numbers."""
    entry = ATTRIBUTIONS[name]
    options = {"layer": layer} if entry.layer else {}
    return entry.load()(model, **options, **({"seed": seed} if entry.seeded else {}))


@timed("compute")
def chosen_methods(spec: str | Sequence[str]) -> tuple[str, ...]:
    """The methods ``spec`` names: ``all``, one name, or several (a list or comma-separated
    text), each checked against ``tables.ATTRIBUTIONS``, in order and once each."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    if names == ["all"]:
        return METHODS
    if not names or "" in names:
        raise CnnvizError("--method takes one or more methods, comma-separated, or all")
    return tuple(dict.fromkeys(ATTRIBUTIONS.check(n) for n in names))


def explain(model: ModelFacts | Any, images: np.ndarray, methods: tuple[str, ...] = METHODS, *,
            target: Target = None, layer: str | None = None, seed: int = 0,
            baseline: str = "black", references: np.ndarray | None = None,
            data: str | None = None, classes: tuple[str, ...] = ()) -> Attributions:
    """Each named method's attribution of model-ready ``images`` to ``target``: a class (default:
    the predicted one) or a :class:`ChannelTarget` (default for a model whose output is maps:
    its strongest channel). Integrated gradients start from ``baseline`` (black, blur, noise,
    mean or expected — the last two over model-ready ``references``); their completeness
    error is kept in ``params``. ``data`` says where the images came from, ``classes`` names
    them."""
    facts = as_facts(model)
    check_seed(seed)
    for name in methods:
        ATTRIBUTIONS.check(name)
    x = np.asarray(images, dtype=np.float32)
    reference = Saliency(facts)
    chosen = reference.targets(x, target)
    if reference.is_class and chosen.layer is None:
        scores = np.asarray(facts.model.predict(x, verbose=0))  # the probabilities themselves
    else:
        scores = reference.scores(x, chosen.layer)
    if not np.all(np.isfinite(scores)):
        raise CnnvizError("the model's output for the input is NaN or infinite: it overflows "
                          "inside, so no attribution can say why")
    why = "given" if layer is not None else "default"
    if layer is None and chosen.layer is not None and "/" not in chosen.layer and \
            len(get_layer(facts.model, chosen.layer).output.shape) == 4:
        layer, why = chosen.layer, "target"  # a layer's channel: where on that layer it fires
    if layer is None and any(ATTRIBUTIONS[name].layer for name in methods):
        layer = cam_layer(facts, tuple(x.shape[1:3]) if facts.any_size else None)
    maps, read_at, params = {}, None, {}
    for name in methods:
        entry, method = ATTRIBUTIONS[name], make_method(name, facts, layer=layer, seed=seed)
        if entry.baseline:
            maps[name], delta = method.attribute(x, chosen, baseline=baseline, seed=seed,
                                                 references=references, return_delta=True)
            params["completeness"] = np.asarray(delta).tolist()
            params["baseline"] = baseline
        else:
            maps[name] = method.attribute(x, chosen)
        read_at = method.layer if entry.layer else read_at
    kind = "class" if reference.is_class and chosen.layer is None else "channel"
    meta = Meta(facts.name, facts.preprocess, (read_at,) if read_at else (), data, seed,
                classes=classes if kind == "class" else (), model_digest=facts.digest)
    if read_at:
        params["cam_layer"] = why  # given, default (cam_layer's rule), or the target's layer
    params |= {"explained": "predicted" if target is None else "given", "target": kind,
               "target_layer": chosen.layer,
               "signed": {n: bool(ATTRIBUTIONS[n].signed) for n in methods}}
    return Attributions(x, maps, chosen.channel, scores, meta, params)
