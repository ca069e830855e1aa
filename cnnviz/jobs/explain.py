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
from cnnviz.jobs.common import InputSpec, Outcome, choose_input, choose_inputs
from cnnviz.model.facts import (
    ModelFacts,
)
from cnnviz.render import attributions as explained


def explain_job(facts: ModelFacts, out: Path, source: InputSpec, *, method: str = "gradcam",
                target: Target = None, layer: str | None = None, baseline: str = "black",
                metrics: bool = False, force: bool = False, standalone: bool = False,
                indices: str | None = None) -> Outcome:
    """``cnnviz explain``: the attribution methods ``method`` names (one, several
    comma-separated, or ``all``) — only those are computed — for one input, the first drawn
    as an overlay; or, with ``indices`` (``"0-15"``), for those images of the data, drawn as one
    grid of inputs × methods. Integrated gradients start from ``baseline`` and report their
    completeness error; with ``metrics``, each method's deletion, insertion and cascading
    randomization checks, a failing method flagged where its map is shown."""
    methods = chosen_methods(method)
    BASELINES.check(baseline)
    with OutputUnit(out, "explain", force, main="explain.html") as unit:
        if indices is None:
            choice, data = choose_input(facts, source)
            choices = [choice]
        else:
            choices, data = choose_inputs(facts, source, indices)
        references = None
        if BASELINES[baseline].references:
            if data is None:
                raise CnnvizError(f"the {baseline} baseline needs images: give them with --data")
            count = min(256, data.size() or 256)
            pixels, _ = data.gather(np.arange(count), choices[0].image.shape)
            references = model_inputs(pixels, facts.preprocess)
        where = choices[0].source if indices is None else f"{data.name} images {indices}"
        result = explain(facts, np.stack([c.image for c in choices]), methods, target=target,
                         layer=layer, seed=source.seed, baseline=baseline,
                         references=references, data=where,
                         classes=() if data is None else data.class_names)
        result.params["inputs"] = [c.source for c in choices]
        scores = {}
        if metrics:
            scores = evaluate(facts, result, seed=source.seed, baseline=baseline,
                              references=references)
            result.params["checks"] = {name: score.summary() for name, score in scores.items()}
        with unit.writing() as written:
            if indices is None:
                written += explained.write_attribution_views(result, methods[0], out,
                                                         standalone=standalone)
            else:
                written += explained.write_attribution_grid(result, out, standalone=standalone)
            written += result.save(out / "explain.npz")
    notes = [*facts.notes, *(note for c in choices for note in c.notes)]
    titles = [explained.attribution_title(result, i) for i in range(len(choices))]
    outcome = Outcome(written, titles if len(titles) <= 4 else [
        f"{len(titles)} inputs explained: {', '.join(titles[:2])}, …"], notes)
    if result.meta.layers:
        outcome.lines.append(explained.cam_layer_line(result))
    if "integrated_gradients" in result.maps and indices is None:
        outcome.lines.append(_completeness_line(result, baseline))
    if "gradcam" in result.maps and not result.maps["gradcam"].any():
        outcome.lines.append("note: Grad-CAM is zero everywhere: no map of its layer raises this "
                             "class at any position (try an earlier layer with --layer)")
    for name, score in scores.items():
        outcome.lines.append(f"  {score.line(name)}")
        outcome.lines += [f"  ⚠ {name} {flag}" for flag in score.flags()]
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
