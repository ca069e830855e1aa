"""Shared by the jobs: what a job returns, and which one input it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.timing import timed
from cnnviz.data.inputs import InputChoice, select_input
from cnnviz.data.readers import Source
from cnnviz.data.sources import data_for, no_data_note
from cnnviz.model.facts import (
    ModelFacts,
)


@dataclass
class Outcome:
    """What a command did: the files it wrote, lines for the terminal, notes on how the input
    was converted, and, when Ctrl-C stopped it, what was kept."""

    written: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: str | None = None

    def wrote(self, folder: Path | None = None) -> str:
        """"wrote N files to DIR/: a, b" (or the paths, without a folder)."""
        if folder is None:
            return f"wrote {', '.join(str(p) for p in self.written)}"
        return (f"wrote {len(self.written)} files to {folder}/: "
                + ", ".join(p.name for p in self.written))


@dataclass(frozen=True)
class InputSpec:
    """Which one input a command reads: an image file, or an image of the data (a class drawn
    with ``seed``, or an index); ``size`` for a model that takes any."""

    image: Path | None = None
    digit: int | None = None
    index: int | None = None
    data: Any = None
    size: tuple[int, int] | None = None
    seed: int = 0
    invert: bool = False


@timed("load")
def choose_input(facts: ModelFacts, spec: InputSpec) -> tuple[InputChoice, Source | None]:
    """The input, and the data it came from (with ``--image``, the ``--data`` given: its class
    names and references); no data for a model the bundled digits do not fit is an error
    naming what to give."""
    source = None if spec.image is not None and spec.data is None else \
        data_for(facts.input_shape, spec.data)
    if spec.image is None and source is None:
        raise CnnvizError(no_data_note(facts.name, facts.input_shape, "the input", "is missing",
                                       "--image or --data"))
    shape = facts.image_shape(spec.size) if spec.size else facts.input_shape
    choice = select_input(shape, facts.preprocess, digit=spec.digit, index=spec.index,
                          image=spec.image, dataset=source, seed=spec.seed, invert=spec.invert)
    return choice, source


# Inputs one grid of ``explain --indices`` holds.
MAX_INPUTS = 64


@timed("load")
def choose_inputs(facts: ModelFacts, spec: InputSpec, indices: str
                  ) -> tuple[list[InputChoice], Source]:
    """The images ``indices`` names (``"0-15,20"``) of the data, converted to one input size
    (the model's; for a model that takes any, ``spec.size`` or its default), and that data."""
    from cnnviz.core.text import number_spans

    if spec.image is not None or spec.digit is not None or spec.index is not None:
        raise CnnvizError("--indices chooses the inputs itself: drop --image, --class and "
                          "--index")
    source = data_for(facts.input_shape, spec.data)
    if source is None:
        raise CnnvizError(no_data_note(facts.name, facts.input_shape, "the inputs", "are missing",
                                       "--data"))
    chosen = list(dict.fromkeys(i for lo, hi in number_spans(indices, "index")
                                for i in range(lo, hi + 1)))
    if not chosen:
        raise CnnvizError("--indices names no image: use whole numbers like 0-15,20")
    if len(chosen) > MAX_INPUTS:
        raise CnnvizError(f"--indices names {len(chosen)} images; one grid holds at most "
                          f"{MAX_INPUTS}")
    size = source.size()
    if chosen[0] < 0 or (size is not None and max(chosen) >= size):
        bad = chosen[0] if chosen[0] < 0 else max(chosen)
        raise CnnvizError(f"index {bad} is out of range: {source.name} has {size} images "
                          f"(0..{size - 1})" if size else f"index {bad} is out of range")
    shape = facts.default_size(spec.size)[0] if facts.any_size else facts.input_shape
    return [select_input(shape, facts.preprocess, index=i, dataset=source, seed=spec.seed,
                         invert=spec.invert) for i in chosen], source


def check_checkpoint(seconds: float) -> None:
    """Refuse a checkpoint interval that is not a number of seconds ≥ 0."""
    if not np.isfinite(seconds) or seconds < 0:
        raise CnnvizError(f"--checkpoint must be a number of seconds ≥ 0 (0: only at Ctrl-C), "
                          f"got {seconds}")
