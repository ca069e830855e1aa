"""The result of an ascent: synthesized images for filters of a layer and how they compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.results.store import Meta, joined, read_result, save_arrays

PHASES = ("precursors", "main")


@dataclass
class ChunkState:
    """Where the ascent of a chunk of filters stood when it stopped: its filters, the phase
    (``precursors``: several starts per filter; ``main``), the steps done, the raw variables,
    which images stayed finite, their score curves so far and Adam's moments (``None`` for
    RMS steps, which keep none)."""

    filters: np.ndarray
    phase: str
    step: int
    raw: np.ndarray
    alive: np.ndarray
    curves: np.ndarray
    m: np.ndarray | None = None
    v: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray | None]:
        """Its arrays under the names a saved result keeps them."""
        return {"pending_filters": self.filters, "pending_raw": self.raw,
                "pending_alive": self.alive, "pending_curves": self.curves,
                "pending_m": self.m, "pending_v": self.v}

    @classmethod
    def read(cls, arrays: dict[str, np.ndarray], saved: dict[str, Any]) -> ChunkState | None:
        """The state :meth:`arrays` and ``{"phase", "step"}`` describe; ``None`` for none."""
        where = saved.get("pending")
        if not where:
            return None
        if where["phase"] not in PHASES or int(where["step"]) < 0:
            raise ValueError(f"no ascent phase {where['phase']!r} step {where['step']!r}")
        state = cls(arrays["pending_filters"].astype(np.int64), where["phase"],
                    int(where["step"]), arrays["pending_raw"], arrays["pending_alive"],
                    arrays["pending_curves"], arrays.get("pending_m"),
                    arrays.get("pending_v"))
        rows = len(state.raw)
        if len(state.alive) != rows or len(state.curves) != rows or \
                state.curves.shape[1] > state.step or \
                (state.curves.shape[1] == 0) != (state.step == 0) or \
                rows % max(1, len(state.filters)) or \
                any(x is not None and x.shape != state.raw.shape for x in (state.m, state.v)):
            raise ValueError("the running chunk's arrays do not fit together")
        return state


@dataclass
class FilterResult:
    """Synthesized images for filters of a layer, how strongly each activates its filter, and
    everything needed to redraw them without recomputing (``params``: the ascent settings)."""

    filters: np.ndarray
    images: np.ndarray
    activation: np.ndarray
    post_max: np.ndarray
    curves: np.ndarray
    meta: Meta = field(default_factory=Meta)
    params: dict[str, Any] = field(default_factory=dict)
    best_real: np.ndarray | None = None
    notes: dict[int, str] = field(default_factory=dict)
    interrupted: bool = False
    example_images: np.ndarray | None = None
    example_values: np.ndarray | None = None
    example_indices: np.ndarray | None = None
    example_labels: np.ndarray | None = None
    post_value: np.ndarray | None = None
    start_image: np.ndarray | None = None
    pending: ChunkState | None = None
    alpha: np.ndarray | None = None  # (K, H, W) evidence in 0..1, drawn as transparency

    @property
    def layer(self) -> str:
        """The layer whose filters these are."""
        return self.meta.layers[0]

    @property
    def dead(self) -> np.ndarray:
        """Filters whose map stays zero after the activation, even for their own image."""
        return self.post_max <= 0

    @property
    def output(self) -> np.ndarray:
        """What each filter outputs for its image, after its activation (the objective's
        measure: map mean, or centre unit); the optimized score for results that predate it."""
        return self.activation if self.post_value is None else self.post_value

    @property
    def ratio(self) -> np.ndarray:
        """:attr:`output` over the filter's best real image (NaN where that is ≤ 0 or
        unknown)."""
        if self.best_real is None:
            return np.full(len(self.filters), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.best_real > 0, self.output / self.best_real, np.nan)

    @property
    def beats_real(self) -> np.ndarray:
        """Whether each image makes its filter output more than any real image does."""
        if self.best_real is None:
            return np.zeros(len(self.filters), bool)
        return self.output > self.best_real

    @property
    def reaches_real(self) -> np.ndarray:
        """Whether each image makes its filter output at least as much as any real image does
        (to float32 precision: an optimum that real images reach too)."""
        if self.best_real is None:
            return np.zeros(len(self.filters), bool)
        return self.output >= self.best_real - 1e-5 * np.maximum(np.abs(self.best_real), 1.0)

    @property
    def measure(self) -> str:
        """What :attr:`output` and the real-image comparison measure, in words."""
        kind = self.params.get("objective_kind", "channel")
        if self.classes:
            return f"the class's {self.params.get('classes')}"
        return {"neuron": "the centre unit (real images: their strongest unit)",
                "layer": "the layer's mean square", "layer_pre": "the layer's mean square",
                "unit": "the unit's value"
                }.get(kind, "the map mean")

    @property
    def dream(self) -> bool:
        """Whether this is one DeepDream image for the whole layer."""
        return self.params.get("objective_kind") in ("layer", "layer_pre")

    @property
    def classes(self) -> bool:
        """Whether the units are the model's classes (the output layer's logits)."""
        return bool(self.params.get("classes"))

    @property
    def units(self) -> str:
        """What the images are of, in words: "filters", "units" or "classes"."""
        kind = self.params.get("objective_kind", "channel")
        return "classes" if self.classes else "units" if kind == "unit" else "filters"

    def unit_name(self, index: int) -> str:
        """A filter's or unit's number — for the output layer, its class's name."""
        return self.meta.class_name(int(index)) if self.classes else str(int(index))

    def patterns(self) -> np.ndarray:
        """The images as shown: for a neuron objective, the centre unit's receptive-field crop,
        enlarged (nearest pixel) to the full image size; otherwise the images themselves."""
        return self._as_shown(self.images)

    def transparency(self) -> np.ndarray | None:
        """Each image's evidence map (K, H, W in 0..1) as :meth:`patterns` shows the image, or
        None when the run did not measure it."""
        return None if self.alpha is None else self._as_shown(self.alpha)

    def _as_shown(self, images: np.ndarray) -> np.ndarray:
        """``images`` (K, H, W, …) cut to the centre unit's receptive field where the gallery
        shows it, enlarged (nearest pixel) to the full size."""
        crop = self.params.get("crop")
        if not crop or not len(images):
            return images
        top, bottom, left, right = crop
        height, width = images.shape[1:3]
        rows = top + np.arange(height) * (bottom - top) // height
        cols = left + np.arange(width) * (right - left) // width
        return images[:, rows][:, :, cols]

    @property
    def requested(self) -> list[int]:
        """The filters the run was asked for (some may be missing after an interruption)."""
        return [int(f) for f in self.params.get("requested", self.filters)]

    def summary(self) -> str:
        """One line: filters, objective, what they output after the activation, dead filters,
        and the share that beat their best real image on the same measure."""
        if not len(self.filters):
            return f"{self.layer}: no filter finished yet"
        live = ~self.dead
        when = "before" if self.params.get("preactivation") else "after"
        copies = int(self.params.get("diversity", 1))
        what = "one image for all maps" if self.dream \
            else f"{len(self.filters) // copies} {self.units}" + (
                f" × {copies} diverse images" if copies > 1 else "")
        precision = self.params.get("precision", "float32")
        if precision != "float32" or "auto" in self.params.get("precision_reason", ""):
            what += f", ascent in {precision} ({self.params.get('precision_reason', '')})"
        line = (f"{self.layer}: {what} in chunks of {self.params.get('chunk', '?')}; objective "
                f"{self.params.get('objective', '?')}, {when} the activation; output after it, "
                f"{self.measure}: mean "
                f"{self.output[live].mean() if live.any() else float('nan'):.3f}")
        dead = int(self.dead.sum())
        if dead:
            line += (f"; {dead} dead filter(s) (zero after the activation even for their own "
                     "image) left out of these numbers")
        seen = self.params.get("prediction")
        if seen:
            names = [self.meta.class_name(c) for c in seen]
            line += (f"; the model's prediction changed from {names[0]} to {names[1]}"
                     if names[0] != names[1] else f"; the model's prediction stayed {names[0]}")
        if self.best_real is not None and live.any():
            beats = int(self.beats_real[live].sum())
            ties = int(self.reaches_real[live].sum()) - beats
            line += (f"; {beats} of {int(live.sum())} live filters ({beats / live.sum():.0%}) "
                     f"beat their best real image of {self.meta.data or 'the data'}"
                     + (f" and {ties} more equal it" if ties > 0 else ""))
        return line

    def save(self, path: str | Path, twin: bool = True) -> tuple[Path, ...]:
        """Write ``path`` (.npz) and its ``.json`` twin (with ``twin=False`` the metadata goes
        inside the one ``.npz``, which then appears in one step: a checkpoint)."""
        pending = self.pending
        arrays = {**(pending.arrays() if pending else {}), "filters": self.filters,
                  "images": self.images, "activation": self.activation,
                  "post_max": self.post_max, "curves": self.curves, "best_real": self.best_real,
                  "example_images": self.example_images, "example_values": self.example_values,
                  "example_indices": self.example_indices, "example_labels": self.example_labels,
                  "post_value": self.post_value, "start_image": self.start_image,
                  "alpha": self.alpha}
        return save_arrays(path, "filters", arrays, self.meta, self.params,
                           notes={str(k): v for k, v in self.notes.items()},
                           interrupted=self.interrupted, twin=twin,
                           pending={"phase": pending.phase, "step": pending.step} if pending
                           else None)

    @classmethod
    def load(cls, path: str | Path) -> FilterResult:
        """Read what :meth:`save` wrote."""
        rows = ("filters", "images", "activation", "post_max", "curves", "best_real",
                "example_", "post_value", "alpha")
        return read_result(path, "filters", lambda a, meta, params, saved: cls(
            a["filters"], a["images"], a["activation"], a["post_max"], a["curves"], meta,
            params, a.get("best_real"), {int(k): v for k, v in saved["notes"].items()},
            bool(saved["interrupted"]), a.get("example_images"), a.get("example_values"),
            a.get("example_indices"), a.get("example_labels"), a.get("post_value"),
            a.get("start_image"), ChunkState.read(a, saved), a.get("alpha")), rows,
            ("filters", "example_indices", "example_labels", "pending_filters"))

    def merged(self, other: FilterResult) -> FilterResult:
        """This result and ``other`` (more filters of the same run) as one, in the order the
        run requested its filters."""
        self.meta.same_run(other.meta, "filter results")
        requested = self.requested
        parts = [self, other]
        filters = np.concatenate([self.filters, other.filters])
        rank = {f: i for i, f in enumerate(requested)}
        order = np.argsort([rank.get(int(f), len(rank) + int(f)) for f in filters], kind="stable")

        def pick(name: str) -> np.ndarray | None:
            values = joined(parts, name)
            return None if values is None else values[order]

        done = {int(f) for f in filters}
        params = dict(self.params)
        names = [p.params.get("example_names") for p in parts]
        if all(n is not None for n in names):  # each image's real examples, in the new order
            params["example_names"] = [[*names[0], *names[1]][i] for i in order]
        return FilterResult(
            filters[order], pick("images"), pick("activation"), pick("post_max"),
            pick("curves"), self.meta, params, pick("best_real"),
            {**self.notes, **other.notes}, any(f not in done for f in requested),
            pick("example_images"), pick("example_values"), pick("example_indices"),
            pick("example_labels"), pick("post_value"), self.start_image, other.pending,
            pick("alpha"))
