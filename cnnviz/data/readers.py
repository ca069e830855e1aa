"""Sources: images with optional labels, class names and splits, read in batches — numpy
arrays, image folders (tf.data under TensorFlow, PIL threads otherwise) and any re-iterable of
batches. Each yields ``(pixels, labels or None)``
(N×H×W×C: uint8 as stored, or 0..1 floats once resized) at a requested shape, with memory that
holds a few batches whatever the data size."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.preprocess import Preprocess, named
from cnnviz.core.tables import SPLITS
from cnnviz.data.images import decode, images_to_model_input
from cnnviz.data.labels import MAX_CLASSES, checked_labels

Batch = tuple[np.ndarray, np.ndarray | None]
Shape = tuple[int, int, int]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
UNIT = named("unit")



class Source:
    """Images with optional integer labels and class names, read in batches — the one idea of
    data every command and the Python API take. A source with ``splits`` (a data set with a
    train and a test split) reads its test split, and gives either with :meth:`split`."""

    name: str = "data"
    class_names: tuple[str, ...] = ()
    where: str = ""  # how messages name it ("the test split"), when not by its name
    exact_digest = False  # whether digest() fingerprints the content (then passes are cached)
    splits: tuple[str, ...] = ()  # the splits split() gives; none: the source is all there is

    def split(self, which: str) -> Source:
        """Split ``which`` (train or test) as a source; a source without splits is its own test
        split and has no train split."""
        SPLITS.check(which)
        if which == "test" and not self.splits:
            return self
        raise CnnvizError(f"{self.name} has no {which} split")

    def __len__(self) -> int:
        raise CnnvizError(f"the size of {self.name} is not known before it is read")

    def item_name(self, index: int) -> str:
        """How a person finds image ``index`` again: its file, or its index in the data."""
        return f"#{int(index)}"

    def size(self) -> int | None:
        """How many images, where that is known before reading them."""
        try:
            return len(self)
        except CnnvizError:
            return None

    @property
    def labelled(self) -> bool:
        """Whether every image has a class label."""
        return False

    def labels(self) -> np.ndarray | None:
        """Every image's label, in order (``None`` when unlabelled)."""
        if not self.labelled:
            return None
        return np.concatenate([y for _, y in self.batches(None, 256)])  # type: ignore[misc]

    def batches(self, shape: Shape | None, batch_size: int = 256) -> Iterator[Batch]:
        """Batches of pixels at ``shape`` (``None``: each image's own size, batches of one),
        with their labels."""
        raise NotImplementedError

    def gather(self, indices: Iterable[int], shape: Shape | None) -> Batch:
        """The images (and labels) at ``indices``, in that order, read in one more pass."""
        wanted = [int(i) for i in indices]
        found: dict[int, tuple[np.ndarray, Any]] = {}
        begin = 0
        for x, y in self.batches(shape, 256 if shape else 1):
            for j in range(len(x)):
                if begin + j in wanted:
                    found[begin + j] = (x[j], None if y is None else y[j])
            begin += len(x)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise CnnvizError(f"index {missing[0]} is outside {self.name} (0..{begin - 1})")
        x = np.stack([found[i][0] for i in wanted])
        return x, None if not self.labelled else np.asarray([found[i][1] for i in wanted],
                                                                np.int64)

    def digest(self) -> str:
        """A fingerprint of the data, for a result's provenance: its name here; sources that
        know their content say more."""
        return _hashed(f"{type(self).__name__}:{self.name}".encode())

    def class_name(self, label: int | None) -> str:
        """The name of class ``label`` (its number when the data names none)."""
        if label is None:
            return "unlabelled"
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)


def _hashed(*parts: bytes) -> str:
    import hashlib

    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:16]


def _to_unit(images: np.ndarray, shape: Shape | None) -> np.ndarray:
    """Raw images (uint8 or floats, N×H×W[×C]) → pixels at ``shape``: as they are where they
    fit (exact), else converted (grey↔colour, resized) to 0..1 floats."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if shape is None or images.shape[1:] == tuple(shape):
        return images
    return images_to_model_input(images, shape, UNIT)


class _KnownLabels(Source):
    """A source that holds every label up front (``None`` when unlabelled)."""

    _labels: np.ndarray | None = None

    @property
    def labelled(self) -> bool:
        return self._labels is not None

    def labels(self) -> np.ndarray | None:
        return self._labels


class ArraySource(_KnownLabels):
    """Images in memory: N×H×W or N×H×W×C, uint8 or floats."""

    exact_digest = True

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None,
                 class_names: tuple[str, ...] = (), name: str = "arrays",
                 where: str = "") -> None:
        images = np.asarray(images)
        if images.ndim not in (3, 4):
            raise CnnvizError(f"{name}: images of shape {images.shape} are not N×H×W or "
                              "N×H×W×C")
        if labels is not None and len(labels) != len(images):
            raise CnnvizError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.name, self.where = images, name, where
        self._labels = None if labels is None else checked_labels(
            labels, name, len(class_names) or MAX_CLASSES)
        self.class_names = tuple(class_names) or _numbered_classes(self._labels)

    def __len__(self) -> int:
        return len(self.images)

    def digest(self) -> str:
        """The images' and labels' bytes."""
        images = np.ascontiguousarray(self.images)
        labels = b"" if self._labels is None else np.ascontiguousarray(self._labels).tobytes()
        return _hashed(f"{images.dtype}{images.shape}".encode(), images.tobytes(), labels)

    def batches(self, shape: Shape | None, batch_size: int = 256) -> Iterator[Batch]:
        step = batch_size if shape is not None else 1
        for begin in range(0, len(self.images), step):
            y = None if self._labels is None else self._labels[begin:begin + step]
            yield _to_unit(self.images[begin:begin + step], shape), y

    def gather(self, indices: Iterable[int], shape: Shape | None) -> Batch:
        index = np.asarray(list(indices), dtype=np.int64)
        bad = index[(index < 0) | (index >= len(self.images))]
        if bad.size:
            raise CnnvizError(f"index {int(bad[0])} is outside {self.where or self.name} "
                              f"(0..{len(self.images) - 1})")
        return (_to_unit(self.images[index], shape),
                None if self._labels is None else self._labels[index])


def _numbered_classes(labels: np.ndarray | None) -> tuple[str, ...]:
    if labels is None or labels.size == 0:
        return ()
    return tuple(str(c) for c in range(int(labels.max()) + 1))


class FolderSource(_KnownLabels):
    """Image files in a folder: class subfolders (sorted names are the classes, as
    ``image_dataset_from_directory`` has them) or a flat, unlabelled folder."""

    exact_digest = True

    def __init__(self, folder: str | Path, workers: int | None = None) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise CnnvizError(f"image folder not found: {folder}")
        self.name, self.workers = folder.name or str(folder), workers or (os.cpu_count() or 2)
        self.folder = folder
        with os.scandir(folder) as entries:
            subfolders = sorted(entry.name for entry in entries if entry.is_dir())
        # the data's own folders are never entered again through a link inside them
        seen = {_identity(p) for p in [folder, *(folder / name for name in subfolders)]}
        per_class = {name: _images_in(folder / name, True, seen) for name in subfolders}
        classes = [name for name in subfolders if per_class[name]]
        if classes:
            self.class_names = tuple(classes)
            self.files = [path for name in classes for path in per_class[name]]
            self._labels = np.repeat(
                np.arange(len(classes)), [len(per_class[name]) for name in classes])
        else:
            self.files, self._labels = _images_in(folder, recursive=False), None
        if not self.files:
            raise CnnvizError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")

    def __len__(self) -> int:
        return len(self.files)

    def item_name(self, index: int) -> str:
        """The image's file, relative to the folder."""
        return Path(os.path.relpath(self.files[int(index)], self.folder)).as_posix()

    def digest(self) -> str:
        """Every file's path (below the folder), size and modification time, and the labels:
        a listing, not the pixels (reading 50,000 JPEGs to fingerprint them costs a pass)."""
        rows = []
        for file in self.files:
            path = Path(file)
            stat = path.stat()
            rows.append(f"{path.parent.name}/{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}")
        labels = b"" if self._labels is None else self._labels.tobytes()
        return _hashed("\n".join(rows).encode("utf-8", "surrogateescape"), labels)

    def batches(self, shape: Shape | None, batch_size: int = 256) -> Iterator[Batch]:
        if shape is not None and tf_decodes(self.files):
            yield from tf_batches(self.files, self._labels, shape, batch_size)
            return
        step = batch_size if shape is not None else 1
        tasks = (self._task(range(b, min(b + step, len(self.files))), shape)
                 for b in range(0, len(self.files), step))
        yield from prefetched(tasks, self.workers)

    def gather(self, indices: Iterable[int], shape: Shape | None) -> Batch:
        index = [int(i) for i in indices]
        bad = [i for i in index if not 0 <= i < len(self.files)]
        if bad:
            raise CnnvizError(f"index {bad[0]} is outside {self.name} (0..{len(self.files) - 1})")
        return self._task(index, shape)()

    def _task(self, index: Iterable[int], shape: Shape | None) -> Callable[[], Batch]:
        chosen = list(index)

        def run() -> Batch:
            x = np.stack([decode(self.files[i], shape) for i in chosen])
            return x, None if self._labels is None else self._labels[chosen]

        return run


def _images_in(folder: str | Path, recursive: bool = True,
               seen: set[tuple[int, int]] | None = None) -> list[str]:
    """Image files under ``folder``, sorted; directory entries tell files from folders without
    a stat call each, and paths stay strings (a folder of 50,000 images lists in a fraction of a
    second). A folder reached again through a link (a loop) and a link that leads nowhere are
    passed over."""
    seen = set() if seen is None else seen
    seen.add(_identity(folder))
    found: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if entry.is_dir() and recursive:
                    target = entry.stat()
                    if (target.st_dev, target.st_ino) not in seen:
                        found.extend(_images_in(entry.path, True, seen))
                elif entry.is_file() and \
                        os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                    found.append(entry.path)
            except OSError:  # a link to itself, or to nothing
                continue
    return sorted(found)


def _identity(folder: str | Path) -> tuple[int, int]:
    """A folder's device and inode: the same folder however it is reached."""
    info = os.stat(folder)
    return info.st_dev, info.st_ino


TF_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def tf_decodes(files: list[str]) -> bool:
    """Whether tf.data decodes these files: under the TensorFlow backend (never under JAX,
    where TensorFlow may be absent) and in formats ``tf.io.decode_image`` reads."""
    from cnnviz.core.backend import backend_name

    return backend_name() == "tensorflow" and all(
        os.path.splitext(f)[1].lower() in TF_SUFFIXES for f in files)


def tf_batches(files: list[str], labels: np.ndarray | None, shape: Shape, batch_size: int,
                preprocess: Preprocess | None = None) -> Iterator[Batch]:
    """uint8 batches decoded and resized (bilinear, as ``image_dataset_from_directory`` does) by
    tf.data's parallel map, prefetched; with ``preprocess``, model inputs as TensorFlow tensors,
    converted inside the pipeline."""
    import tensorflow as tf

    if preprocess is not None:  # model input = unit pixel × (hi − lo) + lo, per model channel
        lo, hi = (np.asarray(v, np.float32) for v in preprocess.bounds(shape[2]))
        flip = preprocess.bgr and shape[2] == 3

    def load(path: Any) -> Any:
        image = tf.io.decode_image(tf.io.read_file(path), channels=shape[2],
                                   expand_animations=False)
        image = tf.image.resize(image, shape[:2], method="bilinear")  # as Keras loads folders
        pixels = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        if preprocess is None:
            return pixels
        unit = tf.cast(pixels, tf.float32) / 255.0
        return (unit[..., ::-1] if flip else unit) * (hi - lo) + lo

    dataset = tf.data.Dataset.from_tensor_slices(files).map(
        load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    begin = 0
    try:
        for pixels in (dataset if preprocess is not None else dataset.as_numpy_iterator()):
            end = begin + len(pixels)
            yield pixels, None if labels is None else labels[begin:end]
            begin = end
    except tf.errors.OpError as exc:
        for file in files[begin:begin + batch_size]:  # which one: read each with Pillow
            decode(file, shape)
        raise CnnvizError(f"cannot decode an image among {files[begin:begin + batch_size][:1]} "
                          f"and the {batch_size - 1} after it: "
                          f"{str(exc.message).splitlines()[0]}") from None


def prefetched(tasks: Iterable[Callable[[], Batch]], workers: int,
               ahead: int | None = None) -> Iterator[Batch]:
    """Run ``tasks`` on a pool of ``workers`` threads, at most ``ahead`` at a time (default:
    workers + 1), yielding their results in order: decoding overlaps the model's work, and
    memory holds a few batches whatever the data size."""
    depth = ahead or workers + 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Any] = deque()
        try:
            for task in tasks:
                pending.append(pool.submit(task))
                if len(pending) >= depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


class IterableSource(Source):
    """Any re-iterable of ``(images, labels)`` or ``images`` batches: numpy arrays, tensors
    (a ``tf.data.Dataset``), lists. ``make`` returns a fresh iterator each time."""

    def __init__(self, make: Callable[[], Iterable[Any]], *, name: str = "batches",
                 class_names: tuple[str, ...] = (), labelled: bool | None = None) -> None:
        self.make, self.name, self.class_names = make, name, tuple(class_names)
        self._labelled = labelled

    @property
    def labelled(self) -> bool:
        if self._labelled is None:
            self._labelled = next(iter(self._raw()), (None, None))[1] is not None
        return self._labelled

    def _raw(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for item in self.make():
            images, labels = item if isinstance(item, tuple) and len(item) == 2 else (item, None)
            yield np.asarray(images), None if labels is None else np.asarray(labels).astype(
                np.int64).reshape(-1)

    def batches(self, shape: Shape | None, batch_size: int = 256) -> Iterator[Batch]:
        for images, labels in self._raw():
            if shape is None:
                for j in range(len(images)):
                    yield _to_unit(images[j:j + 1], None), None if labels is None else \
                        labels[j:j + 1]
            else:
                yield _to_unit(images, shape), labels
