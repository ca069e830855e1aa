"""Images uploaded to the explorer: a size limit before decoding anything, the pixel count read
from the header before the pixels are decoded (no decompression bomb gets through), and a
one-line reason for anything that is not a readable image."""

from __future__ import annotations

import base64
import binascii
import io
import warnings

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.data import MIN_SIDE, pil_pixels, to_unit_range

MAX_BYTES = 8 * 2**20
MAX_MEGAPIXELS = 16
FORMATS = "PNG, JPEG, GIF, BMP, TIFF or WebP"


def decode_upload(contents: object, name: object, fit: tuple[int, int] | None = None
                  ) -> np.ndarray:
    """A browser's data URL (``data:image/png;base64,...``) → display pixels in 0..1, H×W or
    H×W×C (reduced towards ``fit`` as :func:`decode_image` does)."""
    label = str(name)[:80] if name else "the upload"
    if not isinstance(contents, str) or not contents.startswith("data:") or "," not in contents:
        raise CnnvizError(f"{label} did not arrive as a file upload")
    body = contents.partition(",")[2]
    if len(body) > (MAX_BYTES + 2) // 3 * 4 + 4:
        raise CnnvizError(f"{label} is larger than {MAX_BYTES // 2**20} MiB: shrink it first")
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise CnnvizError(f"{label} did not arrive whole (its base64 text is damaged)") from None
    return decode_image(data, label, fit=fit)


def decode_image(data: bytes, name: str = "image", max_megapixels: float = MAX_MEGAPIXELS,
                 fit: tuple[int, int] | None = None) -> np.ndarray:
    """Image file bytes → display pixels in 0..1 (the first frame of an animation or the first
    page of a TIFF; palette as its colours, alpha kept for the model input to drop, 16 bit
    scaled by 65535). With ``fit`` (height, width), a larger image is reduced by whole-number
    block means while still 8 bit — to no less than twice ``fit`` — before it becomes floats, so
    a large picture costs the memory of a small one."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise CnnvizError(f"{name} is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise CnnvizError(f"{name} is larger than {MAX_BYTES // 2**20} MiB: shrink it first")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                if width * height > max_megapixels * 1e6:
                    raise CnnvizError(f"{name} is {width}×{height} pixels: more than "
                                      f"{max_megapixels:g} megapixels; shrink it first")
                if min(width, height) < MIN_SIDE:
                    raise CnnvizError(f"{name} is {width}×{height} pixels: too small to show "
                                      "a shape")
                picture.load()
                factor = 1 if fit is None else min(width // (2 * fit[1]), height // (2 * fit[0]))
                if factor > 1 and picture.mode in ("L", "LA", "RGB", "RGBA", "P"):
                    picture = (picture.convert("RGBA") if picture.mode == "P" else picture
                               ).reduce(factor)
                image = pil_pixels(picture)
    except CnnvizError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CnnvizError(f"{name} has too many pixels (more than {max_megapixels:g} "
                          "megapixels); shrink it first") from None
    except UnidentifiedImageError:
        raise CnnvizError(f"{name} is not an image cnnviz can read ({FORMATS})") from None
    except Exception as exc:  # truncated or damaged data inside a valid header
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CnnvizError(f"cannot read {name}: {first}") from None
    return to_unit_range(image, source=name)
