"""The files a command writes for a result: PNG figures and an HTML page. Pages share one
``plotly.min.js`` per folder unless ``standalone``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.tables import ORDERS
from cnnviz.core.text import file_stem
from cnnviz.core.timing import timed
from cnnviz.render import figures, grids, sheet
from cnnviz.render.page import tiled_maps, write_page
from cnnviz.results import Activations, ClassPatterns, FilterResult

GRID_SIDE = 112  # pixels a side of a tile in the HTML grid of explain --indices


# Map values a page embeds as interactive heatmaps; past this, the page shows the PNG grids
# beside it and each map's mean and largest value (a ResNet50's 16 layers would be 300 MB).
EMBEDDED_VALUES = 250_000


@timed("render")
def write_activation_views(acts: Activations, out_dir: str | Path, *, index: int = 0,
                           scale: str = "shared", class_names: tuple[str, ...] | None = None,
                           title: str = "", standalone: bool = False) -> list[Path]:
    """Write ``input.png``, one ``<layer>.png`` grid per map layer and ``activations.html`` for
    input ``index``; return the paths written."""
    out = Path(out_dir)
    label = None if acts.labels is None else acts.meta.class_name(int(acts.labels[index]))
    class_names = class_names or acts.meta.classes or None
    probabilities = acts.probabilities[index]
    shown = acts.meta.display(acts.inputs[index])
    written = [grids.save_png(grids.input_figure(shown, probabilities, label=label,
                                                 class_names=class_names, title=title),
                              out / "input.png")]
    map_layers = {name: m[index] for name, m in acts.maps.items() if m.ndim == 4}
    pictures = {}
    for name, maps in map_layers.items():
        fig = grids.map_grid(maps, title=f"{name}: {maps.shape[-1]} maps of "
                             f"{maps.shape[0]}×{maps.shape[1]}", scale=scale)
        path = grids.save_png(fig, out / f"{file_stem(name, reserved=('input',))}.png")
        written.append(path)
        pictures[name] = path.name
    sections: list[tuple[str, Any]] = [("Input and prediction", figures.input_figure(
        shown, probabilities, label=label, class_names=class_names))]
    if map_layers and sum(m.size for m in map_layers.values()) > EMBEDDED_VALUES:
        summaries = {name: np.stack([m.mean(axis=(0, 1)), m.max(axis=(0, 1))], axis=-1)
                     for name, m in map_layers.items()}
        sections.append(("Activation maps", tiled_maps(pictures, summaries)))
    elif map_layers:
        sections.append(("Activation maps", figures.layer_maps_figure(map_layers)))
    return written + write_page(out / "activations.html", title or "cnnviz activations",
                                sections, intro=f"model {acts.meta.model}; layers: "
                                                f"{', '.join(map_layers)}",
                                standalone=standalone)




def _with_examples(images: np.ndarray, examples: np.ndarray) -> np.ndarray:
    """Each image followed, left to right, by its k examples, with a blank (NaN) column
    between the synthesized image and the real ones: (N, H, W·(k+1) + gap, C)."""
    n, height, width, channels = images.shape
    gap = max(1, width // 4)
    blank = np.full((n, height, gap, channels), np.nan, dtype=np.float64)
    real = np.concatenate(list(np.moveaxis(examples, 1, 0)), axis=2)
    return np.concatenate([images.astype(np.float64), blank, real], axis=2)


def _two(value: float) -> str:
    """Two decimals, never "-0.00"."""
    return f"{0.0 if abs(value) < 0.005 else value:.2f}"


def check_order(order: str) -> None:
    """Refuse a gallery order other than ``index`` or ``activation``."""
    ORDERS.check(order)


def _gallery_parts(result: FilterResult, order: str) -> dict[str, Any]:
    """Everything both galleries show: tiles, labels, flags, hover values and template."""
    check_order(order)
    n = len(result.filters)
    if n == 0:
        raise CnnvizError("no finished filters to draw")
    idx = np.arange(n) if order == "index" else np.argsort(-result.output, kind="stable")
    flagged = [bool(result.dead[i]) or int(result.filters[i]) in result.notes for i in idx]
    kind = result.params.get("objective_kind", "channel")
    labels = [("all maps" if result.dream else result.unit_name(result.filters[i])) +
              f": {_two(result.output[i])}" + (" dead" if result.dead[i] else "") for i in idx]
    template = ("class %{customdata[0]}" if result.classes else "filter %{customdata[0]}") + \
        "<br>output %{customdata[1]:.4g}"
    columns = [result.filters[idx], result.output[idx]]
    if result.best_real is not None:
        template += ("<br>best real image %{customdata[2]:.4g}"
                     "<br>ratio to best real %{customdata[3]:.2f}")
        columns += [result.best_real[idx], result.ratio[idx]]
    copies = int(result.params.get("diversity", 1))  # a filter's diverse images: one row
    shown = result.meta.display(result.patterns()[idx])
    alpha = result.transparency()
    if alpha is not None:  # faded to grey where the unit's evidence is weak (MACO)
        alpha = alpha[idx][..., None].astype(np.float64)
        shown = alpha * shown + (1.0 - alpha) * 0.5
    per_row, page_row = (copies, copies) if copies > 1 else (None, None)
    if result.example_images is not None and result.example_values is not None:
        k = result.example_images.shape[1]
        shown = _with_examples(shown, result.meta.display(result.example_images[idx]))
        per_row = max(1, round(float(np.sqrt(n / (1 + k)))))
        # a page is ~1000 px wide: at most ~20 images across keeps each ~48 px, room for labels
        page_row = max(1, min(per_row, 20 // (1 + k)))
        labels = [f"{label}  | top {k} real: {result.example_values[i, 0]:.2f}…"
                  f"{result.example_values[i, -1]:.2f}" for label, i in zip(labels, idx,
                                                                             strict=True)]
        template += (f"<br>top {k} real images: %{{customdata[{len(columns)}]:.3g}} … "
                     f"%{{customdata[{len(columns) + 1}]:.3g}}")
        columns += [result.example_values[idx, 0], result.example_values[idx, -1]]
    classes = _example_hover(result, idx)
    dead = int(result.dead.sum())
    what = {"neuron": "centre unit, its receptive field shown",
            "layer": "all maps together (DeepDream)",
            "unit": "the class logit before the softmax; its probability"
            if result.params.get("classes") == "probability" else "the class logit"
            if result.classes else "the unit's value"}.get(kind, "map mean")
    which = f"{n // copies} {result.units}{f' × {copies} images' if copies > 1 else ''} " \
        f"({what})" if not result.dream else (
        f"DeepDream of all maps {'before' if result.params.get('preactivation') else 'after'} "
        "their activation")
    heading = (f"{result.layer}: {which}, {result.params.get('steps', '?')} steps"
               f"{f', {dead} dead' if dead else ''}"
               f"{'; faded to grey where the unit answers little' if alpha is not None else ''}")
    return dict(idx=idx, shown=shown, labels=labels, flagged=flagged, per_row=per_row,
                page_row=page_row,
                values=np.stack(columns, axis=1), template=template, heading=heading,
                value_range=(0.0, 1.0), classes=classes)


def _example_hover(result: FilterResult, idx: np.ndarray) -> list[str] | None:
    """Per tile, what its real examples are: their classes and where each comes from (file
    or index), and whether they are cut to where the filter answers."""
    names = result.params.get("example_names")
    if result.example_labels is None and not names:
        return None
    cut = " (each cut to where the filter answers most)" if result.params.get(
        "example_crops") else ""
    return ["<br>".join(part for part in (
        "" if result.example_labels is None else
        _class_counts(result.example_labels[i], result.meta.class_name),
        f"real images{cut}: " + ", ".join(names[i]) if names else "") if part) for i in idx]


def _class_counts(labels: np.ndarray, name: Any) -> str:
    """"classes of the real images: cat ×5, dog ×3", most frequent first."""
    values, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return "classes of the real images: " + ", ".join(
        f"{name(int(values[o]))} ×{counts[o]}" for o in order)


def filter_gallery_figure(result: FilterResult, order: str = "index") -> Any:
    """The interactive (plotly) gallery of a filter result."""
    p = _gallery_parts(result, order)
    return figures.image_gallery_figure(p["shown"], p["labels"], p["values"], p["template"],
                                        value_range=p["value_range"], flagged=p["flagged"],
                                        title=p["heading"], columns=p["page_row"],
                                        hover_text=p["classes"])


def filter_gallery_picture(result: FilterResult, order: str = "index", title: str = "") -> Any:
    """The static gallery of a filter result (a ``PIL.Image``): ``filters.png``."""
    return _gallery_sheet(_gallery_parts(result, order), title)


def _gallery_sheet(p: dict[str, Any], title: str = "") -> Any:
    return sheet.image_gallery(p["shown"], p["labels"], value_range=p["value_range"],
                               title=title or p["heading"], flagged=p["flagged"],
                               columns=p["per_row"])


@timed("render")
def write_filter_views(result: FilterResult, out_dir: str | Path, *, order: str = "index",
                       title: str = "", standalone: bool = False) -> list[Path]:
    """Write ``filters.png`` and ``filters.html`` galleries of a filter result (tiles ordered by
    filter index or by activation, dead filters flagged in red; with dataset examples, each
    synthesized image is followed by the real images that excite its filter most)."""
    out = Path(out_dir)
    p = _gallery_parts(result, order)
    heading = title or p["heading"]
    written = [grids.save_png(_gallery_sheet(p, heading), out / "filters.png")]
    sections = [("Optimal input patterns", filter_gallery_figure(result, order))]
    idx = p["idx"]
    curves = figures.curves_figure(result.curves[idx],
                                   [f"filter {result.filters[i]}" for i in idx],
                                   result.params.get("steps"))
    sections.append(("Activation during the ascent", curves))
    intro = (f"model {result.meta.model}; objective {result.params.get('objective', '?')}; "
             f"method {result.params.get('update')}, {result.params.get('param')} "
             f"parameterization; seed {result.meta.seed}"
             + (f"; ascent in {result.params['precision']} "
                f"({result.params.get('precision_reason', '')}), outputs measured in float32"
                if result.params.get("precision", "float32") != "float32" else ""))
    return written + write_page(out / "filters.html", heading, sections, intro=intro,
                                standalone=standalone)


@timed("render")
def write_kernel_views(kernels: np.ndarray, layer: str, out_dir: str | Path, *,
                       standalone: bool = False, colour: np.ndarray | None = None
                       ) -> list[Path]:
    """Write ``kernels.png`` and ``kernels.html``: each filter's weights (kh×kw×filters) on a
    diverging colour scale centred on zero; with ``colour`` (kh×kw×3×filters, an RGB layer's
    weights) the PNG shows each kernel in colour, mid-grey at zero."""
    out = Path(out_dir)
    title = f"{layer}: {kernels.shape[-1]} kernels of {kernels.shape[0]}×{kernels.shape[1]}"
    if colour is not None:
        span = np.abs(colour).max(axis=(0, 1, 2), keepdims=True)
        shown = np.moveaxis(0.5 + 0.5 * colour / np.where(span > 0, span, 1.0), -1, 0)
        picture = sheet.image_gallery(shown, [str(f) for f in range(len(shown))],
                                      value_range=(0.0, 1.0), title=f"{title} in colour (RGB; "
                                      "mid-grey is 0, each kernel scaled to its largest weight)")
        written = [grids.save_png(picture, out / "kernels.png")]
    else:
        fig = grids.map_grid(kernels, title=title, cmap="RdBu_r", symmetric=True,
                             label="weight")
        written = [grids.save_png(fig, out / "kernels.png")]
    figure = figures.layer_maps_figure({layer: kernels}, colorscale="RdBu_r", symmetric=True,
                                       unit="filter", value="weight")
    return written + write_page(out / "kernels.html", f"{layer} kernels",
                                [("Kernel weights", figure)], standalone=standalone)


VALUE_TITLES = {"contrast": "class mean minus the mean over classes",
                "means": "mean activation per class"}


def patterns_figure(patterns: ClassPatterns, values: str = "contrast") -> Any:
    """The interactive (plotly) class-pattern heatmaps of every layer of a result: the
    ``contrast`` of each class with the others (default) or the raw ``means``."""
    return figures.patterns_figure({n: (patterns.values(n, values), patterns.means[n],
                                        patterns.stds[n]) for n in patterns.layers},
                                   patterns.counts, patterns.class_names,
                                   diverging=values == "contrast")


@timed("render")
def write_pattern_views(patterns: ClassPatterns, out_dir: str | Path, *,
                        values: str = "contrast", standalone: bool = False) -> list[Path]:
    """Write one ``patterns_<layer>.png`` heatmap per layer and ``patterns.html``: each map's
    class means minus its mean over the classes (``values="contrast"``: which maps answer to
    which class), or the raw ``means`` (which are on at all)."""
    out = Path(out_dir)
    written = []
    for name in patterns.layers:
        fig = grids.patterns_heatmap(patterns.values(name, values), patterns.class_names,
                                     title=f"{name}: {VALUE_TITLES[values]}",
                                     unit=patterns.unit_kind(name),
                                     diverging=values == "contrast")
        written.append(grids.save_png(fig, out / f"patterns_{file_stem(name)}.png"))
    what = ("each map's mean activation per class minus its mean over the classes (unweighted), "
            "so a map that is on for every class is pale and one that answers to a class is "
            "red there (--values means for the raw means)" if values == "contrast"
            else "each map's mean activation per class")
    intro = (f"model {patterns.meta.model}; {patterns.params.get('images', '?')} images of "
             f"{patterns.meta.data or '?'}; maps are averaged over positions; {what}")
    written += write_page(out / "patterns.html", "Class activation patterns",
                          [(VALUE_TITLES[values].capitalize(),
                            patterns_figure(patterns, values))],
                          intro=intro, standalone=standalone)
    for name in patterns.images:
        written += write_class_map_views(patterns, name, out, standalone=standalone)
    return list(dict.fromkeys(written))  # plotly.min.js once


def write_class_map_views(patterns: ClassPatterns, layer: str, out_dir: str | Path, *,
                          standalone: bool = False) -> list[Path]:
    """Per class, the mean image of every map of ``layer`` and its difference from the
    all-class mean: ``class_maps_<layer>_<class>.png`` and ``..._minus_all.png`` grids and
    ``class_maps_<layer>.html`` (a class menu in each figure)."""
    out = Path(out_dir)
    means, differences = patterns.map_images(layer)
    stem = file_stem(layer)
    written = []
    shown = [c for c in range(len(patterns.class_names)) if patterns.counts[c]]
    for c in shown:
        cname = patterns.class_names[c]
        count = int(patterns.counts[c])
        written.append(grids.save_png(grids.map_grid(
            means[c], title=f"{layer}: mean maps of class {cname} ({count} images)"),
            out / f"class_maps_{stem}_{file_stem(cname)}.png"))
        written.append(grids.save_png(grids.map_grid(
            differences[c], title=f"{layer}: class {cname} minus the mean of all classes",
            cmap="RdBu_r", symmetric=True, label="difference"),
            out / f"class_maps_{stem}_{file_stem(cname)}_minus_all.png"))
    names = [f"class {patterns.class_names[c]}" for c in shown]
    mean_figure = figures.layer_maps_figure(dict(zip(names, means[shown], strict=True)))
    difference_figure = figures.layer_maps_figure(
        dict(zip(names, differences[shown], strict=True)), colorscale="RdBu_r",
        symmetric=True, value="difference")
    intro = (f"model {patterns.meta.model}; {patterns.params.get('images', '?')} images of "
             f"{patterns.meta.data or '?'}; each map averaged over the images of a class, "
             "position by position")
    return written + write_page(
        out / f"class_maps_{stem}.html", f"Mean maps of {layer} per class",
        [("Mean maps per class (choose the class)", mean_figure),
         ("Difference from the mean over all classes", difference_figure)],
        intro=intro, standalone=standalone)
