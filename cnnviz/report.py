"""One self-contained HTML report of a model: summary, activations, filter galleries, class
patterns and attributions — read from saved results where they exist, computed otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.errors import CnnvizError

StatusFn = Callable[[str], None]


def build_report(model: Any, *, results: str | Path | None = None, layer: str | None = None,
                 steps: int = 100, examples: int = 9, seed: int = 0,
                 status: StatusFn | None = None) -> str:
    """The report page as HTML. ``results`` is a folder holding ``filters.npz`` and
    ``patterns.npz`` from earlier runs (cnnviz-out/filters, cnnviz-out/patterns, or any folder
    with those files, searched one level down); missing parts are computed."""
    from cnnviz.activations import ClassPatterns, activations, class_patterns
    from cnnviz.attribution import explain
    from cnnviz.data import images_to_model_input, load_mnist, pick_digit
    from cnnviz.models import (
        conv_layers,
        get_layer,
        input_shape,
        list_layers,
        resolve_map_layers,
    )
    from cnnviz.oip.optimize import Settings, visualize_filters
    from cnnviz.oip.results import FilterResult
    from cnnviz.render import html

    say = status or (lambda message: None)
    from cnnviz.preprocess import preprocess_of

    shape, preprocess = input_shape(model), preprocess_of(model)
    maps_layers = resolve_map_layers(model, None)  # raises when the model has none
    deepest = layer or (conv_layers(model) or maps_layers)[-1]
    resolve_map_layers(model, [deepest])
    data = load_mnist()
    x_test, y_test = data.split("test")
    picks = [pick_digit(y_test, d, seed) for d in range(10)]
    inputs = images_to_model_input(x_test[picks], shape, preprocess)
    labels = [f"digit {d} (test image {i})" for d, i in zip(range(10), picks, strict=True)]

    sections: list[tuple[str, Any]] = []
    rows = [[i.name, i.type, str(i.output_shape), "" if i.maps is None else str(i.maps),
             f"{get_layer(model, i.name).count_params():,}"] for i in list_layers(model)]
    sections.append((f"Model {model.name}", html.table(
        ["layer", "type", "output shape", "maps", "parameters"], rows)))

    say("activations")
    acts = activations(model, inputs, maps_layers)
    per_input = [{n: acts.maps[n][i] for n in maps_layers} for i in range(len(inputs))]
    predictions = [f"{label}: predicted {int(p)}" for label, p in zip(
        labels, acts.predictions, strict=True)]
    sections.append(("Activation maps", html.switchable_maps(per_input, predictions)))

    saved = _find(results, "filters.npz")
    result = FilterResult.load(saved) if saved else None
    if result is None or result.layer != deepest:
        say(f"filters of {deepest}")
        result = visualize_filters(model, deepest, None, Settings(steps=steps, seed=seed),
                                   reference_images=x_test, examples=examples)
    from cnnviz.render.views import filter_gallery_figure

    sections.append((f"Optimal input patterns of {result.layer}",
                     filter_gallery_figure(result, "activation")))

    saved = _find(results, "patterns.npz")
    patterns = ClassPatterns.load(saved) if saved else None
    if patterns is None:
        say("class patterns")
        dense = [i.name for i in list_layers(model) if i.type == "Dense"]
        patterns = class_patterns(model, x_test, y_test, [deepest, *dense],
                                  class_names=data.class_names)
    sections.append(("Class activation patterns", html.patterns_figure(
        {n: (patterns.means[n], patterns.stds[n]) for n in patterns.layers}, patterns.counts,
        patterns.class_names)))

    say("attribution")
    six = int(np.flatnonzero(np.asarray([int(d.split()[1]) for d in labels]) == 6)[0])
    heatmaps = {n: m[0] for n, m in explain(model, inputs[six:six + 1], seed=seed).items()}
    sections.append(("Attribution maps", html.attribution_figure(
        preprocess.to_unit(inputs[six]), heatmaps, value_range=(0.0, 1.0),
        title=predictions[six])))
    return html.page(f"cnnviz report: {model.name}", sections,
                     intro=f"input {shape[0]}×{shape[1]}×{shape[2]}, preprocessing "
                           f"{preprocess.name}; seed {seed}")


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
