"""Image parameterizations and start images.

A parameterization turns raw variables (K, ...) into K images inside the model's value range.
``pixel`` optimizes the pixels and clips them to the range after every step; ``fourier``
optimizes decorrelated cosine (DCT) coefficients scaled by 1/frequency^decay and maps them into
the range with a sigmoid, so the image is in range by construction. For colour images a
``colour`` basis (3×3, a square root of the pixels' colour covariance) mixes decorrelated
channels into the model's, so a step moves colours the way natural images vary.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnviz.core.backend import keras
from cnnviz.core.errors import CnnvizError
from cnnviz.core.tables import PARAMETERIZATIONS, STARTS

# A square root of ImageNet's RGB colour covariance (pixels in 0..1), as published with lucid
# (github.com/tensorflow/lucid, optvis/param/color.py); its columns are the decorrelated
# directions: brightness, then red-blue and green-magenta opponents.
IMAGENET_COLOUR = np.array([[0.26, 0.09, 0.02],
                            [0.27, 0.00, -0.05],
                            [0.27, -0.09, 0.03]])


def colour_basis(pixels: np.ndarray | None = None, bgr: bool = False) -> np.ndarray:
    """The normalized 3×3 colour basis in the model's channel order (rows reversed for a BGR
    model): the fixed ImageNet one, or the symmetric square root of the covariance of
    ``pixels`` (N, 3) in 0..1. Columns are scaled so the longest has length 1."""
    if pixels is None:
        root = IMAGENET_COLOUR
    else:
        pixels = np.asarray(pixels, np.float64).reshape(-1, 3)
        if len(pixels) < 2:
            raise CnnvizError("measuring a colour basis needs more than one pixel")
        values, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False))
        if values.min() <= 1e-12:
            raise CnnvizError("the data's colours do not span three dimensions (grey images "
                              "in a colour model?): use the fixed colour basis")
        root = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    root = root / np.linalg.norm(root, axis=0).max()
    return (root[::-1] if bgr else root).astype(np.float32)


@dataclass(frozen=True)
class PixelParam:
    """The pixels themselves, clipped to ``value_range`` after each step."""

    value_range: tuple[float, float]

    @property
    def step_scale(self) -> Any:
        """Size of the value range (per channel, if it differs): steps are fractions of it."""
        return self.value_range[1] - self.value_range[0]

    def init(self, starts: np.ndarray) -> np.ndarray:
        """Raw variables for start images (numpy, before the loop)."""
        return np.clip(starts, *self.value_range).astype(np.float32)

    def to_image(self, raw: Any) -> Any:
        return raw

    def project(self, raw: Any) -> Any:
        return keras().ops.clip(raw, *self.value_range)


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix D (n×n): coefficients = D @ signal, signal = D.T @ coeffs."""
    k = np.arange(n)[:, None]
    d = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


def _colour_mix(shape: tuple[int, int, int], colour: tuple[float, ...]) -> dict[str, np.ndarray]:
    """The colour basis (``mix``) and its inverse (``unmix``), or nothing without one."""
    if not colour:
        return {}
    if shape[2] != 3 or len(colour) != 9:
        raise CnnvizError("a colour basis needs 3-channel images and 9 numbers")
    mix = np.asarray(colour, np.float32).reshape(3, 3)
    return {"mix": mix, "unmix": np.linalg.inv(mix).astype(np.float32)}


@dataclass(frozen=True)
class _Spectral:
    """What the Fourier and MACO parameterizations share: a spectrum scaled by
    1/frequency^``decay``, the ``colour`` basis (9 numbers, row-major; none: channels
    independent), the sigmoid into the range, steps in the raw variables' own units."""

    value_range: tuple[float, float]
    shape: tuple[int, int, int]
    decay: float = 1.0
    colour: tuple[float, ...] = ()
    _bases: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @property
    def step_scale(self) -> float:
        return 1.0

    def project(self, raw: Any) -> Any:
        return raw

    def _start_logits(self, starts: np.ndarray) -> np.ndarray:
        """Start images as the sigmoid's input, in decorrelated channels where there is a
        basis."""
        lo, hi = self.value_range
        unit = np.clip((starts - lo) / (hi - lo), 1e-3, 1 - 1e-3)
        logits = np.log(unit / (1 - unit))
        unmix = self._bases.get("unmix")
        return logits if unmix is None else np.einsum("khwd,cd->khwc", logits, unmix)

    def _in_range(self, logits: Any) -> Any:
        """Decorrelated logits (K, H, W, C) mixed by the colour basis, into the range."""
        ops = keras().ops
        lo, hi = self.value_range
        if "mix" in self._bases:
            logits = ops.einsum("khwc,dc->khwd", logits, self._bases["mix"])
        return lo + (hi - lo) * ops.sigmoid(logits)


@dataclass(frozen=True)
class FourierParam(_Spectral):
    """DCT coefficients scaled by 1/frequency^``decay``, mixed by the ``colour`` basis, through
    a sigmoid into the range."""

    def __post_init__(self) -> None:
        height, width, _ = self.shape
        fy = np.arange(height)[:, None] / height
        fx = np.arange(width)[None, :] / width
        freq = np.maximum(np.sqrt(fy**2 + fx**2), 1.0 / max(height, width))
        self._bases.update(dy=dct_matrix(height).astype(np.float32),
                           dx=dct_matrix(width).astype(np.float32),
                           scale=(freq ** -self.decay / (freq ** -self.decay).max())
                           .astype(np.float32)[None, :, :, None])
        self._bases.update(_colour_mix(self.shape, self.colour))

    def init(self, starts: np.ndarray) -> np.ndarray:
        logits = self._start_logits(starts)
        coeffs = np.einsum("uh,khwc,vw->kuvc", self._bases["dy"], logits, self._bases["dx"],
                           optimize=True)  # two matrix products, not one loop over all four
        return (coeffs / self._bases["scale"]).astype(np.float32)

    def to_image(self, raw: Any) -> Any:
        spectrum = raw * self._bases["scale"]
        return self._in_range(keras().ops.einsum("uh,kuvc,vw->khwc", self._bases["dy"],
                                                 spectrum, self._bases["dx"]))


@dataclass(frozen=True)
class MacoParam(_Spectral):
    """MACO (Fel et al. 2023, "Unlocking feature visualization for deep networks with
    magnitude constrained optimization"): only the Fourier phase of each decorrelated channel is
    optimized; its magnitude is fixed to natural images' 1/frequency^``decay`` (no mean term).
    Each image is standardized, mixed by the ``colour`` basis and mapped into the range by a
    sigmoid: its contrast and its spectrum stay those of a photo."""

    def __post_init__(self) -> None:
        height, width, _ = self.shape
        freq = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.fftfreq(width)[None] ** 2)
        magnitude = np.where(freq > 0, np.maximum(freq, 1.0 / max(height, width)), np.inf)
        self._bases.update(magnitude=(magnitude ** -self.decay).astype(np.float32)[None, None])
        self._bases.update(_colour_mix(self.shape, self.colour))

    def init(self, starts: np.ndarray) -> np.ndarray:
        """The phases (K, C, H, W) of the start images' decorrelated logits."""
        logits = self._start_logits(starts)
        return np.angle(np.fft.fft2(np.moveaxis(logits, -1, 1))).astype(np.float32)

    def to_image(self, raw: Any) -> Any:
        ops = keras().ops
        magnitude = self._bases["magnitude"]
        real, _ = ops.ifft2((magnitude * ops.cos(raw), magnitude * ops.sin(raw)))
        logits = ops.transpose(real, (0, 2, 3, 1))
        mean = ops.mean(logits, axis=(1, 2, 3), keepdims=True)
        spread = ops.sqrt(ops.mean((logits - mean) ** 2, axis=(1, 2, 3), keepdims=True))
        return self._in_range((logits - mean) / (spread + 1e-8))


def make_param(kind: str, value_range: tuple[float, float], shape: tuple[int, int, int],
               decay: float = 1.0, colour: tuple[float, ...] = ()
               ) -> PixelParam | FourierParam | MacoParam:
    """The parameterization called ``kind`` (pixel, fourier or maco; the last two mix
    colours)."""
    if kind == "pixel":
        if colour:
            raise CnnvizError("colour decorrelation needs the fourier or maco parameterization")
        return PixelParam(value_range)
    if kind == "fourier":
        return FourierParam(value_range, shape, decay, colour)
    if kind == "maco":
        return MacoParam(value_range, shape, decay, colour)
    PARAMETERIZATIONS.check(kind)
    raise AssertionError(kind)  # a parameterization of the table that nothing above handles


def start_images(streams: list[tuple[int, ...]], shape: tuple[int, int, int],
                 value_range: tuple[float, float], *, kind: str = "noise", seed: int = 0,
                 wavelengths: tuple[float, ...] = (14.0, 7.0, 3.5, 1.75),
                 amplitude: float = 0.15, noise: float = 0.02,
                 image: np.ndarray | None = None) -> np.ndarray:
    """Start images, one per stream id tuple (each drawn from its own generator, so an image does
    not depend on what else is in the batch). ``noise``: mid-grey plus long-range fluctuations —
    low-resolution Gaussian noise upscaled (scikit-image's cubic ``resize``, unclipped) for each
    wavelength in pixels — and small-scale noise; ``grey``: uniform mid-grey; ``image``: the
    model-ready ``image`` itself for every stream (DeepDream)."""
    STARTS.check(kind)
    if kind == "image":
        if image is None or tuple(np.shape(image)) != tuple(shape):
            raise CnnvizError(f"an image start needs one model-ready image of shape {shape}")
        return np.repeat(np.asarray(image, np.float32)[None], len(streams), axis=0)
    lo, hi = value_range
    height, width, channels = shape
    images = np.full((len(streams), *shape), (lo + hi) / 2, dtype=np.float64)
    if kind == "grey" or not streams:
        return images.astype(np.float32)
    rngs = [np.random.default_rng([seed, *stream]) for stream in streams]
    field_ = np.zeros(images.shape)
    for wavelength in wavelengths:
        coarse = (max(2, math.ceil(height / wavelength) + 1),
                  max(2, math.ceil(width / wavelength) + 1), channels)
        noise_ = np.stack([rng.standard_normal(coarse) for rng in rngs])
        rows, cols = _upscaler(coarse[0], height), _upscaler(coarse[1], width)
        field_ += np.einsum("Hh,khwc,Ww->kHWc", rows, noise_, cols, optimize=True)
    field_ /= max(1.0, math.sqrt(len(wavelengths)))
    fine = np.stack([rng.standard_normal(shape) for rng in rngs])
    images += (hi - lo) * (amplitude * field_ + noise * fine)
    return np.clip(images, lo, hi).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _upscaler(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix of scikit-image's cubic ``resize`` along one axis: cubic spline
    interpolation is separable, so upscaling a whole batch is two matrix products."""
    from skimage.transform import resize

    unit = np.eye(n_in)[:, :, None]  # n_in impulses, each an n_in × 1 image
    return np.stack([resize(u, (n_out, 1), order=3, mode="reflect", anti_aliasing=False,
                            clip=False)[:, 0]
                     for u in unit], axis=1)
