"""One input image, chosen from the data (a class, an index) or read from a file, and converted
to the model's input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError, check_seed
from cnnviz.data.images import read_image, to_model_input, to_unit_range
from cnnviz.data.readers import Shape
from cnnviz.data.sources import as_source, data_for


def pick_digit(labels: np.ndarray, digit: int, seed: int = 0, classes: int = 10) -> int:
    """A deterministic index of an image of class ``digit`` (changes with ``seed``)."""
    if not 0 <= digit < classes:
        raise CnnvizError(f"class must be 0..{classes - 1}, got {digit}")
    candidates = np.flatnonzero(labels == digit)
    if candidates.size == 0:
        raise CnnvizError(f"no image of class {digit} in the data set")
    return int(np.random.default_rng(seed).choice(candidates))


@dataclass
class InputChoice:
    """One model-ready input image with its label (if known), where it came from, and notes on
    how it was converted."""

    image: np.ndarray
    label: int | None
    source: str
    notes: list[str] = field(default_factory=list)
    class_name: str | None = None


def select_input(shape: tuple[int | None, ...], value_range: Any = (0.0, 1.0), *,
                 digit: int | None = None, index: int | None = None,
                 image: str | Path | None = None, dataset: Any = None, seed: int = 0,
                 invert: bool = False) -> InputChoice:
    """Choose one input: an image of class ``digit`` of the data (drawn with ``seed``), the
    image at ``index``, or an image file; with none given, a 6. The data (any source; a data
    set's test split; by default the bundled digits, for a 28×28×1 ``shape`` only) gives
    images and labels. Converted to ``shape``
    — where it says ``None`` (a model of any size), the image keeps its own size — and
    ``value_range`` (a (lo, hi) pair or a Preprocess)."""
    check_seed(seed)
    if sum(option is not None for option in (digit, index, image)) > 1:
        raise CnnvizError("choose one input: --class (--digit), --index or --image")
    notes: list[str] = []
    if image is not None:
        pixels, label, name = read_image(image, notes), None, Path(image).name
        where, classes = f"image {name}", ""
    else:
        source = data_for(shape, None) if dataset is None else as_source(dataset)
        if source is None:
            size = "×".join("any" if s is None else str(s) for s in shape)
            raise CnnvizError(f"the input is missing: the model takes {size} images, not the "
                              "bundled 28×28×1 digits; give an image or data")
        if index is None:
            labels = source.labels()
            if labels is None:
                raise CnnvizError(f"{source.name} has no labels: choose an image with --index")
            index = pick_digit(labels, 6 if digit is None else digit, seed,
                               max(len(source.class_names), 1))
        raw, found = source.gather([index], None)
        item = source.item_name(index)  # a folder's file, else "#index"
        name = f"image {index}" if item.startswith("#") else item
        pixels = to_unit_range(raw[0], source="image")
        label = None if found is None else int(found[0])
        where, classes = f"{source.name} {name}", source.class_name(label)
    target = _fill(shape, pixels.shape)
    notes += _conversion_notes(name, pixels, target)
    return InputChoice(to_model_input(pixels, target, value_range, invert=invert), label, where,
                       notes, classes or None)


def _fill(shape: tuple[int | None, ...], own: tuple[int, ...]) -> Shape:
    """The model's input shape, with an image's own height and width where it has ``None``."""
    return (own[0] if shape[0] is None else shape[0], own[1] if shape[1] is None else shape[1],
            int(shape[2]))  # type: ignore[arg-type]


def _conversion_notes(name: str, pixels: np.ndarray, shape: Shape) -> list[str]:
    notes = []
    if pixels.ndim == 3 and pixels.shape[-1] >= 3 and shape[-1] == 1:
        notes.append(f"{name}: colour converted to grey")
    if pixels.shape[:2] != shape[:2]:
        notes.append(f"{name}: resized from {pixels.shape[1]}×{pixels.shape[0]} to "
                     f"{shape[1]}×{shape[0]}")
    return notes
