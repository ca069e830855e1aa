"""``filters``: optimal input patterns, their resumption and redrawing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.units import OutputUnit, check_unit
from cnnviz.data.sources import bundled_fits, data_for, no_data_note
from cnnviz.jobs.common import InputSpec, Outcome, check_checkpoint, choose_input
from cnnviz.model.facts import (
    ModelFacts,
    default_layer,
)
from cnnviz.oip.filters import chosen_filters, resume_filters, visualize_filters
from cnnviz.oip.optimize import ProgressFn
from cnnviz.oip.presets import preset
from cnnviz.oip.settings import DEFAULT_BUDGET, MemoryPlan, bytes_per_image
from cnnviz.parts.kinds import FilterWork, filters_in_parts
from cnnviz.render import views
from cnnviz.results import FilterResult
from cnnviz.results.filters import ChunkState


@dataclass(frozen=True)
class AscentSpec:
    """How ``cnnviz filters`` ascends: a preset with overrides (Settings fields; ``jitter``,
    ``scale``, ``rotate``, ``pad`` for the transforms; ``None`` keeps the preset's), the
    objective, the colour basis, the start (noise, grey, image:PATH, index:K, digit:D) and how
    many diverse images each filter gets; ``transparency``: each image faded where its unit
    answers little."""

    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)
    objective: str = "auto"
    colour: str = "auto"
    start: str | None = None
    diversity: int = 1
    diversity_weight: float = 0.5
    closeness: float = 0.0
    transparency: bool = False


def start_input(spec: str) -> tuple[str, InputSpec | None]:
    """``--start``: the start kind and, for a real image, which one."""
    kind, _, value = spec.partition(":")
    if kind in ("noise", "grey") and not value:
        return kind, None
    try:
        if kind == "image" and value:
            return "image", InputSpec(image=Path(value))
        if kind in ("index", "digit") and value:
            return "image", InputSpec(**{kind: int(value)})
    except ValueError:
        pass
    raise CnnvizError(f"bad start '{spec}': use noise, grey, image:PATH, index:K or digit:D")


def filters_job(facts: ModelFacts, out: Path, ascent: AscentSpec | None = None, *,
                layer: str | None = None, filters: str | list[int] | None = None,
                reference: bool = True, examples: int = 0, data: Any = None,
                size: tuple[int, int] | None = None, order: str = "index",
                batch: int | None = None, budget: int = DEFAULT_BUDGET, force: bool = False,
                standalone: bool = False, progress: ProgressFn | None = None,
                checkpoint: float = 60.0, runner: Any = None) -> Outcome:
    """``cnnviz filters``: the optimal input pattern of each filter of a layer, compared with
    the real images of the data (skipped, with a note, when there are none). The running
    ascent is saved every ``checkpoint`` seconds (0: only at Ctrl-C) for ``--resume``; with
    ``runner`` (:class:`~cnnviz.parts.cluster.RayRunner`) the filters are computed in parts
    on a cluster instead, equal to the run in this process."""
    ascent = ascent or AscentSpec()
    views.check_order(order)
    check_checkpoint(checkpoint)
    unit = OutputUnit(out, "filters", force, main="filters.npz")
    name = layer or default_layer(facts.model)
    chosen = chosen_filters(facts, name, filters).tolist()
    notes = list(facts.notes)
    shape, size_note = facts.default_size(size)
    notes += [size_note] if size_note else []
    real = data_for(facts.input_shape, data)
    if (reference or examples) and real is None:
        notes.append(no_data_note(facts.name, facts.input_shape,
                                  "the comparison with real images"))
    kind, which = start_input(ascent.start) if ascent.start else (None, None)
    start = None
    if which is not None:
        choice, _ = choose_input(facts, replace(which, data=data, size=shape[:2]))
        start, notes = choice.image, notes + choice.notes + [f"started from {choice.source}"]
    pixels = None
    if ascent.colour == "data" and real is not None:
        pixels = real.gather(np.arange(min(256, real.size() or 256)), shape)[0] / 255.0
    settings = preset(ascent.preset, facts, name, shape, colour=ascent.colour,
                      data_pixels=pixels, diversity=ascent.diversity,
                      **{**ascent.overrides, "start": kind})
    options = {"objective": ascent.objective, "size": size, "start_image": start,
               "diversity": ascent.diversity, "diversity_weight": ascent.diversity_weight,
               "closeness": ascent.closeness, "transparency": ascent.transparency,
               "reference_images": real if reference or examples else None,
               "examples": examples if real is not None else 0, "budget": budget}
    with unit:
        if runner is not None:
            work = FilterWork(facts, name, chosen, settings, batch or 64, batch=batch, **options)
            result = filters_in_parts(work, runner, progress)
        else:
            result = visualize_filters(facts, name, chosen, settings, batch=batch,
                                       on_progress=progress, checkpoint_every=checkpoint,
                                       on_checkpoint=lambda part: part.save(unit.checkpoint,
                                                                            twin=False),
                                       **options)
        outcome = filters_outcome(facts, result, unit, order, budget, standalone)
    outcome.notes = notes
    return outcome


def resume_filters_job(facts: ModelFacts, out: Path, *, data: Any = None, order: str = "index",
                       batch: int | None = None, budget: int = DEFAULT_BUDGET,
                       standalone: bool = False, progress: ProgressFn | None = None,
                       checkpoint: float = 60.0) -> Outcome:
    """``cnnviz filters --resume``: finish the interrupted run saved in ``out`` (its latest
    checkpoint where a crash left one, else the result Ctrl-C saved)."""
    views.check_order(order)
    check_checkpoint(checkpoint)
    unit = OutputUnit(out, "filters", force=True)  # the interrupted run's own unit
    if not unit.checkpoint.exists() and (out / "filters.npz").exists():
        check_unit(out / "filters.npz", "filters")
    with unit:
        if unit.checkpoint.exists():
            previous = FilterResult.load(unit.checkpoint)
        elif (out / "filters.npz").exists():
            previous = FilterResult.load(out / "filters.npz")
        else:
            raise CnnvizError(f"nothing to resume: no filters.npz in {out}")
        if not previous.interrupted:
            raise CnnvizError(f"{out / 'filters.npz'} is complete: nothing to resume")
        compared = bool(previous.params.get("compared", previous.best_real is not None))
        if compared and data is None and not bundled_fits(facts.input_shape):
            raise CnnvizError("the saved run compared with real images: give them again with "
                              "--data")
        result = resume_filters(facts, previous, batch=batch, budget=budget,
                                on_progress=progress, checkpoint_every=checkpoint,
                                on_checkpoint=lambda part: part.save(unit.checkpoint,
                                                                     twin=False),
                                reference_images=data_for(facts.input_shape, data)
                                if compared else None)
        return filters_outcome(facts, result, unit, order, budget, standalone)


def _running(state: ChunkState) -> str:
    """The running chunk in words: "running 4 filters" or their precursors."""
    n = len(state.filters)
    what = f"{n} running filter{'s' if n != 1 else ''}"
    return what + "' precursors" if state.phase == "precursors" else what


def redraw_filters_job(saved: Path, out: Path, *, order: str = "index", force: bool = False,
                       standalone: bool = False) -> Outcome:
    """``cnnviz filters --from``: the galleries of saved results, without recomputing."""
    check_unit(saved, "filters")
    result = FilterResult.load(saved)
    with OutputUnit(out, "filter-views", force, main="filters.html").writing() as written:
        written += views.write_filter_views(result, out, order=order, standalone=standalone)
    outcome = Outcome(written)
    outcome.lines = [f"redrew {len(result.filters)} filters; {outcome.wrote()}"]
    return outcome


def filters_outcome(facts: ModelFacts, result: FilterResult, unit: OutputUnit, order: str,
                    budget: int, standalone: bool) -> Outcome:
    """Write a filter run's unit (results and galleries) and say what it found."""
    with unit.writing() as written:
        written += result.save(unit.folder / "filters.npz")
        if len(result.filters):
            written += views.write_filter_views(result, unit.folder, order=order,
                                                standalone=standalone)
    shape = tuple(result.images.shape[1:]) if len(result.images) else None
    plan = MemoryPlan(bytes_per_image(facts.model, result.layer, shape), budget,
                      result.params["chunk"], len(result.requested))
    outcome = Outcome(written, [plan.describe(), result.summary()])
    outcome.lines += [f"  filter {f}: {note}" for f, note in result.notes.items()]
    outcome.lines.append(outcome.wrote())
    if result.interrupted:
        running = result.pending
        outcome.interrupted = (f"saved {len(result.filters)} of {len(result.requested)} "
                               "filters" + (f" and the {_running(running)} at step "
                                            f"{running.step}" if running else "")
                               + "; --resume continues")
    return outcome
