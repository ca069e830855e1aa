"""Random jitter, scale and rotation (one affine resampling per image) and blur, as batched
tensor ops; their random parameters are drawn before the loop, one stream per image."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnviz.core.backend import keras
from cnnviz.core.errors import CnnvizError, check_finite
from cnnviz.core.tables import FILL_MODES

IDENTITY = np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=np.float32)


def affine_params(shape: tuple[int, int], shift: tuple[float, float] = (0.0, 0.0),
                  scale: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """The 8 numbers of ``keras.ops.image.affine_transform`` that shift by (dy, dx) pixels, zoom
    by ``scale`` and rotate by ``angle`` degrees (counter-clockwise on screen) about the centre.
    They map each output pixel (x, y) to the input point it samples."""
    height, width = shape
    cy, cx = (height - 1) / 2, (width - 1) / 2
    theta = math.radians(angle)
    cos, sin = math.cos(theta) / scale, math.sin(theta) / scale
    # input = A (output - centre - shift) + centre, with A the inverse of scale·rotation; the y
    # axis points down, so a counter-clockwise turn on screen is a clockwise turn in (x, y).
    a0, a1, b0, b1 = cos, -sin, sin, cos
    ox, oy = cx + shift[1], cy + shift[0]
    a2 = cx - (a0 * ox + a1 * oy)
    b2 = cy - (b0 * ox + b1 * oy)
    return np.array([a0, a1, a2, b0, b1, b2, 0, 0], dtype=np.float32)


@dataclass(frozen=True)
class Transforms:
    """Random per-step transforms: shift up to ``jitter`` pixels, zoom in ``scale`` (min, max),
    rotate up to ±``rotate`` degrees; pixels from outside are filled by ``pad``."""

    jitter: int = 0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0
    pad: str = "reflect"

    def __post_init__(self) -> None:
        check_finite(("rotate", self.rotate), *(("scale", z) for z in self.scale))
        FILL_MODES.check(self.pad)
        if self.jitter < 0 or self.rotate < 0 or min(self.scale) <= 0:
            raise CnnvizError("jitter and rotate must be ≥ 0 and scales > 0")

    @property
    def active(self) -> bool:
        return bool(self.jitter or self.rotate or self.scale != (1.0, 1.0))

    def sample(self, rng: np.random.Generator, steps: int, shape: tuple[int, int]) -> np.ndarray:
        """(steps, 8) affine parameters for one image."""
        out = np.empty((steps, 8), np.float32)
        for t in range(steps):
            shift = rng.integers(-self.jitter, self.jitter + 1, size=2) if self.jitter else (0, 0)
            zoom = rng.uniform(*self.scale) if self.scale != (1.0, 1.0) else 1.0
            angle = rng.uniform(-self.rotate, self.rotate) if self.rotate else 0.0
            out[t] = affine_params(shape, (float(shift[0]), float(shift[1])), zoom, angle)
        return out


def apply_affine(images: Any, params: Any, fill_mode: str = "reflect") -> Any:
    """Resample each image (K, H, W, C) with its own 8 affine parameters (K, 8), bilinearly."""
    return keras().ops.image.affine_transform(images, params, interpolation="bilinear",
                                              fill_mode=fill_mode, fill_value=0.0)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The normalized 1-D Gaussian of radius ⌈2σ⌉ (at least 1)."""
    radius = max(1, math.ceil(2 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def blur(images: Any, sigma: float) -> Any:
    """Gaussian blur of each channel of (K, H, W, C) images, edges reflected (numpy's
    ``reflect``: the edge pixel is not repeated)."""
    if sigma <= 0:
        return images
    ops = keras().ops
    k1 = gaussian_kernel(sigma)
    radius = len(k1) // 2
    channels = images.shape[-1]
    kernel = np.tile(np.outer(k1, k1)[:, :, None, None], (1, 1, channels, 1))
    padded = ops.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]],
                     mode="reflect")
    return ops.depthwise_conv(padded, kernel, strides=1, padding="valid")
