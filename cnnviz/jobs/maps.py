"""``activations``, ``kernels`` and ``patterns``: maps and weights of a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError, Stopped
from cnnviz.core.tables import PATTERN_VALUES, SCALES
from cnnviz.core.units import OutputUnit
from cnnviz.data.readers import Source
from cnnviz.data.sources import data_for, no_data_note
from cnnviz.jobs.common import InputSpec, Outcome, check_checkpoint, choose_input
from cnnviz.maps.activations import activations
from cnnviz.model.facts import (
    ModelFacts,
    conv_kernels,
    default_layer,
    list_layers,
    resolve_map_layers,
)
from cnnviz.model.graph import shown_map_layers
from cnnviz.model.receptive import map_grids
from cnnviz.oip.optimize import ProgressFn
from cnnviz.parts.engine import Tally, read_tally, save_tally
from cnnviz.parts.kinds import PatternWork, patterns_in_parts
from cnnviz.render import views
from cnnviz.render.outputs import output_bars
from cnnviz.results import ClassPatterns


def output_line(source: str, outputs: np.ndarray, classes: tuple[str, ...]) -> str:
    bars = output_bars(outputs, classes or None)
    if outputs.ndim == 1:
        return f"{source}: {bars.title}"
    return f"{source}: {bars.title} {', '.join(bars.names[:5])}"


def activations_job(facts: ModelFacts, out: Path, source: InputSpec, *,
                    layers: list[str] | None = None, scale: str = "shared",
                    force: bool = False, standalone: bool = False) -> Outcome:
    """``cnnviz activations``: every map of the chosen layers for one input — by default a
    readable selection on a big model (:func:`~cnnviz.model.graph.shown_map_layers`);
    ``["all"]`` for every convolution and pooling layer."""
    SCALES.check(scale)
    with OutputUnit(out, "activations", force, main="activations.npz") as unit:
        choice, data = choose_input(facts, source)
        names, chose = _drawn_layers(facts, layers, choice.image.shape[:2])
        labels = None if choice.label is None else np.asarray([choice.label])
        result = activations(facts, choice.image[None], names, data=choice.source,
                             labels=labels, classes=() if data is None else data.class_names)
        with unit.writing() as written:
            written += views.write_activation_views(result, out, scale=scale,
                                                    standalone=standalone,
                                                    title=f"{facts.name}: {choice.source}")
            written += result.save(out / "activations.npz")
    outcome = Outcome(written, notes=[*facts.notes, *choice.notes, *([chose] if chose else [])])
    outcome.lines = [output_line(choice.source, result.probabilities[0], result.meta.classes),
                     outcome.wrote(out)]
    return outcome


def _drawn_layers(facts: ModelFacts, layers: list[str] | None,
                  size: tuple[int, int]) -> tuple[list[str], str | None]:
    """The layers named (``["all"]``: every convolution and pooling layer), or the default
    selection at the input's ``size``, with its note."""
    if layers == ["all"]:
        return resolve_map_layers(facts.model, None), None
    if layers:
        return resolve_map_layers(facts.model, layers), None
    return shown_map_layers(facts.model, map_grids(facts, size if facts.any_size else None))


def kernels_job(facts: ModelFacts, out: Path, *, layer: str | None = None,
                channel: int | None = None, force: bool = False,
                standalone: bool = False) -> Outcome:
    """``cnnviz kernels``: a conv layer's weights (default: the first conv layer), seen from
    input ``channel``; a layer reading 3 channels (RGB) with no channel named is drawn in
    colour in the PNG too (each kernel scaled around mid-grey by its largest weight)."""
    with OutputUnit(out, "kernels", force, main="kernels.html") as unit:
        name = layer or default_layer(facts.model, first=True)
        kernels = conv_kernels(facts.model, name, 0 if channel is None else channel)
        every = conv_kernels(facts.model, name, None) if channel is None else None
        colour = every if every is not None and every.shape[2] == 3 else None
        with unit.writing() as written:
            written += views.write_kernel_views(kernels, name, out, standalone=standalone,
                                                colour=colour)
    outcome = Outcome(written)
    outcome.lines = [outcome.wrote()]
    return outcome


def patterns_job(facts: ModelFacts, out: Path, *, layer: str | None = None, dense: bool = True,
                 data: Any = None, split: str = "test", size: tuple[int, int] | None = None,
                 top: int = 5, only_class: int | None = None, preactivation: bool = False,
                 batch: int = 256, force: bool = False, standalone: bool = False,
                 map_images: bool = False, progress: ProgressFn | None = None,
                 runner: Any = None, shard: int = 2000, resume: bool = False,
                 checkpoint: float = 60.0, values: str = "contrast") -> Outcome:
    """``cnnviz patterns``: the mean activation of each map per class over labelled data,
    drawn and ranked as ``values`` (the contrast of each class with the others, or the means);
    with ``map_images``, each class's mean image of every map of ``layer`` too. With
    ``runner`` (:class:`~cnnviz.parts.cluster.RayRunner`) the data's shards of ``shard``
    images are computed on a cluster and merged exactly. The sums of the images seen are
    saved every ``checkpoint`` seconds (0: only at Ctrl-C); ``resume`` continues from them."""
    if top <= 0 or batch <= 0:
        raise CnnvizError("--top and --batch must be positive")
    PATTERN_VALUES.check(values)
    if shard <= 0:
        raise CnnvizError(f"--shard must be a positive number of images, got {shard}")
    check_checkpoint(checkpoint)
    with OutputUnit(out, "patterns", force or resume, main="patterns.npz") as unit:
        if resume and not unit.checkpoint.exists():
            raise CnnvizError(f"nothing to resume: {out} holds no interrupted patterns run")
        name = layer or default_layer(facts.model)
        resolve_map_layers(facts.model, [name])
        source = _labelled(facts, data, split, only_class)
        names = [name] + ([i.name for i in list_layers(facts.model) if i.type == "Dense"]
                          if dense else [])
        options = {"preactivation": preactivation, "size": size, "batch_size": batch,
                   "map_images": map_images}
        work = PatternWork(facts, source, names, shard if runner else source.size() or 1,
                           **options)
        try:
            result = _patterns_pass(work, unit, runner, progress, resume, checkpoint)
        except Stopped as stop:
            return Outcome(notes=list(facts.notes), interrupted=_kept(stop.state, source,
                                                                      unit))
        with unit.writing() as written:
            written += result.save(out / "patterns.npz")
            written += views.write_pattern_views(result, out, values=values,
                                                 standalone=standalone)
    outcome = Outcome(written, notes=list(facts.notes))
    tops = result.top_maps(name, top, values)
    ranked = "most above their mean over classes" if values == "contrast" else "highest means"
    outcome.lines = [f"class {cname}: maps of {name} {ranked}: " + ", ".join(map(str, tops[cname]))
                     for c, cname in enumerate(result.class_names)
                     if (only_class is None or c == only_class) and result.counts[c]]
    outcome.lines.append(outcome.wrote())
    return outcome


def _labelled(facts: ModelFacts, data: Any, split: str, only_class: int | None) -> Source:
    """The labelled data class patterns read."""
    source = data_for(facts.input_shape, data, split)
    if source is None:
        raise CnnvizError(no_data_note(facts.name, facts.input_shape, "class patterns",
                                       "need labelled images"))
    if not source.labelled:
        raise CnnvizError(f"data set '{source.name}' has no labels: class patterns need them")
    if only_class is not None and only_class not in set(source.labels().tolist()):
        raise CnnvizError(f"class {only_class} is not in data set '{source.name}'")
    return source


def _patterns_pass(work: PatternWork, unit: OutputUnit, runner: Any,
                   progress: ProgressFn | None, resume: bool, every: float) -> ClassPatterns:
    """The class patterns of ``work``, continued from the unit's checkpoint with ``resume``;
    the sums so far are saved there every ``every`` seconds and at Ctrl-C (for data whose
    size is known: other data cannot be resumed part way)."""
    stamp = work.stamp()
    tally = read_tally(unit.checkpoint, stamp, ClassPatterns.load) if resume else None
    size = work.data.size()
    if tally is not None and size is not None and tally.covered[-1][1] > size:
        raise CnnvizError(f"{unit.checkpoint} covers images past the data's end ({size})")

    def save(done: Tally) -> None:
        if size is not None and done.value is not None:
            save_tally(done, unit.checkpoint, stamp)

    try:
        return patterns_in_parts(work, runner, progress, tally=tally, on_checkpoint=save,
                                 checkpoint_every=every)
    except Stopped as stop:
        save(stop.state)
        raise


def _kept(tally: Tally, source: Source, unit: OutputUnit) -> str:
    """What Ctrl-C kept of a class-pattern pass, in words."""
    size = source.size()
    if size is None or tally.value is None:
        why = "its size is not known" if size is None else "no batch had finished"
        return f"nothing was kept ({why}): the same command starts again"
    return (f"kept the sums of {tally.count:,} of {size:,} images in {unit.checkpoint}; "
            "the same command with --resume continues")
