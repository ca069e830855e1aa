"""Matplotlib figures (``matplotlib.figure.Figure`` objects, never pyplot's global state):
grids of maps, class-pattern heatmaps, attribution overlays; PNG writing (image galleries are
drawn with Pillow: :mod:`cnnviz.render.sheet`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.fileio import write_bytes
from cnnviz.core.tables import SCALES
from cnnviz.core.text import plain_label
from cnnviz.core.timing import phase
from cnnviz.render.outputs import output_bars
from cnnviz.render.tiles import attribution_rgb, grid_shape, mosaic, normalize_each

PNG_DPI = 110


def notebook_figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    """A figure of ``width`` × ``height`` inches (constrained layout unless the caller places
    its axes), outside pyplot: drawing it
    never touches the global backend (Jupyter's inline plots keep working), and Jupyter shows
    it as a PNG even where pyplot was never imported. Loading matplotlib counts as the
    ``import`` phase."""
    with phase("import"):
        import matplotlib.backends.backend_agg  # noqa: F401  (what saving a PNG loads)
        from matplotlib.figure import Figure

    class NotebookFigure(Figure):
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=PNG_DPI)
            return buffer.getvalue()

    return NotebookFigure(figsize=(width, height), layout=layout)


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def map_grid(maps: np.ndarray, *, title: str = "", scale: str = "shared", cmap: str = "viridis",
             columns: int | None = None, symmetric: bool = False, label: str = "activation"):
    """A figure with one tile per map of ``maps`` (H×W×M), each labelled with its map index, and a
    colour bar: the layer's value range (``shared``, centred on 0 with ``symmetric``) or each
    map's own min..max (``per-map``)."""
    SCALES.check(scale)
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise CnnvizError(f"expected maps of shape (height, width, maps), got {maps.shape}")
    height, width, n = maps.shape
    rows, cols = grid_shape(n, columns)
    shown = maps if scale == "shared" else normalize_each(maps)
    gap = max(1, round(0.25 * height))
    z, _, corners = mosaic(shown, cols, gap=gap)
    lo, hi = (float(shown.min()), float(shown.max())) if scale == "shared" else (0.0, 1.0)
    if symmetric and scale == "shared":
        lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
    tile = 1.1
    width_in, height_in = cols * tile + 1.6, rows * tile + 0.9
    fig = notebook_figure(width_in, height_in, layout=None)  # placed by hand: one drawing pass
    ax = fig.add_axes((0.05 / width_in, 0.05 / height_in, (width_in - 1.6) / width_in,
                       (height_in - 0.55) / height_in))
    bar_height = 0.7 * (height_in - 0.55)
    bar = fig.add_axes(((width_in - 1.3) / width_in,
                        (0.05 + 0.15 * (height_in - 0.55)) / height_in,
                        0.17 / width_in, bar_height / height_in))
    colours = _cmap(cmap).with_extremes(bad="white")
    image = ax.imshow(z, cmap=colours, vmin=lo, vmax=hi if hi > lo else lo + 1.0,
                      interpolation="nearest")
    for index, (top, left) in enumerate(corners):  # inside the axes: no part of the layout
        ax.text(left - 0.5, top - 0.5, str(index), fontsize=6, va="bottom", ha="left",
                color="#333").set_in_layout(False)
    ax.set_ylim(z.shape[0] - 0.5, -0.5 - 0.45 * gap - height * 0.12)
    ax.set_axis_off()
    fig.colorbar(image, cax=bar,
                 label=label if scale == "shared" else "fraction of each map's range")
    if title:
        ax.set_title(plain_label(title))
    return fig


def input_figure(image: np.ndarray, probabilities: np.ndarray, *, label: int | str | None = None,
                 class_names: tuple[str, ...] | None = None, title: str = ""):
    """The input (display pixels in 0..1) beside a bar chart of the predicted class
    probabilities — or, for an output that is no class vector, of its strongest channels."""
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    bars = output_bars(probabilities, class_names)
    fig = notebook_figure(7.5, 3.2)
    ax_img, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    shown = image[..., 0] if image.shape[-1] == 1 else image
    ax_img.imshow(shown, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax_img.set_axis_off()
    ax_img.set_title(plain_label("input" + (f" (label {label})" if label is not None else "")))
    count = len(bars.values)
    colours = ["tab:orange" if i == bars.highlight else "tab:blue" for i in range(count)]
    ax_bar.bar(range(count), bars.values, color=colours)
    ax_bar.set_xticks(range(count), [plain_label(n) for n in bars.names],
                      rotation=0 if count <= 12 and bars.probabilities else 90)
    if bars.probabilities:
        ax_bar.set_ylim(0, 1)
    ax_bar.set_ylabel(bars.axis)
    ax_bar.set_title(plain_label(bars.title))
    if title:
        fig.suptitle(plain_label(title))
    return fig


def png_bytes(fig: Any, dpi: int = PNG_DPI, level: int = 3) -> bytes:
    """``fig`` (a matplotlib figure, or a Pillow image such as a gallery sheet) as PNG bytes,
    compressed at zlib ``level``."""
    buffer = io.BytesIO()
    if hasattr(fig, "savefig"):
        fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": level})
    else:
        fig.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def save_png(fig: Any, path: str | Path, dpi: int = PNG_DPI) -> Path:
    """Render ``fig`` (a matplotlib figure, or a Pillow image such as a gallery sheet) to a
    PNG at ``path`` atomically."""
    # zlib level 3: as fast as level 1 here, a sixth faster than the default 6, ~25 % larger
    return write_bytes(path, png_bytes(fig, dpi))


def curves_png(curves: np.ndarray, names: list[str], steps: int | None = None,
               shown: int = 8):
    """The objective along the ascent of the first ``shown`` images, one line each."""
    points = curves.shape[1]
    total = steps if steps and steps > points else points
    x = (np.arange(1, points + 1) * total + points - 1) // max(points, 1)
    fig = notebook_figure(7.0, 3.0)
    ax = fig.subplots()
    for curve, name in zip(curves[:shown], names[:shown], strict=True):
        ax.plot(x, curve, label=plain_label(name))
    ax.set_xlabel("step")
    ax.set_ylabel("activation")
    ax.grid(alpha=0.3)
    if len(names):
        ax.legend(fontsize=7, ncols=2, title=f"first {min(shown, len(names))} of {len(names)}"
                  if len(names) > shown else None, title_fontsize=7)
    return fig


def patterns_heatmap(means: np.ndarray, class_names: tuple[str, ...], *, title: str = "",
                     unit: str = "map", diverging: bool = False):
    """A value per class (columns) of every map or unit (rows): mean activations, or with
    ``diverging`` a contrast centred on zero (red above the map's mean over classes)."""
    classes, units = means.shape
    fig = notebook_figure(2.2 + 0.45 * classes, 1.6 + min(units, 256) * 0.075)
    ax = fig.subplots()
    top = float(np.abs(means).max()) or 1.0
    scale = dict(cmap="RdBu_r", vmin=-top, vmax=top) if diverging else dict(cmap="magma")
    image = ax.imshow(means.T, aspect="auto", interpolation="nearest", **scale)
    ax.set_xticks(range(classes), [plain_label(c) for c in class_names],
                  rotation=0 if classes <= 12 else 90)
    step = max(1, units // 32)
    ax.set_yticks(range(0, units, step))
    ax.set_xlabel("class")
    ax.set_ylabel(unit)
    fig.colorbar(image, ax=ax, shrink=0.8, label="minus the mean over classes" if diverging
                 else "mean activation")
    if title:
        ax.set_title(plain_label(title), fontsize=10)
    return fig


def attribution_grid(images: np.ndarray, maps: dict[str, np.ndarray],
                     signed: dict[str, bool], rows: list[str], *, title: str = "",
                     flagged: tuple[str, ...] = ()):
    """One row per input: the input (display pixels, 0..1), then each method's map laid over
    it (opacity and colour from the map itself: red raises the score, blue lowers it; a
    non-negative map in inferno), each map scaled to its own largest magnitude. ``rows``
    labels the inputs; methods in ``flagged`` get a warning mark."""
    names = list(maps)
    cols = len(names) + 1
    fig = notebook_figure(1.7 * cols + 0.6, 1.75 * len(images) + 0.7)
    axes = np.asarray(fig.subplots(len(images), cols, squeeze=False))
    for r, image in enumerate(np.clip(np.asarray(images, np.float64), 0.0, 1.0)):
        shown = image[..., 0] if image.shape[-1] == 1 else image
        axes[r, 0].imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[r, 0].set_title(plain_label(rows[r]), fontsize=7)
        for c, name in enumerate(names, start=1):
            axes[r, c].imshow(attribution_rgb(image, maps[name][r], signed[name]),
                              interpolation="nearest")
            if r == 0:
                mark = " ⚠" if name in flagged else ""
                axes[r, c].set_title(f"{name}{mark}\n" + ("signed" if signed[name] else "≥ 0"),
                                     fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    if title:
        fig.suptitle(plain_label(title), fontsize=9)
    return fig


def attribution_overlay(image: np.ndarray, heatmap: np.ndarray, *, signed: bool = True,
                        title: str = ""):
    """The input (display pixels, 0..1, grey or colour), the attribution laid over it, and the
    attribution alone with its colour bar: signed maps on a diverging scale centred on zero
    (red raises the score), non-negative maps on a sequential one."""
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    shown = image[..., 0] if image.shape[-1] == 1 else image
    heatmap = np.asarray(heatmap, dtype=np.float64)
    top = float(np.abs(heatmap).max()) or 1.0
    scale = dict(cmap="RdBu_r", vmin=-top, vmax=top) if signed else \
        dict(cmap="inferno", vmin=0.0, vmax=top)
    fig = notebook_figure(10.2, 3.6)
    ax_in, ax_over, ax_map = fig.subplots(1, 3)
    ax_in.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    # over the input (in grey), a value's opacity grows with its size: small ones leave it seen
    ax_over.imshow(attribution_rgb(image, heatmap, signed, top), interpolation="nearest")
    drawn = ax_map.imshow(heatmap, interpolation="nearest", **scale)
    for ax, name in ((ax_in, "input"), (ax_over, "over the input"), (ax_map, "attribution")):
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    fig.colorbar(drawn, ax=ax_map, shrink=0.8,
                 label="signed: red raises the score" if signed else "≥ 0 by definition")
    if title:
        fig.suptitle(plain_label(title), fontsize=9)
    return fig
