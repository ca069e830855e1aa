"""Matplotlib PNG figures: grids of activation maps and the input with its predicted classes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from cnnviz.errors import CnnvizError
from cnnviz.fileio import write_bytes
from cnnviz.render.tiles import grid_shape, mosaic, normalize_each

SCALES = ("shared", "per-map")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def map_grid(maps: np.ndarray, *, title: str = "", scale: str = "shared", cmap: str = "viridis",
             columns: int | None = None):
    """A figure with one tile per map of ``maps`` (H×W×M), each labelled with its map index, and a
    colour bar: the layer's value range (``shared``) or each map's own min..max (``per-map``)."""
    if scale not in SCALES:
        raise CnnvizError(f"unknown scale '{scale}': use {' or '.join(SCALES)}")
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise CnnvizError(f"expected maps of shape (height, width, maps), got {maps.shape}")
    plt = _pyplot()
    height, width, n = maps.shape
    rows, cols = grid_shape(n, columns)
    shown = maps if scale == "shared" else normalize_each(maps)
    gap = max(1, round(0.25 * height))
    z, _, corners = mosaic(shown, cols, gap=gap)
    lo, hi = (float(shown.min()), float(shown.max())) if scale == "shared" else (0.0, 1.0)
    tile = 1.1
    fig, ax = plt.subplots(figsize=(cols * tile + 1.6, rows * tile + 0.9), layout="constrained")
    colours = plt.get_cmap(cmap).with_extremes(bad="white")
    image = ax.imshow(z, cmap=colours, vmin=lo, vmax=hi if hi > lo else lo + 1.0,
                      interpolation="nearest")
    for index, (top, left) in enumerate(corners):
        ax.text(left - 0.5, top - 0.5, str(index), fontsize=6, va="bottom", ha="left",
                color="#333")
    ax.set_ylim(z.shape[0] - 0.5, -0.5 - 0.45 * gap - height * 0.12)
    ax.set_axis_off()
    label = "activation" if scale == "shared" else "fraction of each map's range"
    fig.colorbar(image, ax=ax, shrink=0.7, label=label)
    if title:
        ax.set_title(title)
    return fig


def input_figure(image: np.ndarray, probabilities: np.ndarray, *, label: int | None = None,
                 class_names: tuple[str, ...] | None = None, title: str = ""):
    """The model input beside a bar chart of the predicted class probabilities."""
    plt = _pyplot()
    image = np.asarray(image)
    fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(7.5, 3.2), layout="constrained",
                                         gridspec_kw={"width_ratios": [1, 1.4]})
    shown = image[..., 0] if image.shape[-1] == 1 else image
    if shown.ndim == 3:
        lo, hi = float(shown.min()), float(shown.max())
        shown = (shown - lo) / (hi - lo) if hi > lo else np.zeros_like(shown)
    ax_img.imshow(shown, cmap="gray", interpolation="nearest")
    ax_img.set_axis_off()
    ax_img.set_title("input" + (f" (label {label})" if label is not None else ""))
    names = class_names or tuple(str(i) for i in range(len(probabilities)))
    predicted = int(np.argmax(probabilities))
    colours = ["tab:orange" if i == predicted else "tab:blue" for i in range(len(probabilities))]
    ax_bar.bar(range(len(probabilities)), probabilities, color=colours)
    ax_bar.set_xticks(range(len(probabilities)), names, rotation=0 if len(names) <= 12 else 90)
    ax_bar.set_ylim(0, 1)
    ax_bar.set_ylabel("probability")
    ax_bar.set_title(f"predicted {names[predicted]} ({probabilities[predicted]:.1%})")
    if title:
        fig.suptitle(title)
    return fig


def save_png(fig, path: str | Path, dpi: int = 110) -> Path:
    """Render ``fig`` to a PNG at ``path`` atomically and close it."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return write_bytes(path, buffer.getvalue())
