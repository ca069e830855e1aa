"""The pieces an ascent is composed of, as objects: penalties on the image and update rules.
Each piece is a frozen dataclass whose :attr:`~Piece.key` is its class and its parameters —
never a display name — so two pieces that compute differently never share a compiled step,
and two equal ones do. Write your own by subclassing :class:`Penalty` or :class:`Update`:

    @dataclass(frozen=True)
    class Centre(Penalty):
        '''Keep the evidence near the middle: the image's energy weighted by distance.'''
        def __call__(self, image, mid, span):
            ...

    Settings(penalties=(Centre(0.1),))
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from cnnviz.core.backend import keras
from cnnviz.core.errors import CnnvizError, check_finite


@dataclass(frozen=True)
class Piece:
    """A piece of an ascent, keyed by what it computes."""

    name: ClassVar[str] = ""  # its row in a table, for pieces cnnviz ships

    @property
    def key(self) -> tuple[Any, ...]:
        """The class and every parameter: equal keys compute the same."""
        return (type(self), *((f.name, getattr(self, f.name)) for f in fields(self)))

    def describe(self) -> dict[str, Any]:
        """The piece as JSON values: its table name (or class) and its parameters."""
        kind = self.name or f"{type(self).__module__}.{type(self).__qualname__}"
        return {"kind": kind, **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True)
class Penalty(Piece):
    """Subtracted from each image's score: ``weight`` times :meth:`__call__`, a (K,) tensor of
    the (K, H, W, C) images, centred on ``mid`` and scaled by ``span`` (the input's range)."""

    weight: float = 0.0
    relative: ClassVar[bool] = False  # weighed by each image's |score| too: scale-free

    def __post_init__(self) -> None:
        check_finite((f"the {self.name or type(self).__name__} weight", self.weight))
        if self.weight < 0:
            raise CnnvizError(f"penalty weights must be ≥ 0, got {self.weight}")

    def __call__(self, image: Any, mid: Any, span: float) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class TotalVariation(Penalty):
    """Mean absolute difference of neighbouring pixels (smooth images)."""

    name: ClassVar[str] = "tv"

    def __call__(self, image: Any, mid: Any, span: float) -> Any:
        ops = keras().ops
        scaled = (image - mid) / span
        dy = ops.abs(scaled[:, 1:, :, :] - scaled[:, :-1, :, :])
        dx = ops.abs(scaled[:, :, 1:, :] - scaled[:, :, :-1, :])
        return ops.mean(dy, axis=(1, 2, 3)) + ops.mean(dx, axis=(1, 2, 3))


@dataclass(frozen=True)
class L1(Penalty):
    """Mean absolute distance from the middle of the range (sparse images)."""

    name: ClassVar[str] = "l1"

    def __call__(self, image: Any, mid: Any, span: float) -> Any:
        ops = keras().ops
        return ops.mean(ops.abs(image - mid), axis=(1, 2, 3)) / span


@dataclass(frozen=True)
class L2(Penalty):
    """Mean squared distance from the middle of the range (faint images)."""

    name: ClassVar[str] = "l2"

    def __call__(self, image: Any, mid: Any, span: float) -> Any:
        ops = keras().ops
        return ops.mean(ops.square((image - mid) / span), axis=(1, 2, 3))


@dataclass(frozen=True)
class Ink(Penalty):
    """Mean distance from the low end of the range — the ink on a dark background (MNIST,
    Fashion-MNIST): class images drawn as strokes, not on a bright field. Relative: ``weight``
    is a share of each image's own score, so a weak (or untrained) model's images are not
    pressed to black."""

    name: ClassVar[str] = "ink"
    relative: ClassVar[bool] = True

    def __call__(self, image: Any, mid: Any, span: float) -> Any:
        ops = keras().ops
        return ops.mean(image - (mid - span / 2), axis=(1, 2, 3)) / span


# The colourfulness (Hasler and Süsstrunk 2003, on 0..255 values) of photos: the mean over
# 136 half-overlapping 96 px patches of scikit-image's colour photos (astronaut, coffee, chelsea,
# rocket, immunohistochemistry, hubble_deep_field; scikit-image's data, BSD-licensed and public
# domain), measured with :func:`cnnviz.oip.quality.colourfulness` on
# ``benchmarks/common.py``'s ``photo_patches(96)``.
PHOTO_COLOURFULNESS = 41.8


def colourfulness(image: Any, bgr: bool = False) -> Any:
    """Per image (K, H, W, 3: display values on a 0..1 scale, any offset), Hasler and
    Süsstrunk's colourfulness on 0..255 values: the spread of the red-green and yellow-blue
    opponents plus 0.3 × their mean's length; ``bgr``: channels in BGR order."""
    ops = keras().ops
    x = 255.0 * image
    red, green, blue = (x[..., 2], x[..., 1], x[..., 0]) if bgr else \
        (x[..., 0], x[..., 1], x[..., 2])
    rg, yb = red - green, 0.5 * (red + green) - blue
    spread = ops.sqrt(ops.var(rg, axis=(1, 2)) + ops.var(yb, axis=(1, 2)) + 1e-6)
    return spread + 0.3 * ops.sqrt(ops.square(ops.mean(rg, axis=(1, 2))) +
                                   ops.square(ops.mean(yb, axis=(1, 2))) + 1e-6)


@dataclass(frozen=True)
class Colourfulness(Penalty):
    """How far an image's colourfulness exceeds ``target`` (photos' by default), as a share of
    the target — nothing below it: colour images as colourful as photos, not washed in
    saturated colours. Relative: ``weight`` is a share of each image's own score. ``bgr``: the
    model takes BGR channels (caffe); ``window`` (top, bottom, left, right): measured there only
    — a centre unit's receptive field, the part of the image it sees and the gallery shows."""

    name: ClassVar[str] = "colourfulness"
    relative: ClassVar[bool] = True
    target: float = PHOTO_COLOURFULNESS
    bgr: bool = False
    window: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "window", tuple(int(v) for v in self.window))  # JSON: a list
        check_finite(("the colourfulness target", self.target))
        if self.target <= 0:
            raise CnnvizError(f"the colourfulness target must be positive, got {self.target}")
        if self.window and (len(self.window) != 4 or self.window[0] >= self.window[1] or
                            self.window[2] >= self.window[3]):
            raise CnnvizError(f"a colourfulness window is (top, bottom, left, right), got "
                              f"{self.window}")

    def __call__(self, image: Any, mid: Any, span: float) -> Any:
        if image.shape[-1] != 3:
            raise CnnvizError("the colourfulness penalty needs 3-channel images")
        ops = keras().ops
        if self.window:
            top, bottom, left, right = self.window
            image = image[:, top:bottom, left:right, :]
        excess = colourfulness((image - mid) / span, self.bgr) / self.target - 1.0
        return ops.maximum(excess, 0.0)


@dataclass(frozen=True)
class Update(Piece):
    """An update rule: :meth:`__call__` turns a gradient into the step to subtract, given the
    moments ``m`` and ``v`` it keeps (kept in checkpoints) and the step number ``t``."""

    moments: ClassVar[bool] = False  # whether m and v are state worth saving

    def __call__(self, lr: float, grad: Any, m: Any, v: Any, t: Any
                 ) -> tuple[Any, Any, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class RMS(Update):
    """The gradient divided by its root mean square per image: every step moves each image
    by ``lr`` of the input range, however steep the score."""

    name: ClassVar[str] = "rms"

    def __call__(self, lr: float, grad: Any, m: Any, v: Any, t: Any
                 ) -> tuple[Any, Any, Any]:
        ops = keras().ops
        rms = ops.sqrt(ops.mean(ops.square(grad), axis=(1, 2, 3), keepdims=True))
        return lr * grad / (rms + 1e-12), m, v


@dataclass(frozen=True)
class Adam(Update):
    """Adam (Kingma & Ba 2015) with moments ``beta1``, ``beta2`` and ``epsilon``."""

    name: ClassVar[str] = "adam"
    moments: ClassVar[bool] = True
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

    def __call__(self, lr: float, grad: Any, m: Any, v: Any, t: Any
                 ) -> tuple[Any, Any, Any]:
        ops = keras().ops
        b1, b2 = self.beta1, self.beta2
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * ops.square(grad)
        m_hat = m / (1 - ops.power(b1, t + 1.0))
        v_hat = v / (1 - ops.power(b2, t + 1.0))
        return lr * m_hat / (ops.sqrt(v_hat) + self.epsilon), m, v
