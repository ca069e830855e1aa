"""Interactive figures of results, for notebooks: each function takes a result and returns a
plotly ``Figure`` (shown inline in Jupyter; ``.write_html`` saves it). The same figures make
the HTML pages of the command line."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.render import figures, views
from cnnviz.results import Activations, Attributions, ClassPatterns, FilterResult


def activations(result: Activations, index: int = 0, *, colorscale: str = "Viridis") -> Any:
    """Every map of every map layer for input ``index``, with a menu to switch layers; hover
    shows map, position and value."""
    maps = {name: m[index] for name, m in result.maps.items() if m.ndim == 4}
    return figures.layer_maps_figure(maps, colorscale=colorscale)


def prediction(result: Activations, index: int = 0,
               class_names: tuple[str, ...] | None = None) -> Any:
    """Input ``index`` beside the model's class probabilities for it."""
    label = None if result.labels is None else int(result.labels[index])
    return figures.input_figure(result.meta.display(result.inputs[index]),
                                result.probabilities[index], label=label,
                                class_names=class_names)


def filters(result: FilterResult, order: str = "index") -> Any:
    """The gallery of optimal input patterns (with their real examples when kept); hover shows
    filter, activation and the comparison with real images."""
    return views.filter_gallery_figure(result, order)


def curves(result: FilterResult) -> Any:
    """The objective of each filter at every ascent step."""
    return figures.curves_figure(result.curves, [f"filter {f}" for f in result.filters])


def patterns(result: ClassPatterns) -> Any:
    """Mean activation per class of every map or unit, with layer and sort menus."""
    return views.patterns_figure(result)


def attributions(result: Attributions, index: int = 0) -> Any:
    """Input ``index`` beside every method's attribution map."""
    return views.attribution_figure(result, index)


def kernels(weights: np.ndarray, layer: str = "kernels") -> Any:
    """Convolution kernels (kh × kw × filters) on a diverging scale centred on zero."""
    return figures.layer_maps_figure({layer: np.asarray(weights)}, colorscale="RdBu",
                                     symmetric=True, unit="filter", value="weight")
