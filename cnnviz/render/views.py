"""The files a command writes: PNG grids and the HTML page for a set of results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnviz.activations import Activations, ClassPatterns
from cnnviz.errors import CnnvizError
from cnnviz.oip.results import FilterResult
from cnnviz.render import grids, html


def display_of(params: dict, images: np.ndarray) -> np.ndarray:
    """Model inputs → display pixels (0..1, RGB order) with the preprocessing in ``params``
    (results saved before it was recorded carry only a scalar ``value_range``)."""
    from cnnviz.preprocess import Preprocess

    if "preprocess" in params:
        return Preprocess.from_params(params["preprocess"]).to_unit(images)
    lo, hi = params.get("value_range", params.get("input_range", (0.0, 1.0)))
    return np.clip((np.asarray(images, np.float64) - lo) / ((hi - lo) or 1.0), 0.0, 1.0)


def _file_stem(layer: str) -> str:
    return layer.replace("/", "__")


def write_activation_views(acts: Activations, out_dir: str | Path, *, index: int = 0,
                           scale: str = "shared", class_names: tuple[str, ...] | None = None,
                           title: str = "") -> list[Path]:
    """Write ``input.png``, one ``<layer>.png`` grid per map layer and ``activations.html`` for
    input ``index``; return the paths written."""
    out = Path(out_dir)
    label = None if acts.labels is None else int(acts.labels[index])
    probabilities = acts.probabilities[index]
    shown = display_of(acts.meta, acts.inputs[index])
    written = [grids.save_png(grids.input_figure(shown, probabilities, label=label,
                                                 class_names=class_names, title=title),
                              out / "input.png")]
    map_layers = {name: m[index] for name, m in acts.maps.items() if m.ndim == 4}
    for name, maps in map_layers.items():
        fig = grids.map_grid(maps, title=f"{name}: {maps.shape[-1]} maps of "
                             f"{maps.shape[0]}×{maps.shape[1]}", scale=scale)
        written.append(grids.save_png(fig, out / f"{_file_stem(name)}.png"))
    sections = [("Input and prediction", html.input_figure(shown, probabilities,
                                                           label=label, class_names=class_names))]
    if map_layers:
        sections.append(("Activation maps", html.layer_maps_figure(map_layers)))
    page = html.page(title or "cnnviz activations", sections,
                     intro=f"model {acts.meta.get('model', '?')}; layers: {', '.join(map_layers)}")
    written.append(html.save_page(page, out / "activations.html"))
    return written


ORDERS = ("index", "activation")


def _with_examples(images: np.ndarray, examples: np.ndarray) -> np.ndarray:
    """Each image followed, left to right, by its k examples, with a blank (NaN) column
    between the synthesized image and the real ones: (N, H, W·(k+1) + gap, C)."""
    n, height, width, channels = images.shape
    gap = max(1, width // 4)
    blank = np.full((n, height, gap, channels), np.nan, dtype=np.float64)
    real = np.concatenate(list(np.moveaxis(examples, 1, 0)), axis=2)
    return np.concatenate([images.astype(np.float64), blank, real], axis=2)


def _gallery_parts(result: FilterResult, order: str) -> dict:
    """Everything both galleries show: tiles, labels, flags, hover values and template."""
    if order not in ORDERS:
        raise CnnvizError(f"unknown order '{order}': use {' or '.join(ORDERS)}")
    n = len(result.filters)
    if n == 0:
        raise CnnvizError("no finished filters to draw")
    idx = np.arange(n) if order == "index" else np.argsort(-result.activation, kind="stable")
    flagged = [bool(result.dead[i]) or int(result.filters[i]) in result.notes for i in idx]
    labels = [f"{result.filters[i]}: {result.activation[i]:.2f}" + (" dead" if result.dead[i]
                                                                    else "") for i in idx]
    template = "filter %{customdata[0]}<br>activation %{customdata[1]:.4g}"
    columns = [result.filters[idx], result.activation[idx]]
    if result.best_real is not None:
        template += ("<br>best real image %{customdata[2]:.4g}"
                     "<br>ratio to best real %{customdata[3]:.2f}")
        columns += [result.best_real[idx], result.ratio[idx]]
    shown, per_row = display_of(result.params, result.images[idx]), None
    if result.example_images is not None and result.example_values is not None:
        k = result.example_images.shape[1]
        shown = _with_examples(shown, display_of(result.params, result.example_images[idx]))
        per_row = max(1, round(float(np.sqrt(n / (1 + k)))))
        labels = [f"{label}  | top {k} real: {result.example_values[i, 0]:.2f}…"
                  f"{result.example_values[i, -1]:.2f}" for label, i in zip(labels, idx,
                                                                             strict=True)]
        template += (f"<br>top {k} real images: %{{customdata[{len(columns)}]:.3g}} … "
                     f"%{{customdata[{len(columns) + 1}]:.3g}}")
        columns += [result.example_values[idx, 0], result.example_values[idx, -1]]
    dead = int(result.dead.sum())
    heading = (f"{result.layer}: {n} filters, {result.params.get('steps', '?')} steps"
               f"{f', {dead} dead' if dead else ''}")
    return dict(idx=idx, shown=shown, labels=labels, flagged=flagged, per_row=per_row,
                values=np.stack(columns, axis=1), template=template, heading=heading,
                value_range=(0.0, 1.0))


def filter_gallery_figure(result: FilterResult, order: str = "index"):
    """The interactive (plotly) gallery of a filter result."""
    p = _gallery_parts(result, order)
    return html.image_gallery_figure(p["shown"], p["labels"], p["values"], p["template"],
                                     value_range=p["value_range"], flagged=p["flagged"],
                                     title=p["heading"], columns=p["per_row"])


def write_filter_views(result: FilterResult, out_dir: str | Path, *, order: str = "index",
                       title: str = "") -> list[Path]:
    """Write ``filters.png`` and ``filters.html`` galleries of a filter result (tiles ordered by
    filter index or by activation, dead filters flagged in red; with dataset examples, each
    synthesized image is followed by the real images that excite its filter most)."""
    out = Path(out_dir)
    p = _gallery_parts(result, order)
    heading = title or p["heading"]
    fig = grids.image_gallery(p["shown"], p["labels"], value_range=p["value_range"],
                              title=heading, flagged=p["flagged"], columns=p["per_row"])
    written = [grids.save_png(fig, out / "filters.png")]
    sections = [("Optimal input patterns", filter_gallery_figure(result, order))]
    idx = p["idx"]
    curves = html.curves_figure(result.curves[idx], [f"filter {result.filters[i]}" for i in idx])
    sections.append(("Activation during the ascent", curves))
    intro = (f"model {result.params.get('model', '?')}; objective "
             f"{result.params.get('objective', '?')}; method {result.params.get('update')}, "
             f"{result.params.get('param')} parameterization; seed {result.params.get('seed')}")
    written.append(html.save_page(html.page(heading, sections, intro=intro),
                                  out / "filters.html"))
    return written


def write_kernel_views(kernels: np.ndarray, layer: str, out_dir: str | Path) -> list[Path]:
    """Write ``kernels.png`` and ``kernels.html``: each filter's weights (kh×kw×filters) on a
    diverging colour scale centred on zero."""
    out = Path(out_dir)
    title = f"{layer}: {kernels.shape[-1]} kernels of {kernels.shape[0]}×{kernels.shape[1]}"
    fig = grids.map_grid(kernels, title=title, cmap="RdBu_r", symmetric=True, label="weight")
    written = [grids.save_png(fig, out / "kernels.png")]
    figure = html.layer_maps_figure({layer: kernels}, colorscale="RdBu", symmetric=True,
                                    unit="filter", value="weight")
    written.append(html.save_page(html.page(f"{layer} kernels", [("Kernel weights", figure)]),
                                  out / "kernels.html"))
    return written


def write_pattern_views(patterns: ClassPatterns, out_dir: str | Path) -> list[Path]:
    """Write one ``patterns_<layer>.png`` heatmap per layer and ``patterns.html``."""
    out = Path(out_dir)
    written = []
    for name in patterns.layers:
        unit = "map" if patterns.meta.get("kinds", {}).get(name) == "maps" else "unit"
        fig = grids.patterns_heatmap(patterns.means[name], patterns.class_names,
                                     title=f"{name}: mean activation per class", unit=unit)
        written.append(grids.save_png(fig, out / f"patterns_{_file_stem(name)}.png"))
    figure = html.patterns_figure({n: (patterns.means[n], patterns.stds[n])
                                   for n in patterns.layers}, patterns.counts,
                                  patterns.class_names)
    intro = (f"model {patterns.meta.get('model', '?')}; {patterns.meta.get('images', '?')} "
             f"images of {patterns.meta.get('dataset', '?')}; maps are averaged over positions")
    written.append(html.save_page(html.page("Class activation patterns",
                                            [("Mean activation per class", figure)],
                                            intro=intro), out / "patterns.html"))
    return written


def write_attribution_views(image: np.ndarray, heatmaps: dict[str, np.ndarray], method: str,
                            out_dir: str | Path, *, value_range: tuple[float, float],
                            title: str) -> list[Path]:
    """Write ``explain_<method>.png`` (overlay) and ``explain.html`` (all methods)."""
    out = Path(out_dir)
    fig = grids.attribution_overlay(image, heatmaps[method], title=f"{method}\n{title}",
                                    value_range=value_range)
    written = [grids.save_png(fig, out / f"explain_{method}.png")]
    figure = html.attribution_figure(image, heatmaps, value_range=value_range, title=title)
    written.append(html.save_page(html.page("Attribution maps", [("Methods side by side",
                                                                   figure)]),
                                  out / "explain.html"))
    return written
