"""Data sets (bundled MNIST sample, keras.datasets, Fashion-MNIST IDX) and image files, converted
to a model's input shape and value range."""

from __future__ import annotations

import gzip
import re
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.errors import CnnvizError

MNIST_SAMPLE = "mnist_sample.npz"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


@dataclass
class Dataset:
    """Images (uint8, N×H×W or N×H×W×C) with integer labels, split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = field(default_factory=lambda: tuple(str(d) for d in range(10)))

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of the "train" or "test" split."""
        if which not in ("train", "test"):
            raise CnnvizError(f"unknown split '{which}': use 'train' or 'test'")
        return (self.x_train, self.y_train) if which == "train" else (self.x_test, self.y_test)


def load_mnist(source: str = "bundled") -> Dataset:
    """MNIST digits: ``"bundled"`` (10,000 real digits shipped with cnnviz, offline) or ``"keras"``
    (the full 70,000 through ``keras.datasets.mnist``, which downloads once)."""
    if source == "bundled":
        with resources.files("cnnviz").joinpath("assets", MNIST_SAMPLE).open("rb") as fh:
            arrays = dict(np.load(fh))
        return Dataset("mnist-sample", arrays["x_train"], arrays["y_train"], arrays["x_test"],
                       arrays["y_test"])
    if source == "keras":
        from cnnviz.backend import keras

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


MAX_CLASSES = 2**16


def checked_labels(labels: Any, where: str, classes: int = MAX_CLASSES) -> np.ndarray:
    """``labels`` as int64 class numbers, refused (naming ``where``) unless each is a whole
    number in 0..``classes``−1 — before anything is built per class."""
    values = np.asarray(labels)
    if values.dtype.kind not in "iub" and (
            values.dtype.kind != "f" or not np.all(np.isfinite(values))
            or np.any(values != np.round(values))):
        raise CnnvizError(f"{where}: labels must be whole class numbers, got "
                              f"{values.dtype} values")
    values = values.reshape(-1)
    bad = values[(values < 0) | (values >= classes)]
    if bad.size:
        limit = "class_names given" if classes != MAX_CLASSES else "classes cnnviz handles"
        raise CnnvizError(f"{where}: label {bad[0]:.0f} is not a class number 0..{classes - 1} "
                          f"({classes} {limit})")
    return values.astype(np.int64)


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


def load_dataset(spec: str = "bundled") -> Dataset:
    """``bundled`` (MNIST sample), ``keras`` (full MNIST, online), ``fashion`` (Debian's IDX
    files) or the path of an ``.npz`` file."""
    if spec in ("bundled", "keras"):
        return load_mnist(spec)
    if spec == "fashion":
        return load_fashion_mnist()
    if spec.endswith(".npz"):
        return load_npz_dataset(spec)
    raise CnnvizError(f"unknown data set '{spec}': use bundled, keras, fashion, an .npz file, an "
                      "image folder or tfds:NAME")


MAX_MEGAPIXELS = 50
MIN_SIDE = 2


def read_image(path: str | Path, notes: list[str] | None = None) -> np.ndarray:
    """Read an image file as float pixels in 0..1, shape H×W or H×W×C. Conversions worth
    knowing about (palette, alpha, 16 bit) are appended to ``notes``."""
    from skimage import io

    path = Path(path)
    if not path.is_file():
        raise CnnvizError(f"image file not found: {path}" if not path.exists()
                          else f"{path} is not a file")
    if path.stat().st_size == 0:
        raise CnnvizError(f"image file {path} is empty (0 bytes)")
    mode = _check_image_header(path)
    try:
        if mode is not None:  # Pillow reads it (imageio took a 3×2 grey + alpha PNG for 2×2)
            from PIL import Image

            with Image.open(path) as picture:
                image = pil_pixels(picture)
        else:  # what only tifffile reads
            image = np.asarray(io.imread(path))
    except Exception as exc:
        raise CnnvizError(f"cannot read image {path}: {str(exc).splitlines()[0] or exc}") from None
    if image.ndim not in (2, 3) or image.size == 0:
        raise CnnvizError(f"cannot use image {path}: its pixel array has shape {image.shape}")
    if notes is not None:
        if mode == "P":
            notes.append(f"{path.name}: palette image read as its colours")
        if mode == "CMYK":
            notes.append(f"{path.name}: CMYK converted to RGB")
        if image.ndim == 3 and image.shape[-1] in (2, 4):
            notes.append(f"{path.name}: alpha channel dropped")
        if image.dtype == np.uint16:
            notes.append(f"{path.name}: 16-bit pixels scaled to 0..1 by 65535")
    return to_unit_range(image, source=str(path))


def pil_pixels(picture: Any) -> np.ndarray:
    """A Pillow image's pixels in their own value type: grey (H, W), grey and alpha, RGB or
    RGBA as stored; 16-bit grey as uint16; a palette as its colours (with alpha where it has
    transparency); CMYK and other colour modes as RGB; one bit as 0 or 255."""
    mode = picture.mode
    if mode.startswith("I;16"):
        return np.asarray(picture).astype(np.uint16)
    if mode in ("I", "F"):
        values = np.asarray(picture)
        whole = mode == "I" and values.min(initial=0) >= 0 and values.max(initial=0) <= 65535
        return values.astype(np.uint16) if whole else values.astype(np.float64)
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(picture)
    if mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in picture.info
        return np.asarray(picture.convert("RGBA" if alpha else "RGB"))
    return np.asarray(picture.convert("L" if mode == "1" else "RGB"))


def _check_image_header(path: Path) -> str | None:
    """Refuse images too small or too large before decoding them, from their header (Pillow's,
    or tifffile's for TIFFs Pillow cannot open); an image whose size no header gives is refused
    too. Returns the PIL mode."""
    from PIL import Image, UnidentifiedImageError

    mode = None
    try:
        with Image.open(path) as probe:
            width, height, mode = probe.width, probe.height, probe.mode
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)) / 1e6:,.0f} megapixels" if found else "too many pixels"
        raise CnnvizError(f"image {path.name} has {pixels}: larger than {MAX_MEGAPIXELS} "
                          "megapixels; shrink it first") from None
    except (UnidentifiedImageError, OSError):
        width, height = _tiff_size(path)
    if min(width, height) < MIN_SIDE:
        raise CnnvizError(f"image {path.name} is {width}×{height} pixels: too small to show "
                          f"a shape (at least {MIN_SIDE}×{MIN_SIDE})")
    if width * height > MAX_MEGAPIXELS * 10**6:
        raise CnnvizError(f"image {path.name} is {width}×{height} pixels: larger than "
                          f"{MAX_MEGAPIXELS} megapixels; shrink it first")
    return mode


def _tiff_size(path: Path) -> tuple[int, int]:
    """(width, height) of the first page of a TIFF, from its header; refuses other files whose
    size no header reader gives (they would be decoded whole to find out)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            return int(page.imagewidth), int(page.imagelength)  # type: ignore[union-attr]
    except Exception:
        raise CnnvizError(f"cannot read image {path.name}: neither Pillow nor tifffile "
                          "recognizes its header, so its size is unknown before decoding; "
                          "convert it to PNG, JPEG or TIFF") from None


def to_unit_range(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Scale an integer, boolean or float image to float64 pixels in 0..1."""
    if image.dtype == bool:
        return image.astype(np.float64)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        if info.min < 0:
            return (image.astype(np.float64) - info.min) / (info.max - info.min)
        return image.astype(np.float64) / info.max
    if np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
        if not np.all(np.isfinite(image)):
            raise CnnvizError(f"{source} contains NaN or infinite pixels")
        lo, hi = float(image.min(initial=0.0)), float(image.max(initial=0.0))
        if lo < 0.0 or hi > 1.0:
            image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
        return image
    raise CnnvizError(f"{source} has unsupported pixel type {image.dtype}")


def _preprocess(value_range: Any):
    """A :class:`~cnnviz.preprocess.Preprocess` for a (lo, hi) range, or the one given."""
    from cnnviz.preprocess import Preprocess

    if isinstance(value_range, Preprocess):
        return value_range
    lo, hi = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in value_range)
    return Preprocess("range", tuple((hi - lo).tolist()), tuple(lo.tolist()))


def to_model_input(image: np.ndarray, shape: tuple[int, int, int],
                   value_range: Any = (0.0, 1.0), *, invert: bool = False) -> np.ndarray:
    """Convert one image (0..1 floats, H×W or H×W×C with C in 1..4) to a model input of ``shape``
    (height, width, channels) in ``value_range`` — a (lo, hi) pair or a model's
    :class:`~cnnviz.preprocess.Preprocess`: alpha is dropped, colour becomes grey (``rgb2gray``)
    or grey colour (``gray2rgb``), and the size is resampled with anti-aliasing."""
    from skimage.color import gray2rgb, rgb2gray
    from skimage.transform import resize

    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 2:  # grey + alpha
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 4:  # RGBA: drop alpha
        image = image[..., :3]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise CnnvizError(f"cannot use an image of shape {image.shape}: expected H×W grey, "
                          f"H×W×3 RGB or H×W×4 RGBA")
    if min(image.shape[:2]) < 1:
        raise CnnvizError(f"image of shape {image.shape} has no pixels")
    height, width, channels = shape
    if channels == 1 and image.ndim == 3:
        image = rgb2gray(image)
    elif channels == 3 and image.ndim == 2:
        image = gray2rgb(image)
    elif channels not in (1, 3):
        raise CnnvizError(f"models with {channels} input channels are not supported (1 or 3)")
    if image.shape[:2] != (height, width):
        image = resize(image, (height, width), order=1, anti_aliasing=True, preserve_range=True)
    if invert:
        image = 1.0 - image
    if image.ndim == 2:
        image = image[..., None]
    return _preprocess(value_range).to_model(image)


def images_to_model_input(images: np.ndarray, shape: tuple[int, int, int],
                          value_range: Any = (0.0, 1.0)) -> np.ndarray:
    """Convert a uint8 batch (N×H×W or N×H×W×C) to model inputs; fast path when sizes match."""
    images = np.asarray(images)
    batch = to_unit_range(images, source="images")
    if batch.ndim == 3:
        batch = batch[..., None]
    if batch.shape[1:] == tuple(shape):
        return _preprocess(value_range).to_model(batch)
    return np.stack([to_model_input(image, shape, value_range) for image in batch])
