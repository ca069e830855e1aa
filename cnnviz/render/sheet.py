"""Image galleries drawn pixel for pixel with Pillow: each image at a whole-number zoom (no
resampling blur), framed, its label above it, a title on top. Quick to write (no matplotlib to
load or lay out) and shown as a picture in Jupyter."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.text import printable
from cnnviz.render.tiles import grid_shape, to_unit

TILE = 112  # a tile's height in pixels, reached by a whole-number zoom where the image is smaller
MAX_WIDTH = 2400  # wider sheets shrink their tiles
MARGIN, GAP = 12, 10
LABEL_PX, TITLE_PX = 12, 16
INK, FLAG, FRAME = (51, 51, 51), (204, 0, 0), (153, 153, 153)


def image_gallery(images: np.ndarray, labels: list[str], *, value_range: tuple[float, float],
                  title: str = "", flagged: list[bool] | None = None, columns: int | None = None,
                  cmap: str = "gray") -> Any:
    """A ``PIL.Image`` of images (N×H×W×C, C = 1 or 3) shown in ``value_range`` (NaN white),
    row by row, each framed with its label above it (red where flagged) under ``title``.
    Grey images take ``cmap``."""
    from PIL import Image, ImageDraw

    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise CnnvizError(f"expected images of shape (n, height, width, 1 or 3), got "
                          f"{images.shape}")
    n, height, width = images.shape[:3]
    if len(labels) != n:
        raise CnnvizError(f"{len(labels)} labels for {n} images")
    flagged = flagged or [False] * n
    rows, cols = grid_shape(n, columns)
    tiles = _tiles(images, value_range, cmap, cols)
    tile_h, tile_w = tiles.shape[1:3]
    label_font, title_font = _font(LABEL_PX), _font(TITLE_PX)
    lines = [printable(line) for line in str(title).split("\n")] if title else []
    head = MARGIN + len(lines) * round(TITLE_PX * 1.35) + (GAP if lines else 0)
    cell_w, cell_h = tile_w + GAP, LABEL_PX + 6 + tile_h + GAP
    sheet_w = max(2 * MARGIN + cols * cell_w - GAP,
                  2 * MARGIN + max((round(title_font.getlength(t)) for t in lines), default=0))
    canvas = np.full((head + rows * cell_h - GAP + MARGIN, sheet_w, 3), 255, np.uint8)
    corners = [(head + (i // cols) * cell_h + LABEL_PX + 6, MARGIN + (i % cols) * cell_w)
               for i in range(n)]
    for tile, (top, left) in zip(tiles, corners, strict=True):
        canvas[top - 1:top + tile_h + 1, left - 1:left + tile_w + 1] = FRAME  # hairline frame
        canvas[top:top + tile_h, left:left + tile_w] = tile
    sheet = Image.fromarray(canvas)
    draw = ImageDraw.Draw(sheet)
    for line_no, line in enumerate(lines):
        draw.text((sheet_w / 2, MARGIN + line_no * round(TITLE_PX * 1.35)), line, fill=INK,
                  font=title_font, anchor="mt")
    for text, flag, (top, left) in zip(labels, flagged, corners, strict=True):
        draw.text((left - 1, top - 3), _fitted(printable(text), label_font, tile_w + GAP - 2),
                  fill=FLAG if flag else INK, font=label_font, anchor="ld")
    return sheet


def _tiles(images: np.ndarray, value_range: tuple[float, float], cmap: str,
           cols: int) -> np.ndarray:
    """The images as uint8 RGB tiles (N×h×w×3): scaled from ``value_range``, NaN white,
    zoomed by a whole number to about ``TILE`` pixels high, shrunk where the sheet would be
    wider than ``MAX_WIDTH``."""
    from PIL import Image

    unit = to_unit(images, value_range)
    if unit.shape[-1] == 1 and cmap != "gray":
        import matplotlib

        rgb = matplotlib.colormaps[cmap](np.nan_to_num(unit[..., 0]))[..., :3]
        unit = np.where(np.isnan(unit), np.nan, rgb)
    pixels = np.round(255 * np.nan_to_num(unit, nan=1.0)).astype(np.uint8)
    pixels = np.broadcast_to(pixels, (*pixels.shape[:3], 3))
    height, width = pixels.shape[1:3]
    zoom = max(1, round(TILE / height))
    room = (MAX_WIDTH - 2 * MARGIN + GAP) // cols - GAP  # the widest tile that fits
    if width * zoom <= room:
        return pixels.repeat(zoom, axis=1).repeat(zoom, axis=2)
    size = (max(1, room), max(1, round(height * room / width)))
    return np.stack([np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BOX))
                     for p in pixels])


def _fitted(text: str, font: Any, room: float) -> str:
    """``text``, cut with an ellipsis where it is wider than ``room`` pixels."""
    if font.getlength(text) <= room:
        return text
    while text and font.getlength(text + "…") > room:
        text = text[:-1]
    return text + "…"


@functools.lru_cache(maxsize=4)
def _font(size: int) -> Any:
    """DejaVu Sans at ``size`` pixels (matplotlib's own font, read without importing it),
    else Pillow's built-in font."""
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder, "mpl-data", "fonts", "ttf", "DejaVuSans.ttf")
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)
