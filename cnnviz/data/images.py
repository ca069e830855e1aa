"""Image files and pixel arrays: read (headers checked before decoding), and converted to a
model's input shape and value range."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError

MAX_MEGAPIXELS = 50
MIN_SIDE = 2


def check_image_file(path: str | Path) -> Path:
    """``path`` when it is a non-empty file, else one line saying what it is."""
    path = Path(path)
    if not path.is_file():
        raise CnnvizError(f"image file not found: {path}" if not path.exists()
                          else f"{path} is not a file")
    if path.stat().st_size == 0:
        raise CnnvizError(f"image file {path} is empty (0 bytes)")
    return path


def read_image(path: str | Path, notes: list[str] | None = None) -> np.ndarray:
    """Read an image file as float pixels in 0..1, shape H×W or H×W×C. Conversions worth
    knowing about (palette, alpha, 16 bit) are appended to ``notes``."""
    from skimage import io

    path = check_image_file(path)
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
    """A :class:`~cnnviz.core.preprocess.Preprocess` for a (lo, hi) range, or the one given."""
    from cnnviz.core.preprocess import Preprocess

    if isinstance(value_range, Preprocess):
        return value_range
    lo, hi = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in value_range)
    return Preprocess("range", tuple((hi - lo).tolist()), tuple(lo.tolist()))


def to_model_input(image: np.ndarray, shape: tuple[int, int, int],
                   value_range: Any = (0.0, 1.0), *, invert: bool = False) -> np.ndarray:
    """Convert one image (0..1 floats, H×W or H×W×C with C in 1..4) to a model input of ``shape``
    (height, width, channels) in ``value_range`` — a (lo, hi) pair or a model's
    :class:`~cnnviz.core.preprocess.Preprocess`: alpha is dropped, colour becomes grey
    (``rgb2gray``) or grey colour (``gray2rgb``), and the size is resampled with anti-aliasing."""
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


def decode(path: str | Path, shape: tuple[int, int, int] | None) -> np.ndarray:
    """One image file as uint8 pixels (H×W×C) at ``shape`` (bilinear with PIL, which averages
    over the pixels a downscaled one covers), or at its own size."""
    from PIL import Image, UnidentifiedImageError

    if os.path.getsize(path) == 0:
        raise CnnvizError(f"cannot read image {path}: the file is empty (0 bytes)")
    try:
        with Image.open(path) as image:
            channels = shape[2] if shape else (1 if image.mode in ("1", "L", "I;16", "I") else 3)
            if shape is not None:  # a JPEG much larger than needed decodes at 1/2, 1/4 or 1/8
                image.draft("L" if channels == 1 else "RGB", (shape[1], shape[0]))
            image = image.convert("L" if channels == 1 else "RGB")
            if shape is not None and image.size != (shape[1], shape[0]):
                image = image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise CnnvizError(f"cannot read image {path}: {exc}") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels
