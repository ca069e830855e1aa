"""What real images say of every map of several layers, from one pass over a shard of the data:
per class, the number of images and the sum and sum of squares of each map's mean; per map, the
k images that excite it most. Shards merge exactly (counts and sums add; the top k of the union
keeps, among equal values, the lower image index), so a data set split over processes or
machines gives the statistics of one pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnviz.core.errors import CnnvizError, Stopped
from cnnviz.core.fileio import load_results, save_results
from cnnviz.data.readers import Source
from cnnviz.data.sources import shard
from cnnviz.maps.activations import ProgressFn, reduced_batches
from cnnviz.model.facts import ModelFacts


@dataclass
class MapStatistics:
    """Statistics of the map means of ``layers`` over images ``start``..``stop`` of the data:
    ``counts`` (classes,), per layer ``sums`` and ``squares`` (classes, maps), ``top_values``
    and ``top_index`` (maps, k, highest first). Unlabelled data counts as one class."""

    layers: tuple[str, ...]
    k: int
    start: int
    stop: int
    counts: np.ndarray
    sums: dict[str, np.ndarray]
    squares: dict[str, np.ndarray]
    top_values: dict[str, np.ndarray]
    top_index: dict[str, np.ndarray]

    def mean(self, layer: str) -> np.ndarray:
        """Each class's mean of each map's mean: (classes, maps); NaN for an empty class."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums[layer] / self.counts[:, None]

    def std(self, layer: str) -> np.ndarray:
        """Each class's standard deviation of each map's mean: (classes, maps)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.mean(layer)
            return np.sqrt(np.maximum(self.squares[layer] / self.counts[:, None] - mean ** 2, 0))

    def merged(self, other: MapStatistics) -> MapStatistics:
        """These statistics and ``other``'s (another shard of the same data) as one."""
        if other.layers != self.layers or other.k != self.k:
            raise CnnvizError("cannot merge statistics of other layers or another k")
        classes = max(len(self.counts), len(other.counts))
        counts = _padded(self.counts, classes) + _padded(other.counts, classes)
        sums, squares, values, index = {}, {}, {}, {}
        for layer in self.layers:
            sums[layer] = _padded(self.sums[layer], classes) + _padded(other.sums[layer], classes)
            squares[layer] = (_padded(self.squares[layer], classes)
                              + _padded(other.squares[layer], classes))
            values[layer], index[layer] = top_k(
                np.concatenate([self.top_values[layer], other.top_values[layer]], axis=1),
                np.concatenate([self.top_index[layer], other.top_index[layer]], axis=1), self.k)
        return MapStatistics(self.layers, self.k, min(self.start, other.start),
                             max(self.stop, other.stop), counts, sums, squares, values, index)

    def save(self, path: str | Path) -> Path:
        """Write the statistics to ``path`` (one .npz, arrays and metadata together)."""
        arrays: dict[str, np.ndarray] = {"counts": self.counts}
        for i, layer in enumerate(self.layers):
            arrays |= {f"sums_{i}": self.sums[layer], f"squares_{i}": self.squares[layer],
                       f"top_values_{i}": self.top_values[layer],
                       f"top_index_{i}": self.top_index[layer]}
        return save_results(path, "map-statistics", arrays, {
            "layers": list(self.layers), "k": self.k, "start": self.start, "stop": self.stop},
                            twin=False)[0]

    @classmethod
    def load(cls, path: str | Path) -> MapStatistics:
        """Read what :meth:`save` wrote."""
        arrays, meta = load_results(path, "map-statistics")
        try:
            layers = tuple(meta["layers"])
            pick = {key: {layer: arrays[f"{key}_{i}"] for i, layer in enumerate(layers)}
                    for key in ("sums", "squares", "top_values", "top_index")}
            return cls(layers, int(meta["k"]), int(meta["start"]), int(meta["stop"]),
                       arrays["counts"], pick["sums"], pick["squares"], pick["top_values"],
                       pick["top_index"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CnnvizError(f"cannot read statistics {path}: damaged ({exc}); compute them "
                              "again") from None


def _padded(values: np.ndarray, classes: int) -> np.ndarray:
    """``values`` with zero rows added up to ``classes`` rows."""
    extra = classes - len(values)
    return values if extra <= 0 else np.concatenate(
        [values, np.zeros((extra, *values.shape[1:]), values.dtype)])


def top_k(values: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` highest values and their indices, highest first; among equal values
    the lower index first (the order one pass over the data gives)."""
    order = np.lexsort((index, -values), axis=1)[:, :k]
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(index, order, axis=1)


def map_statistics(facts: ModelFacts, source: Source, layers: list[str], k: int = 9, *,
                   start: int = 0, stop: int | None = None,
                   size: tuple[int, int] | None = None, batch_size: int = 256,
                   on_progress: ProgressFn | None = None) -> MapStatistics:
    """:class:`MapStatistics` of images ``start``..``stop`` of ``source`` (all by default),
    every layer in one compiled pass a batch. Ctrl-C raises
    :class:`~cnnviz.core.errors.Stopped` with the statistics of the images seen (``start``
    up to their ``stop``; ``None`` before the first batch), which merge with the rest."""
    if k <= 0:
        raise CnnvizError(f"the number of top images must be positive, got {k}")
    part = shard(source, start, stop)
    seen: MapStatistics | None = None  # replaced whole after each batch: never torn
    try:
        for begin, outs, labels in reduced_batches(facts, part, layers, size=size,
                                                   batch_size=batch_size,
                                                   on_progress=on_progress):
            batch = _batch_statistics(layers, k, start + begin, outs, labels)
            seen = batch if seen is None else seen.merged(batch)
    except KeyboardInterrupt:
        raise Stopped(seen, 0 if seen is None else seen.stop - start) from None
    if seen is None:
        return MapStatistics(tuple(layers), k, start, start, np.zeros(1, np.int64), {}, {},
                             {}, {})
    return seen


def _batch_statistics(layers: list[str], k: int, first: int, outs: list[np.ndarray],
                      labels: np.ndarray | None) -> MapStatistics:
    """The statistics of one batch, whose first image is image ``first`` of the data."""
    n = len(outs[0])
    classes = np.zeros(n, np.int64) if labels is None else np.asarray(labels, np.int64)
    width = max(1, int(classes.max()) + 1)
    onehot = np.eye(width)[classes]  # (n, classes): sums by class in one product
    sums, squares, values, index = {}, {}, {}, {}
    for layer, out in zip(layers, outs, strict=True):
        out = np.asarray(out, np.float64)
        if out.ndim != 2:
            raise CnnvizError(f"layer '{layer}' has no maps or units to count")
        sums[layer], squares[layer] = onehot.T @ out, onehot.T @ (out ** 2)
        values[layer], index[layer] = top_k(out.T, np.broadcast_to(
            np.arange(first, first + n), out.T.shape), k)
    return MapStatistics(tuple(layers), k, first, first + n, np.bincount(classes, minlength=width),
                         sums, squares, values, index)
