"""How an ascent runs: its settings (validated once, here) and its memory plan."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError, check_finite, check_seed
from cnnviz.core.tables import (
    PARAMETERIZATIONS,
    PENALTIES,
    PRECISIONS,
    STARTS,
    UPDATES,
    Table,
)
from cnnviz.model.facts import list_layers
from cnnviz.oip.pieces import Penalty, Piece, Update
from cnnviz.oip.transforms import Transforms

DEFAULT_BUDGET = 512 * 2**20


@dataclass(frozen=True)
class Settings:
    """How to ascend. ``lr`` is a fraction of the input value range per step for the pixel
    parameterization and raw coefficient units for fourier; the last ``settle`` share of the
    steps runs without the random transforms, as do the ``precursors`` (short runs of
    ``precursor_steps`` from as many starts per image, the best one continuing). ``update``
    is a rule of ``tables.UPDATES`` by name or an :class:`~cnnviz.oip.pieces.Update`; ``tv``,
    ``l1``, ``l2`` and ``ink`` weigh the penalties of ``tables.PENALTIES``, and ``penalties``
    adds any :class:`~cnnviz.oip.pieces.Penalty` objects. ``precision``
    (``tables.PRECISIONS``) is the float type of the model's passes; ``auto`` is settled when
    the ascent starts."""

    steps: int = 100
    update: str | Update = "rms"
    lr: float = 0.05
    param: str = "pixel"
    decay: float = 1.0
    colour: tuple[float, ...] = ()
    start: str = "noise"
    wavelengths: tuple[float, ...] = (14.0, 7.0, 3.5, 1.75)
    amplitude: float = 0.15
    noise: float = 0.02
    precursors: int = 0
    precursor_steps: int = 20
    transforms: Transforms = field(default_factory=Transforms)
    settle: float = 0.0
    tv: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    ink: float = 0.0
    penalties: tuple[Penalty, ...] = ()
    blur_every: int = 0
    blur_sigma: float = 0.5
    preactivation: bool = True
    seed: int = 0
    jit_compile: bool = False
    precision: str = "float32"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        """The settings recorded in a result's ``params`` (to resume a run exactly)."""
        names = {f.name for f in fields(cls)} - {"transforms", "update", "penalties"}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()
                  if k in names}
        moves = {k: tuple(v) if isinstance(v, list) else v
                 for k, v in params.get("transforms", {}).items()}
        update = params.get("update", "rms")
        return cls(**values, transforms=Transforms(**moves),
                   update=update if isinstance(update, str) else _piece(UPDATES, update),
                   penalties=tuple(_piece(PENALTIES, p) for p in params.get("penalties", [])))

    def to_params(self) -> dict[str, Any]:
        """The settings as JSON values, as :meth:`from_params` reads them."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**values, "transforms": asdict(self.transforms),
                "update": self.update if isinstance(self.update, str)
                else self.update.describe(),
                "penalties": [p.describe() for p in self.penalties]}

    @property
    def updater(self) -> Update:
        """The update rule as an object."""
        return UPDATES[self.update].load()() if isinstance(self.update, str) else self.update

    @property
    def all_penalties(self) -> tuple[Penalty, ...]:
        """Every penalty as an object: those ``tv``, ``l1``, ``l2`` and ``ink`` weigh, then
        ``penalties``."""
        weighed = [PENALTIES[name].load()(weight) for name, weight in
                   (("tv", self.tv), ("l1", self.l1), ("l2", self.l2), ("ink", self.ink))
                   if weight]
        return (*weighed, *self.penalties)

    @property
    def counted_steps(self) -> int:
        """The steps one chunk's progress counts: the precursors' short runs (a step of all
        their starts counts once), then the ascent."""
        return self.steps + (self.precursor_steps if self.precursors else 0)

    def step_key(self) -> tuple[Any, ...]:
        """What a compiled ascent step depends on, by value: runs that differ only in steps,
        seed, start, precursors or settle share one."""
        return (self.updater.key, self.lr, self.param, self.decay, self.colour,
                self.transforms, tuple(p.key for p in self.all_penalties), self.blur_every,
                self.blur_sigma, self.preactivation, self.jit_compile, self.precision)

    def __post_init__(self) -> None:
        check_finite(("the learning rate", self.lr), ("decay", self.decay),
                     ("amplitude", self.amplitude), ("noise", self.noise),
                     ("settle", self.settle), ("tv", self.tv), ("l1", self.l1), ("l2", self.l2),
                     ("ink", self.ink),
                     ("blur sigma", self.blur_sigma),
                     *(("a wavelength", w) for w in self.wavelengths),
                     *(("the colour basis", c) for c in self.colour))
        check_seed(self.seed)
        if not self.wavelengths or min(self.wavelengths) <= 0:
            raise CnnvizError("the start's wavelengths must be one or more positive lengths "
                              f"in pixels, got {', '.join(map(str, self.wavelengths)) or 'none'}")
        if self.steps <= 0:
            raise CnnvizError(f"steps must be positive, got {self.steps}")
        if self.steps > MAX_STEPS:
            raise CnnvizError(f"steps must be at most {MAX_STEPS:,} (days of work at 10 ms a "
                              f"step), got {self.steps:,}")
        if isinstance(self.update, str):
            UPDATES.check(self.update)
        elif not isinstance(self.update, Update):
            raise CnnvizError(f"update must be one of {', '.join(UPDATES.names())} or an "
                              f"Update, got {self.update!r}")
        if not all(isinstance(p, Penalty) for p in self.penalties):
            raise CnnvizError("penalties must be Penalty objects (cnnviz.oip.pieces)")
        PARAMETERIZATIONS.check(self.param)
        STARTS.check(self.start)
        PRECISIONS.check(self.precision)
        if self.colour and (len(self.colour) != 9 or self.param == "pixel"):
            raise CnnvizError("a colour basis is 9 numbers and needs the fourier or maco "
                              "parameterization")
        if self.lr <= 0:
            raise CnnvizError(f"learning rate must be positive, got {self.lr}")
        if self.precursors < 0 or (self.precursors and self.precursor_steps <= 0):
            raise CnnvizError("precursors must be ≥ 0, with precursor steps > 0")
        if not 0 <= self.settle < 1:
            raise CnnvizError(f"settle is a share of the steps in [0, 1), got {self.settle}")
        if min(self.tv, self.l1, self.l2, self.ink, self.blur_every, self.blur_sigma) < 0:
            raise CnnvizError("penalties, blur interval and blur sigma must be ≥ 0")


def _piece(table: Table, described: dict[str, Any]) -> Piece:
    """A piece from :meth:`~cnnviz.oip.pieces.Piece.describe`'s values; one cnnviz does not
    ship cannot be rebuilt from them."""
    values = dict(described)
    kind = values.pop("kind", "")
    if kind not in table.names():
        raise CnnvizError(f"the run used {table.what} {kind}, which is not one of cnnviz's "
                          f"({', '.join(table.names())}): continue it from Python, passing "
                          "the same Settings")
    return table[kind].load()(**values)


def bytes_per_image(model: Any, layer: str, shape: tuple[int, int, int] | None = None) -> int:
    """Rough memory one image needs in a step: the float32 outputs of every layer up to
    ``layer``, kept for the backward pass and matched by gradients (×3). ``shape`` is the input
    for a model that takes any size."""
    if shape is not None and None in tuple(model.inputs[0].shape[1:]):
        return _bytes_at(model, layer, shape)
    total = int(np.prod(model.inputs[0].shape[1:]))
    for info in list_layers(model):
        # A nested model's output is its last layer's, already counted inside it.
        if info.output_shape and info.type not in ("Functional", "Sequential"):
            total += int(np.prod([s for s in info.output_shape[1:] if s]))
        if info.name == layer:
            break
    return 4 * 3 * total


def _bytes_at(model: Any, layer: str, shape: tuple[int, int, int]) -> int:
    """:func:`bytes_per_image` where the sizes come from ``shape``: the top-level layers' output
    shapes inferred for it (a nested model counts as its output)."""
    from cnnviz.core.backend import keras

    names = [item.name for item in model.layers if type(item).__name__ != "InputLayer"]
    upto = names[:names.index(layer.split("/")[0]) + 1]
    outputs = [model.get_layer(name).output for name in upto]
    shapes = keras().Model(model.inputs, outputs).compute_output_shape((1, *shape))
    shapes = [shapes] if len(outputs) == 1 else shapes
    return 4 * 3 * (int(np.prod(shape)) + sum(int(np.prod(s[1:])) for s in shapes))


# What each image's ascent records per step besides its activations: 8 transform parameters and
# one score, float32 — for at most RECORD_STEPS steps, however long the ascent (the transforms
# are drawn 4,096 steps at a time and a score curve keeps 4,096 points).
RECORD_BYTES = 9 * 4
RECORD_STEPS = 4096
MAX_STEPS = 10**8  # ~12 days at 10 ms a step: a larger number is a typo


def chunk_size(model: Any, layer: str, n: int, batch: int | None = None,
               budget: int = DEFAULT_BUDGET, shape: tuple[int, int, int] | None = None,
               steps: int = 0) -> int:
    """Images per compiled step: ``batch`` if given, else as many as fit ``budget`` bytes
    (each image's activations in a step and the record of its ``steps``)."""
    if batch is not None:
        if batch <= 0:
            raise CnnvizError(f"batch must be positive, got {batch}")
        return min(batch, n)
    per_image = bytes_per_image(model, layer, shape) + min(steps, RECORD_STEPS) * RECORD_BYTES
    return max(1, min(n, budget // per_image))


@dataclass(frozen=True)
class MemoryPlan:
    """How many images go through one compiled step, and why."""

    per_image: int
    budget: int
    chunk: int
    images: int

    @property
    def chunks(self) -> int:
        """How many compiled steps one ascent step takes."""
        return -(-self.images // self.chunk)

    def describe(self) -> str:
        """One line for the terminal."""
        return (f"memory: ~{self.per_image / 2**20:.2f} MiB per image in a step; budget "
                f"{self.budget / 2**20:g} MiB → {self.chunks} chunk(s) of up to {self.chunk} "
                "images")


def memory_plan(model: Any, layer: str, images: int, batch: int | None = None,
                budget: int = DEFAULT_BUDGET, shape: tuple[int, int, int] | None = None,
                steps: int = 0) -> MemoryPlan:
    """The chunking of ``images`` ascent images of ``layer`` within ``budget`` bytes (or
    ``batch`` images a step, when given); ``shape`` is the input of a model of any size.
    Refused before any work when one image — its activations in a step and the record of its
    ``steps`` — does not fit the budget."""
    if budget <= 0:
        raise CnnvizError(f"the memory budget must be positive, got {budget / 2**20:g} MiB")
    per_image = bytes_per_image(model, layer, shape) + min(steps, RECORD_STEPS) * RECORD_BYTES
    if batch is None and per_image > budget:
        raise CnnvizError(f"one image needs ~{per_image / 2**20:,.1f} MiB (its activations up to "
                          f"'{layer}' in a step and the record of its steps): more than the "
                          f"{budget / 2**20:g} MiB budget; raise --budget")
    return MemoryPlan(per_image, budget,
                      chunk_size(model, layer, images, batch, budget, shape, steps), images)


def examples_that_fit(filters: int, shape: tuple[int, int, int],
                      budget: int = DEFAULT_BUDGET) -> int:
    """How many real example images per filter a result can keep within ``budget`` bytes."""
    return budget // max(1, filters * int(np.prod(shape)) * 4)
