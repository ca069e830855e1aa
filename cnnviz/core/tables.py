"""One table per extension point: every name a user can choose, with its factory (imported on
first use, so that reading a table loads nothing heavy), its traits and a line of help. The
library's checks and dispatch, the CLI's choices and help and the explorer's menus read these
tables; a new attribution method or objective is its own module plus one row here."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cnnviz.core.errors import CnnvizError


@dataclass(frozen=True)
class Entry:
    """One choice: its ``name``, where its factory lives (``"module:attribute"``, or ``""``
    for a choice that is only a name), a line of ``help`` and its ``traits``."""

    name: str
    factory: str = ""
    help: str = ""
    traits: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The factory itself (imports its module)."""
        if not self.factory:
            raise CnnvizError(f"'{self.name}' has no factory")
        module, _, attribute = self.factory.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __getattr__(self, trait: str) -> Any:
        traits = self.__dict__.get("traits", {})
        if trait in traits:
            return traits[trait]
        raise AttributeError(trait)


class Table:
    """The choices of one extension point, in the order they are offered."""

    def __init__(self, what: str, *entries: Entry | str) -> None:
        self.what = what
        self.entries = tuple(e if isinstance(e, Entry) else Entry(e) for e in entries)
        self._by_name = {e.name: e for e in self.entries}

    def names(self, **traits: Any) -> tuple[str, ...]:
        """The names, in order; with ``traits``, those whose traits have these values."""
        return tuple(e.name for e in self.entries
                     if all(e.traits.get(k) == v for k, v in traits.items()))

    def __getitem__(self, name: str) -> Entry:
        """The entry of ``name``, or one line naming the choices."""
        if name not in self._by_name:
            names = self.names()
            choices = " or ".join(names) if len(names) == 2 else "one of " + ", ".join(names)
            raise CnnvizError(f"unknown {self.what} '{name}': use {choices}")
        return self._by_name[name]

    def check(self, name: str) -> str:
        """``name`` when it is one of the choices (else one line naming them)."""
        return self[name].name

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def metavar(self, *extra: str, **traits: Any) -> str:
        """``[a|b|c]`` for a command line's help (the names with ``traits``), with ``extra``
        forms after the names."""
        return "[" + "|".join([*self.names(**traits), *extra]) + "]"


_GRAD = "cnnviz.attribution.gradients:"
_CAM = "cnnviz.attribution.cams:"
# Traits: signed (the sign says raise or lower; else a non-negative map), layer (reads a conv
# layer's maps: the CAM family), seeded (draws random numbers), baseline (starts from a
# baseline and reports its completeness error).
ATTRIBUTIONS = Table(
    "attribution method",
    Entry("saliency", _GRAD + "Saliency", "the gradient of the score with respect to each pixel",
          {"signed": True, "layer": False, "seeded": False, "baseline": False}),
    Entry("smoothgrad", _GRAD + "smoothgrad", "saliency averaged over noisy copies",
          {"signed": True, "layer": False, "seeded": True, "baseline": False}),
    Entry("integrated_gradients", _GRAD + "IntegratedGradients",
          "the gradient along the path from a baseline, times the input's difference",
          {"signed": True, "layer": False, "seeded": False, "baseline": True}),
    Entry("gradcam", _CAM + "GradCAM", "the layer's maps weighted by their mean gradient",
          {"signed": False, "layer": True, "seeded": False, "baseline": False}),
    Entry("gradcam++", _CAM + "GradCAMPlusPlus", "Grad-CAM weighting the positive gradients",
          {"signed": False, "layer": True, "seeded": False, "baseline": False}),
    Entry("layercam", _CAM + "LayerCAM", "the maps weighted by their gradient, place by place",
          {"signed": False, "layer": True, "seeded": False, "baseline": False}),
)

# Traits: references (needs images of the data).
BASELINES = Table(
    "baseline",
    Entry("black", help="the darkest input", traits={"references": False}),
    Entry("blur", help="the input blurred", traits={"references": False}),
    Entry("noise", help="uniform noise", traits={"references": False}),
    Entry("mean", help="the mean image of the data", traits={"references": True}),
    Entry("expected", help="expected gradients over images of the data",
          traits={"references": True}),
)

_OBJ = "cnnviz.oip.objectives:"
OBJECTIVES = Table(
    "objective",
    Entry("auto", help="the centre neuron for a small receptive field, else the channel mean"),
    Entry("channel", _OBJ + "channel", "the mean of the filter's map"),
    Entry("neuron", _OBJ + "neuron", "the centre unit of the filter's map"),
    Entry("layer", _OBJ + "layer", "the mean square of every map (DeepDream)"),
)

PRESETS = Table(
    "preset",
    Entry("default", help="decorrelated Fourier image, colour decorrelation, random transforms"),
    Entry("classic", help="the seed blog's pixel ascent from long-range fluctuations"),
)

COLOURS = Table("colour basis", "auto", "imagenet", "data", "none")
UPDATES = Table("method", "rms", "adam")
PARAMETERIZATIONS = Table("parameterization", "pixel", "fourier")
FILL_MODES = Table("pad", "reflect", "nearest", "constant", "wrap")
ORDERS = Table("order", "index", "activation")
SCALES = Table("scale", "shared", "per-map")
SCHEDULES = Table("schedule", "inverse_time", "exponential", "constant")
PREPROCESSING = Table("preprocessing", "auto", "unit", "symmetric", "raw", "caffe", "torch")
SPLITS = Table("split", "train", "test")
HOLD_OUTS = Table("validation", "test", "none")
STARTS = Table("start", Entry("noise", traits={"image": False}),
               Entry("grey", traits={"image": False}), Entry("image", traits={"image": True}))

ALL = (ATTRIBUTIONS, BASELINES, OBJECTIVES, PRESETS, COLOURS, UPDATES, PARAMETERIZATIONS,
       FILL_MODES, ORDERS, SCALES, SCHEDULES, PREPROCESSING, SPLITS, HOLD_OUTS, STARTS)
