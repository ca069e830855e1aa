"""Interactive figures of results, for notebooks: each function takes a result and returns a
plotly ``Figure`` (shown inline in Jupyter; ``.write_html`` saves it). The same figures make
the HTML pages of the command line."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.render import attributions as explained
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
    return explained.attribution_figure(result, index)


def kernels(weights: np.ndarray, layer: str = "kernels") -> Any:
    """Convolution kernels (kh × kw × filters) on a diverging scale centred on zero."""
    return figures.layer_maps_figure({layer: np.asarray(weights)}, colorscale="RdBu",
                                     symmetric=True, unit="filter", value="weight")


def history(result: Any) -> Any:
    """Training curves — loss, accuracy (training and validation) and the learning rate per
    epoch — of a :class:`~cnnviz.training.train.TrainResult` or a history dict."""
    from cnnviz.render.history import history_figure

    return history_figure(getattr(result, "history", result))


def class_maps(result: ClassPatterns, layer: str, *, difference: bool = False) -> Any:
    """Per class (a menu) the mean image of every map of ``layer`` — or, with ``difference``,
    its difference from the mean over all classes (``class_patterns(map_images=True)``)."""
    means, differences = result.map_images(layer)
    shown = [c for c in range(len(result.class_names)) if result.counts[c]]
    maps = {f"class {result.class_names[c]}": (differences if difference else means)[c]
            for c in shown}
    if difference:
        return figures.layer_maps_figure(maps, colorscale="RdBu_r", symmetric=True,
                                         value="difference")
    return figures.layer_maps_figure(maps)


def evolution(snapshots: list[FilterResult]) -> Any:
    """A layer's pattern gallery at each snapshot (``FilterSnapshots`` results, in epoch
    order), played with a slider."""
    from cnnviz.render.evolution import evolution_figure

    epochs = [int(r.params.get("epoch", i)) for i, r in enumerate(snapshots)]
    return evolution_figure(snapshots[0].layer, epochs,
                            [r.meta.display(r.patterns()) for r in snapshots],
                            snapshots[0].filters)
