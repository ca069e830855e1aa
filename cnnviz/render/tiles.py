"""Tiling a stack of maps into one 2-D mosaic, and small images as PNG bytes, shared by the PNG
and HTML renderers."""

from __future__ import annotations

import math

import numpy as np

from cnnviz.core.errors import CnnvizError


def grid_shape(n: int, columns: int | None = None) -> tuple[int, int]:
    """(rows, columns) of a near-square grid for ``n`` tiles (or a fixed column count)."""
    if n <= 0:
        raise CnnvizError("nothing to draw: zero maps")
    cols = min(columns or math.ceil(math.sqrt(n)), n)
    return math.ceil(n / cols), cols


def mosaic(maps: np.ndarray, columns: int | None = None, gap: int = 1
           ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Tile maps (H×W×M) row by row into one 2-D array with NaN gaps between tiles.

    Returns the mosaic, each pixel's ``[map, row, col]`` (−1 in gaps) and each tile's top-left
    corner (row, col) in the mosaic."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise CnnvizError(f"expected maps of shape (height, width, maps), got {maps.shape}")
    height, width, n = maps.shape
    rows, cols = grid_shape(n, columns)
    yy, xx = np.mgrid[0:height, 0:width]
    index = np.stack([np.broadcast_to(np.arange(n)[:, None, None], (n, height, width)),
                      np.broadcast_to(yy, (n, height, width)),
                      np.broadcast_to(xx, (n, height, width))], axis=-1)
    z = _tiled(np.moveaxis(maps, -1, 0)[..., None], rows, cols, gap, np.nan)[..., 0]
    where = _tiled(index, rows, cols, gap, -1)
    corners = [((i // cols) * (height + gap), (i % cols) * (width + gap)) for i in range(n)]
    return z, where, corners


def _tiled(stack: np.ndarray, rows: int, cols: int, gap: int, fill: float) -> np.ndarray:
    """(N, H, W, C) → (rows·(H+gap)−gap, cols·(W+gap)−gap, C), row by row, ``fill`` between
    and after the tiles."""
    n, height, width, channels = stack.shape
    padded = np.full((rows * cols, height + gap, width + gap, channels), fill, stack.dtype)
    padded[:n, :height, :width] = stack
    grid = padded.reshape(rows, cols, height + gap, width + gap, channels).swapaxes(1, 2)
    whole = grid.reshape(rows * (height + gap), cols * (width + gap), channels)
    return whole[:whole.shape[0] - gap, :whole.shape[1] - gap]


def image_mosaic(images: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0),
                 columns: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], int]:
    """Tile images (N×H×W×C) scaled from ``value_range`` to 0..1 into one (H', W', C) mosaic
    with NaN gaps (a gap of 30 % of the height, at least 2 px). Returns the mosaic, each
    pixel's ``[image, row, col]`` (−1 in gaps), each tile's top-left corner and the gap."""
    unit = to_unit(images, value_range)
    gap = max(2, round(0.3 * images.shape[1]))
    planes = [mosaic(np.moveaxis(unit[..., c], 0, -1), columns, gap=gap)
              for c in range(images.shape[-1])]
    z = np.stack([plane[0] for plane in planes], axis=-1)
    return z, planes[0][1], planes[0][2], gap


def to_unit(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """``images`` clipped to ``value_range`` and scaled from it to 0..1 (NaN stays NaN)."""
    lo, hi = value_range
    images = np.asarray(images, dtype=np.float64)
    return (np.clip(images, lo, hi) - lo) / ((hi - lo) or 1.0)


def normalize_each(maps: np.ndarray) -> np.ndarray:
    """Scale each map (last axis) to 0..1 by its own min and max; constant maps become 0."""
    maps = np.asarray(maps, dtype=np.float64)
    lo = maps.min(axis=(0, 1), keepdims=True)
    span = maps.max(axis=(0, 1), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1.0), 0.0)


def png(pixels: np.ndarray, side: int = 96) -> bytes:
    """0..1 display pixels (H, W, 1 or 3) as PNG bytes, enlarged (nearest) to about ``side``
    pixels high."""
    import io

    from PIL import Image

    image = np.clip(np.nan_to_num(pixels), 0, 1)
    image = (image[..., 0] if image.shape[-1] == 1 else image) * 255
    picture = Image.fromarray(image.round().astype(np.uint8))
    scale = max(1, round(side / pixels.shape[0]))
    picture = picture.resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def data_url(pixels: np.ndarray, side: int = 96) -> str:
    """Display pixels as a PNG data URL, enlarged to about ``side`` pixels high."""
    import base64

    return "data:image/png;base64," + base64.b64encode(png(pixels, side)).decode()


def attribution_rgb(image: np.ndarray, heat: np.ndarray, signed: bool,
                    top: float | None = None) -> np.ndarray:
    """An attribution map laid over its input as (H, W, 3) pixels in 0..1: the input in grey,
    the map's colour (diverging red/blue for a signed map, inferno for a non-negative one)
    over it with an opacity that grows with the value's size up to ``top`` (default: the
    map's largest magnitude), so small values leave the input visible."""
    from matplotlib import colormaps

    image = np.clip(np.asarray(image, np.float64), 0.0, 1.0)
    grey = image.mean(axis=-1) if image.ndim == 3 else image
    heat = np.asarray(heat, np.float64)
    top = float(np.abs(heat).max()) if top is None else float(top)
    top = top or 1.0
    if signed:
        colour = colormaps["RdBu_r"](np.clip(heat / top / 2 + 0.5, 0.0, 1.0))[..., :3]
    else:
        colour = colormaps["inferno"](np.clip(heat / top, 0.0, 1.0))[..., :3]
    alpha = 0.8 * np.clip(np.abs(heat) / top, 0.0, 1.0)[..., None]
    return (1 - alpha) * grey[..., None] + alpha * colour
