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
    """The input, and the data it came from; no data for a model the bundled digits do not fit
    is an error naming what to give."""
    source = None if spec.image is not None else data_for(facts.input_shape, spec.data)
    if spec.image is None and source is None:
        raise CnnvizError(no_data_note(facts.name, facts.input_shape, "the input", "is missing",
                                       "--image or --data"))
    shape = facts.image_shape(spec.size) if spec.size else facts.input_shape
    choice = select_input(shape, facts.preprocess, digit=spec.digit, index=spec.index,
                          image=spec.image, dataset=source, seed=spec.seed, invert=spec.invert)
    return choice, source


def check_checkpoint(seconds: float) -> None:
    """Refuse a checkpoint interval that is not a number of seconds ≥ 0."""
    if not np.isfinite(seconds) or seconds < 0:
        raise CnnvizError(f"--checkpoint must be a number of seconds ≥ 0 (0: only at Ctrl-C), "
                          f"got {seconds}")
