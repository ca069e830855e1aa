"""Data sources: where images come from, read in batches whose memory does not grow with the data.

A source yields ``(pixels, labels or None)`` batches (N×H×W×C: uint8 as stored, or 0..1 floats
once resized) at the size and channel count it is asked for, and knows its class names;
:func:`model_inputs` turns a batch into what a model takes. Sources: numpy arrays,
the bundled MNIST sample and the other data sets of :mod:`cnnviz.data`, an image folder (class
subfolders as in ``keras.utils.image_dataset_from_directory``; a flat folder is unlabelled),
``tfds:NAME[:SPLIT]`` through tensorflow-datasets, and any iterable of ``(images, labels)``
batches (a ``tf.data.Dataset`` among them). Under the TensorFlow backend a folder is read by
tf.data (parallel decode and resize, prefetch); otherwise a pool of threads decodes it with PIL a
few batches ahead, and nothing imports TensorFlow (``tfds:`` aside).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.preprocess import Preprocess
from cnnviz.core.tables import DATA, Entry
from cnnviz.data.images import to_unit_range
from cnnviz.data.readers import (
    ArraySource,
    Batch,
    FolderSource,
    IterableSource,
    Shape,
    Source,
    prefetched,
    tf_batches,
    tf_decodes,
)


def model_inputs(pixels: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """A batch of a source (uint8, or 0..1 floats) → model inputs (float32)."""
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        return preprocess.from_bytes(pixels)
    return preprocess.to_model(to_unit_range(pixels, source="images"))


def converted(source: Source, shape: Shape | None, batch_size: int,
              preprocess: Preprocess) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The source's batches as model inputs, converted on a thread of their own while the
    caller runs the model on the one before; under TensorFlow a folder stays in tf.data from
    file to model input (tensors, as ``model.predict`` has them)."""
    if isinstance(source, FolderSource) and shape is not None and tf_decodes(source.files):
        return tf_batches(source.files, source.labels(), shape, batch_size, preprocess)

    def task(pixels: np.ndarray, labels: np.ndarray | None) -> Callable[[], Batch]:
        return lambda: (model_inputs(pixels, preprocess), labels)

    return prefetched((task(p, y) for p, y in source.batches(shape, batch_size)), workers=1,
                      ahead=2)


def tfds_source(spec: str) -> Source:
    """``tfds:NAME[:SPLIT]`` (default split: test, else the first one) through
    tensorflow-datasets (an optional extra; it reads what is prepared in its data folder,
    ``TFDS_DATA_DIR`` when set)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise CnnvizError("tfds: data needs tensorflow-datasets: pip install "
                          "tensorflow-datasets") from None
    _, name, *rest = spec.split(":")
    try:
        builder = tfds.builder(name, data_dir=os.environ.get("TFDS_DATA_DIR"))
        split = rest[0] if rest else ("test" if "test" in builder.info.splits
                                      else next(iter(builder.info.splits)))
        dataset = builder.as_dataset(split=split, as_supervised=True)
    except Exception as exc:  # tfds raises many kinds: the user needs one line
        raise CnnvizError(f"cannot read {spec}: {str(exc).splitlines()[0]}") from None
    try:
        names = tuple(builder.info.features["label"].names)
    except (KeyError, AttributeError):  # no label feature, or one without class names
        names = ()
    return IterableSource(lambda: dataset.batch(256).as_numpy_iterator(),
                          name=f"{name} ({split})", class_names=names, labelled=True)


def as_source(images: Any, labels: np.ndarray | None = None,
              class_names: tuple[str, ...] | None = None) -> Source:
    """Images as a source: a Source as it is (a data set: its test split); numpy images with
    their labels and class names; anything :func:`open_source` reads."""
    if isinstance(images, Source):
        return images
    if isinstance(images, np.ndarray):
        return ArraySource(images, labels, tuple(class_names or ()))
    source = open_source(images)
    if class_names and not source.class_names:  # a source made here: name its classes
        source.class_names = tuple(class_names)
    return source


def open_source(spec: Any, split: str = "test") -> Source:
    """The one reader of data specs (``--data`` and the Python API alike), ``split`` of it:
    ``bundled``, ``keras``, ``fashion`` or an ``.npz`` (data sets with splits), an image folder,
    ``tfds:NAME[:SPLIT]``, a Source, numpy images, or an iterable of ``(images, labels)``
    batches."""
    if isinstance(spec, Source):
        return spec.split(split)
    if isinstance(spec, np.ndarray):
        return ArraySource(spec).split(split)
    if isinstance(spec, (str, Path)):
        return _read_spec(str(spec), split)
    if hasattr(spec, "__iter__"):
        return IterableSource(_reader(spec), name=type(spec).__name__)
    raise CnnvizError(f"cannot read images from a {type(spec).__name__}")


def data_entry(text: str) -> Entry:
    """The row of ``tables.DATA`` a ``--data`` text names (checked, nothing read): an unknown
    name or a missing file is one line."""
    def matches(entry: Entry) -> bool:
        return {"prefix": lambda: text.startswith(entry.match),
                "folder": lambda: Path(text).is_dir(),
                "name": lambda: text == entry.name,
                "suffix": lambda: text.endswith(entry.match)}[entry.form]()

    order = ("prefix", "folder", "name", "suffix")
    for entry in sorted(DATA, key=lambda e: order.index(e.form)):
        if not matches(entry):
            continue
        if entry.form == "suffix" and not Path(text).exists():
            raise CnnvizError(f"data not found: {text}")
        return entry
    if "/" in text or os.sep in text:
        raise CnnvizError(f"data not found: {text}")
    raise CnnvizError(f"unknown data set '{text}': use {DATA.listing()}")


def _read_spec(text: str, split: str) -> Source:
    """``split`` of the data a ``--data`` text names, read by its row of ``tables.DATA``."""
    entry = data_entry(text)
    found = entry.load()(*(entry.args if entry.form == "name" else (text,)))
    return found if entry.form == "prefix" else found.split(split)


def _reader(spec: Any) -> Callable[[], Iterator[Any]]:
    """Fresh iterators of a re-iterable (a list, a tf.data.Dataset); a one-shot iterator (a
    generator) can be read once, and a second pass says so instead of finding nothing."""
    if iter(spec) is not spec:
        return lambda: iter(spec)
    used = [False]

    def once() -> Iterator[Any]:
        if used[0]:
            raise CnnvizError("these batches come from an iterator that can be read once; pass "
                              "a list, an array or a tf.data.Dataset")
        used[0] = True
        return spec

    return once


def bundled_fits(shape: tuple[int | None, ...]) -> bool:
    """Whether the bundled MNIST digits are the model's kind of input (28×28×1)."""
    return tuple(shape) == (28, 28, 1)


def data_for(input_shape: tuple[int | None, ...], spec: Any = None,
             split: str = "test") -> Source | None:
    """The data a command reads: ``spec`` (see :func:`open_source`); with none, the one default
    rule — the bundled MNIST digits for a model that takes 28×28×1 images, and nothing for any
    other model (never upscaled digits)."""
    if spec is not None:
        return open_source(spec, split)
    return open_source("bundled", split) if bundled_fits(input_shape) else None


def no_data_note(model: str, input_shape: tuple[int | None, ...], what: str,
                 outcome: str = "skipped", give: str = "--data") -> str:
    """The one line that says what happened to a feature (``outcome``) for want of data."""
    size = "×".join("any" if s is None else str(s) for s in input_shape)
    return (f"{what} {outcome}: model '{model}' takes {size} images, not the bundled 28×28×1 "
            f"digits; give yours with {give}")


class _Shard(Source):
    """Images ``start``..``stop`` of another source, read with its ``gather``."""

    def __init__(self, source: Source, start: int, stop: int) -> None:
        self.source, self.start, self.stop = source, start, stop
        self.name, self.class_names, self.where = source.name, source.class_names, source.where

    def __len__(self) -> int:
        return self.stop - self.start

    def item_name(self, index: int) -> str:
        return self.source.item_name(self.start + int(index))

    def digest(self) -> str:
        """The whole source's digest and the shard's bounds."""
        import hashlib

        return hashlib.sha256(f"{self.source.digest()}:{self.start}:{self.stop}".encode()
                              ).hexdigest()[:16]

    @property
    def labelled(self) -> bool:
        return self.source.labelled

    def labels(self) -> np.ndarray | None:
        labels = self.source.labels()
        return None if labels is None else labels[self.start:self.stop]

    def batches(self, shape: Shape | None, batch_size: int = 256) -> Iterator[Batch]:
        step = batch_size if shape is not None else 1
        for begin in range(self.start, self.stop, step):
            yield self.source.gather(range(begin, min(begin + step, self.stop)), shape)

    def gather(self, indices: Iterable[int], shape: Shape | None) -> Batch:
        return self.source.gather([self.start + int(i) for i in indices], shape)


def shard(source: Source, start: int = 0, stop: int | None = None) -> Source:
    """Images ``start``..``stop`` of ``source`` (the whole source for 0..its end)."""
    size = source.size()
    end = size if stop is None else stop
    if end is None:
        if start:
            raise CnnvizError(f"{source.name}: its size is not known, so it cannot be cut into "
                              "shards")
        return source
    if not 0 <= start <= end or (size is not None and end > size):
        raise CnnvizError(f"shard {start}..{end} is outside {source.name} (0..{size})")
    return source if start == 0 and end == size else _Shard(source, start, end)
