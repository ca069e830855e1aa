"""One self-contained HTML report of a model: summary, activations, filter galleries, class
patterns and attributions — read from saved results where they are given, computed otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.activations import activations, class_patterns
from cnnviz.attribution import explain
from cnnviz.data import Dataset, images_to_model_input, load_mnist, pick_digit
from cnnviz.errors import CnnvizError
from cnnviz.models import (
    ModelFacts,
    as_facts,
    default_layer,
    get_layer,
    list_layers,
    resolve_map_layers,
)
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.settings import Settings
from cnnviz.render import page as widgets
from cnnviz.render import views
from cnnviz.results import ClassPatterns, FilterResult

StatusFn = Callable[[str], None]
Section = tuple[str, Any]


def build_report(model: ModelFacts | Any, *, results: str | Path | None = None,
                 layer: str | None = None, steps: int = 100, examples: int = 9, seed: int = 0,
                 status: StatusFn | None = None) -> str:
    """The report page as one self-contained HTML text. ``results`` is a folder holding
    ``filters.npz`` and ``patterns.npz`` from earlier runs (directly or one level down, as in
    cnnviz-out/); what it lacks is computed."""
    facts = as_facts(model)
    if steps <= 0 or examples < 0:
        raise CnnvizError("--steps must be positive and --examples ≥ 0")
    say = status or (lambda message: None)
    shape = facts.image_shape()
    deepest = layer or default_layer(facts.model)
    resolve_map_layers(facts.model, [deepest])
    data = load_mnist()
    x_test, y_test = data.split("test")
    picks = [pick_digit(y_test, d, seed) for d in range(10)]
    inputs = images_to_model_input(x_test[picks], shape, facts.preprocess)
    labels = [f"digit {d} (test image {i})" for d, i in zip(range(10), picks, strict=True)]
    say("activations")
    sections = [_summary(facts), _activation_section(facts, inputs, labels)]
    say(f"filters of {deepest}")
    sections.append(_filter_section(facts, deepest, _find(results, "filters.npz"), data, steps,
                                    examples, seed))
    say("class patterns")
    sections.append(_pattern_section(facts, deepest, _find(results, "patterns.npz"), data))
    say("attribution")
    six = 6  # the inputs are one digit of each class, in order
    explained = explain(facts, inputs[six:six + 1], seed=seed, data=labels[six])
    sections.append(("Attribution maps", views.attribution_figure(explained)))
    return widgets.page(f"cnnviz report: {facts.name}", sections, standalone=True,
                        intro=f"input {shape[0]}×{shape[1]}×{shape[2]}, preprocessing "
                              f"{facts.preprocess.name}; seed {seed}")


def _summary(facts: ModelFacts) -> Section:
    rows = [[i.name, i.type, str(i.output_shape), "" if i.maps is None else str(i.maps),
             f"{get_layer(facts.model, i.name).count_params():,}"]
            for i in list_layers(facts.model)]
    return (f"Model {facts.name}", widgets.table(
        ["layer", "type", "output shape", "maps", "parameters"], rows))


def _activation_section(facts: ModelFacts, inputs: np.ndarray, labels: list[str]) -> Section:
    names = resolve_map_layers(facts.model, None)
    acts = activations(facts, inputs, names)
    per_input = [{n: acts.maps[n][i] for n in names} for i in range(len(inputs))]
    predictions = [f"{label}: predicted {int(p)}"
                   for label, p in zip(labels, acts.predictions, strict=True)]
    return ("Activation maps", widgets.switchable_maps(per_input, predictions))


def _filter_section(facts: ModelFacts, layer: str, saved: Path | None, data: Dataset,
                    steps: int, examples: int, seed: int) -> Section:
    result = FilterResult.load(saved) if saved else None
    if result is None or result.layer != layer:
        result = visualize_filters(facts, layer, None, Settings(steps=steps, seed=seed),
                                   reference_images=data.split("test")[0], examples=examples,
                                   data=f"{data.name} (test)")
    return (f"Optimal input patterns of {result.layer}",
            views.filter_gallery_figure(result, "activation"))


def _pattern_section(facts: ModelFacts, layer: str, saved: Path | None,
                     data: Dataset) -> Section:
    patterns = ClassPatterns.load(saved) if saved else None
    if patterns is None:
        dense = [i.name for i in list_layers(facts.model) if i.type == "Dense"]
        x_test, y_test = data.split("test")
        patterns = class_patterns(facts, x_test, y_test, [layer, *dense],
                                  class_names=data.class_names, data=f"{data.name} (test)")
    return ("Class activation patterns", views.patterns_figure(patterns))


def _find(folder: str | Path | None, name: str) -> Path | None:
    if folder is None:
        return None
    folder = Path(folder)
    if not folder.is_dir():
        raise CnnvizError(f"results folder not found: {folder}")
    for candidate in [folder / name, *sorted(folder.glob(f"*/{name}"))]:
        if candidate.is_file():
            return candidate
    return None
