"""Class patterns: per class, the mean and spread of every map (unit) of some layers over a
labelled data set, as a streaming sum — memory does not grow with the data, and Ctrl-C keeps
the sums of the images already seen (a partial result that merges exactly with the rest)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError, Stopped
from cnnviz.core.timing import timed
from cnnviz.data import checked_labels
from cnnviz.data.readers import Source
from cnnviz.data.sources import as_source
from cnnviz.maps.activations import ProgressFn, reduced_batches
from cnnviz.model.facts import ModelFacts, as_facts, get_layer
from cnnviz.results import ClassPatterns, Meta

PartialFn = Callable[[ClassPatterns, int], None]


@dataclass(frozen=True)
class _Sums:
    """Per-class sums over the images seen so far; each batch makes a new one, so that Ctrl-C
    (which can come between any two bytecodes) finds either the old sums or the new."""

    counts: np.ndarray
    sums: tuple[np.ndarray, ...] = ()
    squares: tuple[np.ndarray, ...] = ()
    images: dict[str, np.ndarray] = field(default_factory=dict)
    seen: int = 0

    def plus(self, names: list[str], values: list[np.ndarray], y: np.ndarray) -> _Sums:
        """These sums and one batch's: its (N, units) or (N, h, w, maps) values, its labels."""
        n_classes = max(len(self.counts), int(y.max(initial=-1)) + 1)
        counts = np.pad(self.counts, (0, n_classes - len(self.counts))) \
            + np.bincount(y, minlength=n_classes)
        onehot = np.eye(n_classes)[y]
        images = dict(self.images)
        sums, squares = [], []
        for i, (name, v) in enumerate(zip(names, values, strict=True)):
            if v.ndim == 4:
                images[name] = _grown(images.get(name), n_classes, v.shape[1:]) \
                    + (onehot.T @ v.reshape(len(v), -1)).reshape(n_classes, *v.shape[1:])
                v = v.mean(axis=(1, 2))
            sums.append(_grown(self.sums[i] if self.sums else None, n_classes, v.shape[1:])
                        + onehot.T @ v)
            squares.append(_grown(self.squares[i] if self.squares else None, n_classes,
                                  v.shape[1:]) + onehot.T @ (v * v))
        return _Sums(counts, tuple(sums), tuple(squares), images, self.seen + len(y))


def _grown(total: np.ndarray | None, classes: int, shape: tuple[int, ...]) -> np.ndarray:
    """``total`` (per class) with rows for ``classes`` classes (zeros where new)."""
    if total is None:
        return np.zeros((classes, *shape))
    return np.pad(total, ((0, classes - len(total)),) + ((0, 0),) * (total.ndim - 1))


@timed("compute")
def class_patterns(model: ModelFacts | Any, images: Any, labels: np.ndarray | None,
                   layers: str | list[str], *, class_names: tuple[str, ...] | None = None,
                   preactivation: bool = False, data: str | None = None,
                   size: tuple[int, int] | None = None, batch_size: int = 256,
                   map_images: bool = False, on_progress: ProgressFn | None = None,
                   on_checkpoint: PartialFn | None = None,
                   checkpoint_every: float = 60.0) -> ClassPatterns:
    """Mean and spread of every map (unit) of ``layers`` for each class of a labelled data set
    — raw images (uint8 or 0..1) with ``labels``, or a labelled source (a folder, ``tfds:``,
    batches) — streamed through one compiled pass: memory does not grow with the data set.
    With ``map_images``, also each class's mean image of every map (``images``). ``data``
    names the data set in the result; ``size`` the input size for a model that takes any.

    Every ``checkpoint_every`` seconds ``on_checkpoint`` gets the patterns of the images seen
    so far and their number; Ctrl-C raises :class:`~cnnviz.core.errors.Stopped` with the same
    (``None`` and 0 before the first batch). The images seen are always the first ones of the
    data, so the rest, computed later, merges with them into the whole data's patterns."""
    facts = as_facts(model)
    source = as_source(images, labels, class_names)
    if not source.labelled:
        raise CnnvizError("the data set has no labels: class patterns need one label per image")
    names = [layers] if isinstance(layers, str) else list(layers)
    state = _Sums(np.zeros(len(source.class_names), np.int64))
    last = time.monotonic()

    def result() -> ClassPatterns:
        return _patterns(facts, source, names, state, preactivation, data)

    try:
        for _, values, y in reduced_batches(facts, source, names, preactivation=preactivation,
                                            size=size, batch_size=batch_size,
                                            on_progress=on_progress,
                                            reduce="none" if map_images else "mean"):
            state = state.plus(names, values, checked_labels(y, source.name))
            if on_checkpoint and checkpoint_every > 0 and \
                    time.monotonic() - last >= checkpoint_every:
                on_checkpoint(result(), state.seen)
                last = time.monotonic()
    except KeyboardInterrupt:
        raise Stopped(result() if state.seen else None, state.seen) from None
    return result()


def _patterns(facts: ModelFacts, source: Source, names: list[str], state: _Sums,
              preactivation: bool, data: str | None) -> ClassPatterns:
    """The class patterns of ``state``'s sums."""
    counts = state.counts
    n_classes = len(counts)
    safe = np.maximum(counts, 1)[:, None]
    means = {n: s / safe for n, s in zip(names, state.sums, strict=True)}
    stds = {n: np.sqrt(np.maximum(q / safe - (s / safe) ** 2, 0.0))
            for n, s, q in zip(names, state.sums, state.squares, strict=True)}
    kinds = {n: "maps" if len(get_layer(facts.model, n).output.shape) == 4 else "units"
             for n in names}
    classes = tuple(source.class_names) + tuple(
        str(c) for c in range(len(source.class_names), n_classes))
    params = {"images": int(counts.sum()), "preactivation": preactivation, "kinds": kinds}
    meta = Meta(facts.name, facts.preprocess, tuple(names), data or source.name,
                classes=classes, model_digest=facts.digest, data_digest=source.digest())
    shaped = {name: total / np.maximum(counts, 1).reshape(-1, 1, 1, 1)
              for name, total in state.images.items()}
    return ClassPatterns(means, stds, counts, classes, meta, params, shaped)
