"""How a model wants its pixels: display images (RGB or grey, 0..1) ↔ model inputs.

``auto`` reads the model: 0..255 when its first layer is a ``Rescaling``; a Keras Applications
architecture (by its model's name, or a nested model's) its own mode (``tables.ARCHITECTURES``);
else 0..1. The other
modes match the usual Keras preprocessing: ``unit`` (x/255), ``symmetric`` (x/127.5 − 1),
``raw`` (0..255), ``caffe`` (BGR, ImageNet means subtracted) and ``torch`` (x/255, ImageNet
mean and standard deviation per channel). Every mode is an affine map per channel (plus the BGR
flip for caffe), so the model's valid input is a box [lo, hi] per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.tables import PREPROCESSING

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


@dataclass(frozen=True)
class Preprocess:
    """model input = unit pixel × scale + offset, per RGB channel (one value for grey), then
    flipped to BGR when ``bgr``."""

    name: str
    scale: tuple[float, ...]
    offset: tuple[float, ...]
    bgr: bool = False

    def _affine(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        scale, offset = np.asarray(self.scale, np.float64), np.asarray(self.offset, np.float64)
        if scale.size not in (1, channels):
            if channels == 1:  # a colour mode on a grey model: the channels' mean
                scale, offset = scale.mean(keepdims=True), offset.mean(keepdims=True)
            else:
                raise CnnvizError(f"preprocessing '{self.name}' has {scale.size} channels, the "
                                  f"model {channels}")
        scale = np.broadcast_to(scale, (channels,))
        offset = np.broadcast_to(offset, (channels,))
        if self.bgr and channels == 3:
            scale, offset = scale[::-1], offset[::-1]
        return scale, offset

    def bounds(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) per model channel: the inputs of pixels 0 and 1."""
        scale, offset = self._affine(channels)
        return offset.copy(), scale + offset

    def value_range(self, channels: int) -> tuple[Any, Any]:
        """(lo, hi) of the model's valid inputs: floats when all channels share them, else
        float32 arrays, one value per channel."""
        lo, hi = self.bounds(channels)
        if np.all(lo == lo[0]) and np.all(hi == hi[0]):
            return (float(lo[0]), float(hi[0]))
        return (lo.astype(np.float32), hi.astype(np.float32))

    def to_model(self, unit: np.ndarray) -> np.ndarray:
        """Display pixels in 0..1 (…, C), RGB order → model inputs (float32)."""
        unit = np.asarray(unit, dtype=np.float64)
        channels = unit.shape[-1]
        if self.bgr and channels == 3:
            unit = unit[..., ::-1]
        scale, offset = self._affine(channels)
        return (np.clip(unit, 0.0, 1.0) * scale + offset).astype(np.float32)

    def from_bytes(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels (…, C), RGB order → model inputs, in float32 throughout (the fast path
        of streamed batches; exact for ``raw``, within a float32 rounding of :meth:`to_model`
        otherwise)."""
        channels = pixels.shape[-1]
        if self.bgr and channels == 3:
            pixels = pixels[..., ::-1]
        scale, offset = self._affine(channels)
        factor, shift = (scale / 255.0).astype(np.float32), offset.astype(np.float32)
        out = pixels.astype(np.float32)
        if (factor == factor[0]).all() and (shift == shift[0]).all():
            factor, shift = factor[0], shift[0]  # scalars: numpy's fast path
        if np.any(factor != 1):
            out *= factor
        if np.any(shift != 0):
            out += shift
        return out

    def to_unit(self, model_images: np.ndarray) -> np.ndarray:
        """Model inputs → display pixels in 0..1, RGB order (clipped)."""
        x = np.asarray(model_images, dtype=np.float64)
        scale, offset = self._affine(x.shape[-1])
        unit = np.clip((x - offset) / scale, 0.0, 1.0)
        return unit[..., ::-1] if self.bgr and x.shape[-1] == 3 else unit

    def to_params(self) -> dict[str, Any]:
        """A JSON-ready description (what results record)."""
        return {"name": self.name, "scale": list(self.scale), "offset": list(self.offset),
                "bgr": self.bgr}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Preprocess:
        """The preprocessing :meth:`to_params` described."""
        return cls(params["name"], tuple(params["scale"]), tuple(params["offset"]),
                   bool(params.get("bgr", False)))


def named(mode: str) -> Preprocess:
    """The preprocessing called ``mode`` (not ``auto``)."""
    if mode == "unit":
        return Preprocess("unit", (1.0,), (0.0,))
    if mode == "symmetric":
        return Preprocess("symmetric", (2.0,), (-1.0,))
    if mode == "raw":
        return Preprocess("raw", (255.0,), (0.0,))
    if mode == "caffe":
        return Preprocess("caffe", (255.0,) * 3, tuple(-m for m in CAFFE_MEAN_RGB), bgr=True)
    if mode == "torch":
        return Preprocess("torch", tuple(1.0 / s for s in IMAGENET_STD),
                          tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)))
    PREPROCESSING.check(mode)
    raise CnnvizError(f"preprocessing '{mode}' is read from the model (for_model), not named")


def for_model(model: Any, mode: str = "auto") -> Preprocess:
    """The preprocessing called ``mode``; ``auto`` reads it from ``model`` (see
    :func:`recognized`)."""
    return named(mode) if mode != "auto" else named(recognized(model)[0])


def recognized(model: Any) -> tuple[str, str | None]:
    """The mode ``auto`` reads from ``model`` and, where it is not the plain 0..1, why: 0..255
    (``raw``) when its first layer is a ``Rescaling``; the mode of a Keras Applications
    architecture named by the model or by a nested model at its top level; else ``unit``."""
    import re

    from cnnviz.core.backend import keras
    from cnnviz.core.tables import ARCHITECTURES

    k = keras()
    layers = [layer for layer in model.layers if not isinstance(layer, k.layers.InputLayer)]
    if layers and isinstance(layers[0], k.layers.Rescaling):
        return "raw", None
    named_models = [model, *(layer for layer in layers if isinstance(layer, k.Model))]
    for candidate in named_models:
        for entry in ARCHITECTURES:
            if re.fullmatch(entry.pattern, candidate.name.lower()):
                where = "" if candidate is model else f" (its nested model '{candidate.name}')"
                return entry.preprocess, (
                    f"model '{model.name}'{where} is Keras Applications' {entry.name}: using its "
                    f"'{entry.preprocess}' preprocessing (--preprocess to choose another)")
    return "unit", None
