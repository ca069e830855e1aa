"""Pen strokes drawn in the browser → a digit as MNIST stores one: the ink's bounding box scaled
to fit 20×20 pixels (aspect kept, anti-aliased), placed in 28×28 with its centre of mass at the
centre."""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from cnnviz.core.errors import CnnvizError

CANVAS = 28.0  # the drawing's coordinates run 0..28 on both axes, y downwards
SIDE, BOX = 28, 20  # MNIST: 28×28 images, the digit normalized into a 20×20 box
PEN = 0.14  # pen width as a fraction of the drawing's larger side (MNIST strokes: 2–3 px of 20)
MAX_STROKES, MAX_POINTS = 300, 50_000
_SCALE = 10  # strokes are rendered at 10× before the anti-aliased reduction
_NUMBER = r"(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)"
_POINT = re.compile(r"[MLml]\s*" + _NUMBER + r"[\s,]+" + _NUMBER)

Stroke = np.ndarray  # (points, 2): x, y in canvas units


def parse_path(path: str) -> Stroke:
    """The points of an SVG path of move-to and line-to commands (what plotly's drawing tool
    writes: ``M3.1,4L3.5,4.2…``), clipped to the canvas."""
    if not isinstance(path, str):
        raise CnnvizError("a stroke must be an SVG path string")
    found = _POINT.findall(path[: 40 * MAX_POINTS])
    points = np.array(found, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(points)):
        raise CnnvizError("a stroke has a coordinate that is not a finite number")
    return np.clip(points, 0.0, CANVAS)


def strokes_from_shapes(shapes: Iterable[object]) -> list[Stroke]:
    """The strokes of plotly's drawn shapes (dicts with a ``path``); other shapes are skipped."""
    strokes = []
    for shape in list(shapes)[:MAX_STROKES + 1]:
        if isinstance(shape, dict) and isinstance(shape.get("path"), str):
            strokes.append(parse_path(shape["path"]))
    if len(strokes) > MAX_STROKES:
        raise CnnvizError(f"more than {MAX_STROKES} strokes: clear the canvas and draw again")
    if sum(len(s) for s in strokes) > MAX_POINTS:
        raise CnnvizError(f"more than {MAX_POINTS:,} points drawn: clear the canvas")
    return [s for s in strokes if len(s)]


def rasterize(strokes: list[Stroke]) -> np.ndarray:
    """A 28×28 grey digit (0..1, ink bright on black) from pen strokes, normalized the way MNIST
    digits were; all zeros when nothing is drawn."""
    from PIL import Image, ImageDraw

    points = np.concatenate(strokes) if strokes else np.zeros((0, 2))
    if not len(points):
        return np.zeros((SIDE, SIDE))
    lo, hi = points.min(axis=0), points.max(axis=0)
    extent = float(max(hi - lo))
    pen = max(PEN * extent, 0.6)  # a dot still gets ink
    # Render at a resolution where the ink's larger side spans 10× the 20-pixel box.
    scale = _SCALE * BOX / max(extent + pen, 1e-6)
    margin = pen * scale
    size = np.ceil((hi - lo) * scale + 2 * margin).astype(int) + 1
    canvas = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(pen * scale))
    for stroke in strokes:
        xy = [(float(x), float(y)) for x, y in (stroke - lo) * scale + margin]
        if len(xy) > 1:
            draw.line(xy, fill=255, width=width, joint="curve")
        for x, y in (xy[0], xy[-1]):  # round pen ends
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    ink = np.asarray(canvas, dtype=np.float64) / 255.0
    rows, cols = np.nonzero(ink > 0)
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    factor = BOX / max(ink.shape)
    target = (max(1, round(ink.shape[1] * factor)), max(1, round(ink.shape[0] * factor)))
    small = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(
        target, Image.Resampling.BOX), dtype=np.float64) / 255.0
    return _centred(small)


def _centred(digit: np.ndarray) -> np.ndarray:
    """``digit`` placed in 28×28 with its centre of mass at the centre (whole pixels, as MNIST),
    never cut off."""
    out = np.zeros((SIDE, SIDE))
    height, width = digit.shape
    total = digit.sum()
    yy, xx = np.mgrid[0:height, 0:width]
    cy = (yy * digit).sum() / total if total else (height - 1) / 2
    cx = (xx * digit).sum() / total if total else (width - 1) / 2
    top = int(np.clip(round(SIDE / 2 - 0.5 - cy), 0, SIDE - height))
    left = int(np.clip(round(SIDE / 2 - 0.5 - cx), 0, SIDE - width))
    out[top:top + height, left:left + width] = digit
    return out
