"""Perturbation references: what happens to the target's score when parts of the input are
removed (set to the darkest input). They need no gradient and no layer — only the model's
output — so they are the yardstick the gradient methods are shown beside.

- Occlusion (Zeiler & Fergus 2014; captum's ``Occlusion``): a square patch slides over the
  image; each pixel gets the mean score drop of the patches that cover it. Signed: positive
  where hiding the pixel lowers the score.
- RISE (Petsiuk et al. 2018): random smooth masks keep about half of the image each; a pixel's
  value is the slope of the score on that pixel's mask value over all masks — the score's
  change per unit of the pixel kept (the paper's mask-weighted mean score, centred, so that
  the map is signed and zero where keeping a pixel does not matter).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.attribution.gradients import ChannelTarget, GradientMethod, Target
from cnnviz.core.errors import CnnvizError

# Altered copies held at once, in input values (64 MB of float32).
BUDGET = 2**24


class Perturbation(GradientMethod):
    """Shared set-up: the target's score of many altered copies of each image."""

    signed = True

    def _low(self, x: np.ndarray) -> np.ndarray:
        """The value a removed pixel takes: the input range's low end, per channel."""
        return np.broadcast_to(np.asarray(self.facts.value_range[0], np.float32), x.shape[-1:])

    def _scored(self, copies: np.ndarray, channels: np.ndarray, layer: str | None
                ) -> np.ndarray:
        """The target's score of each copy (its own channel)."""
        return self.target_scores(copies, ChannelTarget(np.asarray(channels), layer))

    @staticmethod
    def _per_call(shape: tuple[int, ...]) -> int:
        """How many altered copies of an image of ``shape`` fit in :data:`BUDGET`."""
        return max(1, BUDGET // int(np.prod(shape)))


class Occlusion(Perturbation):
    """The mean drop of the target's score when a ``window``-pixel square patch covering the
    pixel is set to the darkest input, patches ``stride`` apart (defaults: a seventh of the
    image's shorter side, and half the window)."""

    def __init__(self, model: Any, layer: str | None = None, *, window: int | None = None,
                 stride: int | None = None) -> None:
        super().__init__(model, layer)
        if (window is not None and window < 1) or (stride is not None and stride < 1):
            raise CnnvizError("occlusion needs a window and a stride of at least one pixel")
        self.window, self.stride = window, stride

    def geometry(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(window, stride) for an image of ``shape``."""
        window = self.window or max(1, round(min(shape) / 7))
        window = min(window, *shape)
        return window, self.stride or max(1, window // 2)

    def attribute(self, images: np.ndarray, target: Target = None) -> np.ndarray:
        """One signed (H, W) map per image."""
        x = np.asarray(images, dtype=np.float32)
        chosen = self.targets(x, target)
        height, width = x.shape[1:3]
        window, stride = self.geometry((height, width))
        tops = _starts(height, window, stride)
        lefts = _starts(width, window, stride)
        low = self._low(x)
        patches = [(top, left) for top in tops for left in lefts]
        channels = np.broadcast_to(np.asarray(chosen.channel).reshape(-1), len(x))
        drops = np.empty((len(x), len(patches)))
        per_call = self._per_call(x.shape[1:])
        pairs = [(n, p) for n in range(len(x)) for p in range(len(patches))]
        for begin in range(0, len(pairs), per_call):
            chunk = pairs[begin:begin + per_call]
            copies = x[[n for n, _ in chunk]].copy()
            for i, (_, p) in enumerate(chunk):
                top, left = patches[p]
                copies[i, top:top + window, left:left + window] = low
            scores = self._scored(copies, channels[[n for n, _ in chunk]], chosen.layer)
            for (n, p), score in zip(chunk, scores, strict=True):
                drops[n, p] = score
        drops = self._scored(x, channels, chosen.layer)[:, None] - drops
        total, cover = np.zeros(x.shape[:3]), np.zeros(x.shape[1:3])
        for p, (top, left) in enumerate(patches):
            total[:, top:top + window, left:left + window] += drops[:, p, None, None]
            cover[top:top + window, left:left + window] += 1
        return (total / cover).astype(np.float32)


def _starts(side: int, window: int, stride: int) -> list[int]:
    """Patch positions along one side: every ``stride`` pixels, the last flush with the edge
    (so every pixel is covered)."""
    starts = list(range(0, side - window + 1, stride))
    if starts[-1] != side - window:
        starts.append(side - window)
    return starts


class RISE(Perturbation):
    """RISE with ``masks`` random masks: a ``grid``×``grid`` grid of cells kept with
    probability ``keep``, enlarged smoothly (bilinear) and shifted by a random fraction of a
    cell; the map is each pixel's slope of the score on its mask value."""

    def __init__(self, model: Any, layer: str | None = None, *, masks: int = 1000,
                 grid: int = 7, keep: float = 0.5, seed: int = 0) -> None:
        super().__init__(model, layer)
        if masks < 2 or grid < 1 or not 0 < keep < 1:
            raise CnnvizError("RISE needs at least 2 masks, a grid of at least 1 cell and a "
                              "keep probability strictly between 0 and 1")
        self.masks, self.grid, self.keep, self.seed = masks, grid, keep, seed

    def make_masks(self, shape: tuple[int, int], count: int,
                   rng: np.random.Generator) -> np.ndarray:
        """``count`` masks of ``shape``, values in [0, 1]."""
        from scipy.ndimage import zoom

        height, width = shape
        cell_h, cell_w = -(-height // self.grid), -(-width // self.grid)
        cells = (rng.random((count, self.grid + 1, self.grid + 1)) < self.keep)
        out = np.empty((count, height, width), np.float32)
        for i in range(count):
            big = zoom(cells[i].astype(np.float32), (cell_h, cell_w), order=1, mode="nearest",
                       grid_mode=True)
            dy, dx = rng.integers(0, cell_h), rng.integers(0, cell_w)
            out[i] = big[dy:dy + height, dx:dx + width]
        return out

    def attribute(self, images: np.ndarray, target: Target = None) -> np.ndarray:
        """One signed (H, W) map per image, from the same masks for every image (drawn a
        batch at a time, so memory does not grow with ``masks``)."""
        x = np.asarray(images, dtype=np.float32)
        chosen = self.targets(x, target)
        channels = np.broadcast_to(np.asarray(chosen.channel).reshape(-1), len(x))
        rng = np.random.default_rng(self.seed)
        low = self._low(x)
        pixels = x.shape[1] * x.shape[2]
        sum_m, sum_mm = np.zeros(pixels), np.zeros(pixels)
        sum_s, sum_sm = np.zeros(len(x)), np.zeros((len(x), pixels))
        batch = max(1, min(self.masks, self._per_call(x.shape[1:]) // len(x)))
        for start in range(0, self.masks, batch):
            masks = self.make_masks(x.shape[1:3], min(batch, self.masks - start), rng)
            flat = masks.reshape(len(masks), -1).astype(np.float64)
            sum_m += flat.sum(axis=0)
            sum_mm += (flat * flat).sum(axis=0)
            kept = masks[None, ..., None]
            copies = kept * x[:, None] + (1 - kept) * low  # (N, masks, H, W, C)
            scores = self._scored(copies.reshape(-1, *x.shape[1:]),
                                  np.repeat(channels, len(masks)), chosen.layer)
            scores = scores.reshape(len(x), len(masks)).astype(np.float64)
            sum_s += scores.sum(axis=1)
            sum_sm += scores @ flat
        count = self.masks
        mean_m = sum_m / count
        variance = sum_mm / count - mean_m**2
        covariance = sum_sm / count - (sum_s / count)[:, None] * mean_m[None]
        slope = covariance / np.where(variance > 1e-12, variance, np.inf)
        return slope.reshape(x.shape[:3]).astype(np.float32)
