"""How far to trust a set of optimal input patterns: measures that need no human eye.

Each takes model-ready images (K, H, W, C) and returns per-image numbers, so a benchmark can take
medians or shares; see ``benchmarks/oip_quality.py`` for them side by side per preset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.core.backend import keras
from cnnviz.maps.activations import channel_means
from cnnviz.model.facts import ModelFacts, as_facts
from cnnviz.oip.transforms import affine_params, apply_affine


def clipped_share(images: np.ndarray, value_range: tuple[Any, Any],
                  tol: float = 0.01) -> np.ndarray:
    """Per image, the share of values within ``tol`` of the range's span from either end."""
    lo, hi = (np.asarray(v, np.float64) for v in value_range)
    span = hi - lo
    x = np.asarray(images, np.float64)
    at_end = (x <= lo + tol * span) | (x >= hi - tol * span)
    return at_end.reshape(len(x), -1).mean(axis=1)


def high_frequency_share(images: np.ndarray, cutoff: float = 0.25) -> np.ndarray:
    """Per image, the share of its power (mean removed, all channels) at spatial frequencies
    above ``cutoff`` cycles per pixel — wavelengths under 4 pixels by default: stripes and
    speckle."""
    x = np.asarray(images, np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2
    fy = np.fft.fftfreq(x.shape[1])[:, None]
    fx = np.fft.fftfreq(x.shape[2])[None, :]
    high = (np.sqrt(fy**2 + fx**2) > cutoff)[None, :, :, None]
    total = power.sum(axis=(1, 2, 3))
    return np.where(total > 0, (power * high).sum(axis=(1, 2, 3)) / np.maximum(total, 1e-30),
                    0.0)


def colourfulness(rgb: np.ndarray) -> np.ndarray:
    """Per image (N, H, W, 3: display RGB in 0..1), Hasler and Süsstrunk's colourfulness
    (2003) on 0..255 values: the spread of the red-green and yellow-blue opponents plus 0.3 ×
    their mean's length."""
    x = 255.0 * np.asarray(rgb, np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    spread = np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2)
    return spread + 0.3 * np.sqrt(rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2)


def seed_correlation(first: np.ndarray, second: np.ndarray, *,
                     per_channel: bool = False) -> np.ndarray:
    """Per pair, the Pearson correlation of two images (K, H, W, C) of the same filter from
    different seeds (0 where either is flat); ``per_channel``: each channel's mean removed
    first, so that a colour cast both share does not count as agreement."""
    a, b = (np.asarray(x, np.float64) for x in (first, second))
    if per_channel:
        a = a - a.mean(axis=(1, 2), keepdims=True)
        b = b - b.mean(axis=(1, 2), keepdims=True)
    return _row_correlation(a.reshape(len(a), -1), b.reshape(len(b), -1))


def _row_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The Pearson correlation of each row of ``a`` with the same row of ``b`` (0 where either
    is flat)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norm > 0, (a * b).sum(axis=1) / np.maximum(norm, 1e-30), 0.0)


def shifted_correlation(first: np.ndarray, second: np.ndarray, max_shift: int) -> np.ndarray:
    """Per pair of images (K, H, W, C), the largest correlation of the first with the second
    moved (circularly) by up to ``max_shift`` pixels each way, each channel's mean removed:
    agreement of a texture whose phase the seed decides (0 where either is flat)."""
    a, b = (np.asarray(x, np.float64) for x in (first, second))
    a = a - a.mean(axis=(1, 2), keepdims=True)
    b = b - b.mean(axis=(1, 2), keepdims=True)
    cross = np.fft.ifft2(np.conj(np.fft.fft2(a, axes=(1, 2))) * np.fft.fft2(b, axes=(1, 2)),
                         axes=(1, 2)).real.sum(axis=-1)  # (K, H, W): every circular shift
    near = np.zeros(cross.shape[1:], bool)
    reach = np.r_[0:max_shift + 1, -max_shift:0]
    near[np.ix_(reach % near.shape[0], reach % near.shape[1])] = True
    norm = np.sqrt((a ** 2).sum(axis=(1, 2, 3)) * (b ** 2).sum(axis=(1, 2, 3)))
    best = cross[:, near].max(axis=1)
    return np.where(norm > 0, best / np.maximum(norm, 1e-30), 0.0)


def seen_agreement(first: np.ndarray, second: np.ndarray, *,
                   others: bool = False) -> np.ndarray:
    """Per pair, how alike a layer sees two seeds' images of the same filter: the correlation
    of their responses (``first``, ``second``: (K, maps), each image's value of every map of
    the layer) after each map is standardized over all 2K images, so that what every image
    excites does not count. A texture the seed places elsewhere is seen the same; ``others``:
    each first image against the next filter's second image instead, the chance level."""
    both = np.concatenate([np.asarray(first, np.float64), np.asarray(second, np.float64)])
    spread = both.std(axis=0)
    both = (both - both.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    a, b = both[:len(first)], both[len(first):]
    return _row_correlation(a, np.roll(b, -1, axis=0) if others else b)


def specificity(values: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """For image k made for filter ``filters[k]``, whether it excites that filter most among
    all the images; ``values`` is (K, maps), each image's response of every filter."""
    filters = np.asarray(filters)
    best = np.asarray(values)[:, filters].argmax(axis=0)
    return best == np.arange(len(filters))


def robustness(model: ModelFacts | Any, layer: str, images: np.ndarray, filters: np.ndarray, *,
               reduce: str = "mean", jitter: int = 2, scale: tuple[float, float] = (0.9, 1.1),
               draws: int = 8, seed: int = 0) -> np.ndarray:
    """Per image, the mean share of its own filter's response (after the activation; map mean,
    max or centre: ``reduce``) kept under random shifts of up to ``jitter`` pixels and zooms in
    ``scale``, edges reflected (0 where the untouched image gives ≤ 0)."""
    facts = as_facts(model)
    x = np.asarray(images, np.float32)
    filters = np.asarray(filters)
    own = np.arange(len(x))
    base = channel_means(facts, layer, x, reduce=reduce)[own, filters]
    rng = np.random.default_rng(seed)
    kept = np.zeros(len(x))
    ops = keras().ops
    for _ in range(draws):
        params = np.stack([affine_params(x.shape[1:3],
                                         tuple(rng.integers(-jitter, jitter + 1, 2).astype(float)),
                                         rng.uniform(*scale)) for _ in own])
        moved = ops.convert_to_numpy(apply_affine(ops.convert_to_tensor(x),
                                                  ops.convert_to_tensor(params)))
        kept += channel_means(facts, layer, moved, reduce=reduce)[own, filters]
    return np.where(base > 0, kept / draws / np.where(base > 0, base, 1.0), 0.0)
