"""Data sets with a train and a test split: the bundled MNIST sample, keras.datasets, Fashion-MNIST
(IDX files) and a user's .npz."""

from __future__ import annotations

import gzip
import struct
from importlib import resources
from pathlib import Path

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.tables import DATA, SPLITS
from cnnviz.data.labels import MAX_CLASSES, checked_labels
from cnnviz.data.readers import ArraySource

MNIST_SAMPLE = "mnist_sample.npz"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


DIGITS = tuple(str(d) for d in range(10))


class Dataset(ArraySource):
    """Images (uint8, N×H×W or N×H×W×C) with integer labels, split into train and test. As a
    source it reads its test split (the images commands explain and compare with);
    :meth:`split` gives either split as a source. ``title`` is the data set's own name."""

    splits = ("train", "test")

    def __init__(self, title: str, x_train: np.ndarray, y_train: np.ndarray,
                 x_test: np.ndarray, y_test: np.ndarray | None,
                 class_names: tuple[str, ...] = DIGITS) -> None:
        super().__init__(x_test, y_test, class_names if y_test is not None else (),
                         name=f"{title} test", where="the test split")
        self.title, self.x_train, self.y_train = title, x_train, y_train
        self.x_test, self.y_test = x_test, y_test

    def split(self, which: str) -> ArraySource:
        """The ``train`` or ``test`` split as a source."""
        if SPLITS.check(which) == "test":
            return self
        return ArraySource(self.x_train, self.y_train, self.class_names, name=f"{self.title} "
                           "train", where="the train split")


def load_mnist(source: str = "bundled") -> Dataset:
    """MNIST digits: ``"bundled"`` (10,000 real digits shipped with cnnviz, offline) or ``"keras"``
    (the full 70,000 through ``keras.datasets.mnist``, which downloads once)."""
    if source == "bundled":
        with resources.files("cnnviz").joinpath("assets", MNIST_SAMPLE).open("rb") as fh:
            arrays = dict(np.load(fh))
        return Dataset("mnist-sample", arrays["x_train"], arrays["y_train"], arrays["x_test"],
                       arrays["y_test"])
    if source == "keras":
        from cnnviz.core.backend import keras

        try:
            (x_train, y_train), (x_test, y_test) = keras().datasets.mnist.load_data()
        except Exception as exc:
            raise CnnvizError(f"could not load MNIST through keras.datasets (it needs the "
                              f"internet once): {exc}; use source='bundled' offline") from None
        return Dataset("mnist", x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64))
    raise CnnvizError(f"unknown MNIST source '{source}': use 'bundled' or 'keras'")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or gzipped), the format of MNIST and Fashion-MNIST."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise CnnvizError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise CnnvizError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise CnnvizError(f"{path} holds {len(data) - header} bytes of data, expected {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(directory: str | Path = FASHION_MNIST_DIR) -> Dataset:
    """Fashion-MNIST from gzipped IDX files (Debian's ``dataset-fashion-mnist`` installs them)."""
    directory = Path(directory)
    names = {
        "x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
        "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz",
    }
    missing = [n for n in names.values() if not (directory / n).is_file()]
    if missing:
        raise CnnvizError(f"Fashion-MNIST not found in {directory} (missing {', '.join(missing)}); "
                          f"on Debian: apt-get install dataset-fashion-mnist")
    arrays = {key: read_idx(directory / name) for key, name in names.items()}
    return Dataset("fashion-mnist", arrays["x_train"], arrays["y_train"].astype(np.int64),
                   arrays["x_test"], arrays["y_test"].astype(np.int64), FASHION_CLASSES)


def load_npz_dataset(path: str | Path) -> Dataset:
    """A user data set in ``.npz``: ``x_train``/``y_train``/``x_test``/``y_test``, or ``x``/``y``
    (or ``images``/``labels``) used as the test split, and optional ``class_names``. Labels may
    be missing (then ``None``)."""
    path = Path(path)
    if not path.is_file():
        raise CnnvizError(f"data set file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise CnnvizError(f"cannot read data set {path}: {exc}") from None
    for images_key, labels_key in (("x_test", "y_test"), ("x", "y"), ("images", "labels")):
        if images_key in arrays:
            x, y = arrays[images_key], arrays.get(labels_key)
            break
    else:
        raise CnnvizError(f"{path} has no images: expected x_test, x or images "
                          f"(found {', '.join(arrays) or 'nothing'})")
    if x.ndim not in (3, 4):
        raise CnnvizError(f"{path}: images of shape {x.shape} are not N×H×W or N×H×W×C")
    given = tuple(str(c) for c in arrays["class_names"].reshape(-1).tolist()) \
        if "class_names" in arrays else ()
    y = None if y is None else checked_labels(y, str(path), len(given) or MAX_CLASSES)
    n = 0 if y is None else int(y.max(initial=-1)) + 1
    names = given or tuple(str(c) for c in range(max(n, 1)))
    return Dataset(path.stem, arrays.get("x_train", x[:0]), arrays.get("y_train", np.zeros(0)),
                   x, y, names)  # type: ignore[arg-type]


def load_dataset(spec: str) -> Dataset:
    """A data set with splits, by the name or file of ``tables.DATA``: ``bundled`` (MNIST
    sample), ``keras`` (full MNIST, online), ``fashion`` (Debian's IDX files) or the path of
    an ``.npz`` file."""
    for entry in DATA:
        if (entry.form == "name" and spec == entry.name) or \
                (entry.form == "suffix" and spec.endswith(entry.match)):
            return entry.load()(*(entry.args if entry.form == "name" else (spec,)))
    raise CnnvizError(f"unknown data set '{spec}': use {DATA.listing()}")
