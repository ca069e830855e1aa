"""``explain``: attribution maps of one input, with their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.attribution import BASELINES, Target, chosen_methods, explain
from cnnviz.attribution.metrics import evaluate
from cnnviz.core.errors import CnnvizError
from cnnviz.core.units import OutputUnit
from cnnviz.data.sources import model_inputs
from cnnviz.jobs.common import InputSpec, Outcome, choose_input
from cnnviz.model.facts import (
    ModelFacts,
)
from cnnviz.render import views


def explain_job(facts: ModelFacts, out: Path, source: InputSpec, *, method: str = "gradcam",
                target: Target = None, layer: str | None = None, baseline: str = "black",
                metrics: bool = False, force: bool = False,
                standalone: bool = False) -> Outcome:
    """``cnnviz explain``: the attribution methods ``method`` names (one, several
    comma-separated, or ``all``) for one input, the first drawn as an overlay — only those are
    computed; integrated gradients from ``baseline`` with their completeness error; with
    ``metrics``, each method's deletion, insertion and randomization checks."""
    methods = chosen_methods(method)
    BASELINES.check(baseline)
    with OutputUnit(out, "explain", force, main="explain.html") as unit:
        choice, data = choose_input(facts, source)
        references = None
        if BASELINES[baseline].references:
            if data is None:
                raise CnnvizError(f"the {baseline} baseline needs images: give them with --data")
            count = min(256, data.size() or 256)
            pixels, _ = data.gather(np.arange(count), choice.image.shape)
            references = model_inputs(pixels, facts.preprocess)
        result = explain(facts, choice.image[None], methods, target=target, layer=layer,
                         seed=source.seed, baseline=baseline, references=references,
                         data=choice.source, classes=() if data is None else data.class_names)
        with unit.writing() as written:
            written += views.write_attribution_views(result, methods[0], out,
                                                     standalone=standalone)
            written += result.save(out / "explain.npz")
    outcome = Outcome(written, [views.attribution_title(result)], [*facts.notes, *choice.notes])
    if "integrated_gradients" in result.maps:
        outcome.lines.append(_completeness_line(result, baseline))
    if "gradcam" in result.maps and not result.maps["gradcam"].any():
        outcome.lines.append("note: Grad-CAM is zero everywhere: no map of its layer raises this "
                             "class at any position (try an earlier layer with --layer)")
    if metrics:
        scores = evaluate(facts, result, baseline=baseline, references=references)
        outcome.lines += [f"  {score.line(name)}" for name, score in scores.items()]
    outcome.lines.append(outcome.wrote())
    return outcome


def _completeness_line(result: Any, baseline: str) -> str:
    """How closely integrated gradients add up to the score change, in words."""
    deltas, changes = result.completeness()
    delta, change = float(deltas[0]), float(changes[0])
    average = "; complete only on average over samples" if baseline == "expected" else ""
    return (f"integrated gradients from the {baseline} baseline: the attributions add up to "
            f"the score change {change:.4g} within {abs(delta):.2g}"
            f" ({abs(delta) / max(abs(change), 1e-12):.1%}{average})")
