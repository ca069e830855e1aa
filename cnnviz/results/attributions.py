"""Attribution maps of inputs, as their methods computed them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.results.store import (
    Meta,
    named_arrays,
    numbered,
    read_result,
    save_arrays,
    stacked,
)


@dataclass
class Attributions:
    """Attribution maps of inputs for target classes: ``maps[method]`` is (N, H, W, C) for
    gradient methods and (N, H, W) for class activation maps, as the method computed them."""

    inputs: np.ndarray
    maps: dict[str, np.ndarray]
    targets: np.ndarray
    probabilities: np.ndarray
    meta: Meta = field(default_factory=Meta)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """Method names, as computed."""
        return list(self.maps)

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class of each input."""
        return np.argmax(self.probabilities, axis=-1)

    def completeness(self) -> tuple[np.ndarray, np.ndarray]:
        """Integrated gradients' completeness error per input — the attributions' sum minus the
        score change — and that score change."""
        if "completeness" not in self.params or "integrated_gradients" not in self.maps:
            raise CnnvizError("these attributions hold no integrated gradients")
        delta = np.asarray(self.params["completeness"], np.float64)
        total = self.maps["integrated_gradients"].reshape(len(delta), -1).sum(axis=1)
        return delta, total - delta

    def signed(self, method: str) -> bool:
        """Whether the method's map is signed (gradient methods) or non-negative by definition
        (the class-activation-map family)."""
        return bool(self.params.get("signed", {}).get(method, self.maps[method].ndim == 4))

    def displayed(self) -> dict[str, np.ndarray]:
        """Per method, the (N, H, W) map shown: signed maps summed over the colour channels
        (the first-order effect of brightening a pixel), non-negative maps as computed."""
        return {name: to_display(maps, self.signed(name)) for name, maps in self.maps.items()}

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (.npz) and its ``.json`` twin."""
        arrays = {"inputs": self.inputs, "targets": self.targets,
                  "probabilities": self.probabilities, **numbered("map", self.maps)}
        return save_arrays(path, "attributions", arrays, self.meta, self.params, maps=self.methods)

    @classmethod
    def load(cls, path: str | Path) -> Attributions:
        """Read what :meth:`save` wrote."""
        return read_result(path, "attributions", lambda a, meta, params, saved: cls(
            a["inputs"], named_arrays("map", a, saved["maps"]), a["targets"],
            a["probabilities"], meta, params), ("inputs", "map_", "targets", "probabilities"))

    def merged(self, other: Attributions) -> Attributions:
        """These inputs followed by ``other``'s (the same model and methods)."""
        self.meta.same_run(other.meta, "attributions")
        if other.methods != self.methods:
            raise CnnvizError("cannot merge attributions of different methods")
        return Attributions(np.concatenate([self.inputs, other.inputs]),
                            stacked(self.maps, other.maps),
                            np.concatenate([self.targets, other.targets]),
                            np.concatenate([self.probabilities, other.probabilities]),
                            self.meta, self.params)


def to_display(attribution: np.ndarray, signed: bool = True) -> np.ndarray:
    """One (N, H, W) map per image: a signed (N, H, W, C) attribution summed over channels, an
    unsigned one's largest magnitude over channels; (N, H, W) maps unchanged."""
    attribution = np.asarray(attribution)
    if attribution.ndim != 4:
        return attribution
    return attribution.sum(axis=-1) if signed else np.abs(attribution).max(axis=-1)
