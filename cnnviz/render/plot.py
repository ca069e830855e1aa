"""Interactive figures of results, for notebooks: each function takes a result and returns a
plotly ``Figure`` (shown inline in Jupyter; ``.write_html`` saves it). The same figures make
the HTML pages of the command line. Each also carries a static picture of the same result
(the PNG the command line writes; a menu's figure: its first view), so a notebook exported to
HTML, shown on GitHub or on nbviewer still shows it: ``fig.picture()`` returns it."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnviz.render import attributions as explained
from cnnviz.render import figures, grids, views
from cnnviz.results import Activations, Attributions, ClassPatterns, FilterResult


@functools.cache
def _figure_class() -> type:
    import plotly.graph_objects as go

    class Figure(go.Figure):
        """A plotly figure that also carries a static picture (``picture()``) of its result:
        Jupyter receives both, and a front end that cannot run plotly shows the PNG."""

        def picture(self) -> Any:
            """The static picture: a matplotlib figure or a ``PIL.Image``."""
            return self._cnnviz_draw()

        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                              validate: bool = True, **kwargs: Any) -> dict[str, Any]:
            bundle = dict(super()._repr_mimebundle_(include, exclude, validate, **kwargs))
            png = grids.png_bytes(self.picture(), level=9)  # kept in saved notebooks: small
            bundle["image/png"] = base64.b64encode(png).decode()
            bundle["text/plain"] = self._cnnviz_text
            return bundle

        def _ipython_display_(self) -> None:
            # IPython asks this before _repr_mimebundle_ (plotly's own shows no picture)
            from IPython.display import display

            bundle = self._repr_mimebundle_()
            if set(bundle) <= {"image/png", "text/plain"}:  # a renderer outside Jupyter
                super()._ipython_display_()
            display(bundle, raw=True)

        def show(self, *args: Any, **kwargs: Any) -> None:
            """In Jupyter (no arguments): the figure and its picture; else plotly's ``show``."""
            try:
                from IPython import get_ipython
            except ImportError:
                get_ipython = None  # noqa: N806
            if args or kwargs or get_ipython is None or \
                    getattr(get_ipython(), "kernel", None) is None:
                return super().show(*args, **kwargs)
            from IPython.display import display

            display(self)
            return None

    return Figure


def _with_picture(figure: Any, draw: Callable[[], Any], text: str) -> Any:
    """``figure`` (plotly) as a cnnviz figure whose static picture ``draw()`` makes; ``text``
    is its plain-text form."""
    shown = _figure_class()(figure)
    shown._cnnviz_draw = draw
    shown._cnnviz_text = f"<cnnviz figure: {text}>"
    return shown


def _matplotlib_name(colorscale: str) -> str:
    """The matplotlib colour map of a plotly colour scale's name (viridis where none)."""
    import matplotlib

    names = {name.lower(): name for name in matplotlib.colormaps}
    return names.get(colorscale.lower(), "viridis")


def _menu_note(names: Sequence[str]) -> str:
    return f" (first of {len(names)}: the figure's menu shows the others)" if len(names) > 1 \
        else ""


def activations(result: Activations, index: int = 0, *, colorscale: str = "Viridis") -> Any:
    """Every map of every map layer for input ``index``, with a menu to switch layers; hover
    shows map, position and value."""
    maps = {name: m[index] for name, m in result.maps.items() if m.ndim == 4}
    names = list(maps)

    def draw() -> Any:
        first = maps[names[0]]
        return grids.map_grid(first, title=f"{names[0]}: {first.shape[-1]} maps of "
                              f"{first.shape[0]}×{first.shape[1]}{_menu_note(names)}",
                              cmap=_matplotlib_name(colorscale))

    return _with_picture(figures.layer_maps_figure(maps, colorscale=colorscale), draw,
                         f"activation maps of {', '.join(names)}")


def prediction(result: Activations, index: int = 0,
               class_names: tuple[str, ...] | None = None) -> Any:
    """Input ``index`` beside the model's class probabilities for it."""
    label = None if result.labels is None else int(result.labels[index])
    shown = result.meta.display(result.inputs[index])
    figure = figures.input_figure(shown, result.probabilities[index], label=label,
                                  class_names=class_names)
    return _with_picture(figure, lambda: grids.input_figure(
        shown, result.probabilities[index], label=label, class_names=class_names),
        f"input {index} and its prediction")


def filters(result: FilterResult, order: str = "index") -> Any:
    """The gallery of optimal input patterns (with their real examples when kept); hover shows
    filter, activation and the comparison with real images."""
    return _with_picture(views.filter_gallery_figure(result, order),
                         lambda: views.filter_gallery_picture(result, order),
                         f"optimal input patterns of {result.layer}")


def curves(result: FilterResult) -> Any:
    """The objective of each filter at every ascent step."""
    names = [f"filter {f}" for f in result.filters]
    steps = result.params.get("steps")
    return _with_picture(figures.curves_figure(result.curves, names, steps),
                         lambda: grids.curves_png(result.curves, names, steps),
                         f"the ascent's curves on {result.layer}")


def patterns(result: ClassPatterns) -> Any:
    """Mean activation per class of every map or unit, with layer and sort menus."""
    first = result.layers[0]
    title = f"{first}: {views.VALUE_TITLES['contrast']}\n{_menu_note(result.layers).strip()}"
    return _with_picture(views.patterns_figure(result), lambda: grids.patterns_heatmap(
        result.values(first, "contrast"), result.class_names, title=title.strip(),
        unit=result.unit_kind(first), diverging=True),
        f"class patterns of {', '.join(result.layers)}")


def attributions(result: Attributions, index: int = 0) -> Any:
    """Input ``index`` beside every method's attribution map."""
    return _with_picture(explained.attribution_figure(result, index),
                         lambda: explained.attribution_picture(result, index),
                         f"attributions of input {index}")


def kernels(weights: np.ndarray, layer: str = "kernels") -> Any:
    """Convolution kernels (kh × kw × filters) on a diverging scale centred on zero."""
    weights = np.asarray(weights)
    figure = figures.layer_maps_figure({layer: weights}, colorscale="RdBu", symmetric=True,
                                       unit="filter", value="weight")
    return _with_picture(figure, lambda: grids.map_grid(
        weights, title=f"{layer}: {weights.shape[-1]} kernels of {weights.shape[0]}×"
        f"{weights.shape[1]}", cmap="RdBu_r", symmetric=True, label="weight"),
        f"kernels of {layer}")


def history(result: Any) -> Any:
    """Training curves — loss, accuracy (training and validation) and the learning rate per
    epoch — of a :class:`~cnnviz.training.train.TrainResult` or a history dict."""
    from cnnviz.render.history import history_figure, history_png

    values = getattr(result, "history", result)
    return _with_picture(history_figure(values), lambda: history_png(values),
                         "training curves")


def class_maps(result: ClassPatterns, layer: str, *, difference: bool = False) -> Any:
    """Per class (a menu) the mean image of every map of ``layer`` — or, with ``difference``,
    its difference from the mean over all classes (``class_patterns(map_images=True)``)."""
    means, differences = result.map_images(layer)
    shown = [c for c in range(len(result.class_names)) if result.counts[c]]
    maps = {f"class {result.class_names[c]}": (differences if difference else means)[c]
            for c in shown}
    names = list(maps)
    what = "minus the mean of all classes" if difference else "mean maps"

    def draw() -> Any:
        title = f"{layer}, {names[0]}: {what}{_menu_note(names)}"
        if difference:
            return grids.map_grid(maps[names[0]], title=title, cmap="RdBu_r", symmetric=True,
                                  label="difference")
        return grids.map_grid(maps[names[0]], title=title)

    figure = figures.layer_maps_figure(maps, colorscale="RdBu_r", symmetric=True,
                                       value="difference") if difference else \
        figures.layer_maps_figure(maps)
    return _with_picture(figure, draw, f"class maps of {layer} ({what})")


def evolution(snapshots: list[FilterResult]) -> Any:
    """A layer's pattern gallery at each snapshot (``FilterSnapshots`` results, in epoch
    order), played with a slider."""
    from cnnviz.render.evolution import evolution_figure, evolution_png

    epochs = [int(r.params.get("epoch", i)) for i, r in enumerate(snapshots)]
    galleries = [r.meta.display(r.patterns()) for r in snapshots]
    layer, units = snapshots[0].layer, snapshots[0].filters
    return _with_picture(evolution_figure(layer, epochs, galleries, units),
                         lambda: evolution_png(layer, epochs, galleries, units),
                         f"{layer}'s patterns over {len(epochs)} snapshots")
