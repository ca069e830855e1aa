"""The result of a filter visualization: images, activations and how they were made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.fileio import load_results, save_results


@dataclass
class FilterResult:
    """Synthesized images for filters of a layer, how strongly each activates its filter, and
    everything needed to redraw them without recomputing."""

    layer: str
    filters: np.ndarray
    images: np.ndarray
    activation: np.ndarray
    post_max: np.ndarray
    curves: np.ndarray
    best_real: np.ndarray | None = None
    notes: dict[int, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    example_images: np.ndarray | None = None
    example_values: np.ndarray | None = None
    example_indices: np.ndarray | None = None

    @property
    def dead(self) -> np.ndarray:
        """Filters whose map stays zero after the activation, even for their own image."""
        return self.post_max <= 0

    @property
    def ratio(self) -> np.ndarray:
        """Activation over the filter's best real image (NaN where that is ≤ 0 or unknown)."""
        if self.best_real is None:
            return np.full(len(self.filters), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.best_real > 0, self.activation / self.best_real, np.nan)

    @property
    def beats_real(self) -> np.ndarray:
        """Whether each image activates its filter more than any real image does."""
        if self.best_real is None:
            return np.zeros(len(self.filters), bool)
        return self.activation > self.best_real

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (.npz) and its ``.json`` twin."""
        arrays = {"filters": self.filters, "images": self.images, "activation": self.activation,
                  "post_max": self.post_max, "curves": self.curves}
        optional = {"best_real": self.best_real, "example_images": self.example_images,
                    "example_values": self.example_values,
                    "example_indices": self.example_indices}
        arrays.update({key: value for key, value in optional.items() if value is not None})
        meta = {"layer": self.layer, "notes": {str(k): v for k, v in self.notes.items()},
                "params": self.params, "interrupted": self.interrupted}
        return save_results(path, "filters", arrays, meta)

    @classmethod
    def load(cls, path: str | Path) -> FilterResult:
        """Read what :meth:`save` wrote."""
        a, meta = load_results(path, "filters")
        return cls(meta["layer"], a["filters"], a["images"], a["activation"], a["post_max"],
                   a["curves"], a.get("best_real"), {int(k): v for k, v in meta["notes"].items()},
                   meta["params"], meta["interrupted"], a.get("example_images"),
                   a.get("example_values"), a.get("example_indices"))

    def merged(self, other: FilterResult) -> FilterResult:
        """This result and ``other`` (more filters of the same run) as one, in the order the
        run requested its filters."""
        if other.layer != self.layer:
            raise ValueError("results of different layers")
        requested = list(self.params.get("requested", [])) or list(self.filters)
        parts = (self, other)

        def joined(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        filters = np.concatenate([self.filters, other.filters])
        rank = {f: i for i, f in enumerate(requested)}
        order = np.argsort([rank.get(int(f), len(rank) + int(f)) for f in filters], kind="stable")

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[order]

        done = {int(f) for f in filters}
        return FilterResult(
            self.layer, filters[order], pick(joined("images")), pick(joined("activation")),
            pick(joined("post_max")), pick(joined("curves")), pick(joined("best_real")),
            {**self.notes, **other.notes}, self.params,
            any(f not in done for f in requested), pick(joined("example_images")),
            pick(joined("example_values")), pick(joined("example_indices")))
