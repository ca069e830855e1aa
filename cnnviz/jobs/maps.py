"""``activations``, ``kernels`` and ``patterns``: maps and weights of a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.activations import activations, class_patterns
from cnnviz.data.sources import data_for, no_data_note
from cnnviz.errors import CnnvizError
from cnnviz.jobs.common import InputSpec, Outcome, choose_input
from cnnviz.models import (
    ModelFacts,
    conv_kernels,
    default_layer,
    list_layers,
    resolve_map_layers,
)
from cnnviz.oip.optimize import ProgressFn
from cnnviz.parts.kinds import PatternWork, patterns_in_parts
from cnnviz.render import views
from cnnviz.render.outputs import output_bars
from cnnviz.tables import SCALES
from cnnviz.units import OutputUnit


def output_line(source: str, outputs: np.ndarray, classes: tuple[str, ...]) -> str:
    bars = output_bars(outputs, classes or None)
    if outputs.ndim == 1:
        return f"{source}: {bars.title}"
    return f"{source}: {bars.title} {', '.join(bars.names[:5])}"


def activations_job(facts: ModelFacts, out: Path, source: InputSpec, *,
                    layers: list[str] | None = None, scale: str = "shared",
                    force: bool = False, standalone: bool = False) -> Outcome:
    """``cnnviz activations``: every map of the chosen layers for one input."""
    SCALES.check(scale)
    with OutputUnit(out, "activations", force, main="activations.npz") as unit:
        names = resolve_map_layers(facts.model, layers)
        choice, data = choose_input(facts, source)
        labels = None if choice.label is None else np.asarray([choice.label])
        result = activations(facts, choice.image[None], names, data=choice.source,
                             labels=labels, classes=() if data is None else data.class_names)
        with unit.writing() as written:
            written += views.write_activation_views(result, out, scale=scale,
                                                    standalone=standalone,
                                                    title=f"{facts.name}: {choice.source}")
            written += result.save(out / "activations.npz")
    outcome = Outcome(written, notes=[*facts.notes, *choice.notes])
    outcome.lines = [output_line(choice.source, result.probabilities[0], result.meta.classes),
                     outcome.wrote(out)]
    return outcome


def kernels_job(facts: ModelFacts, out: Path, *, layer: str | None = None, channel: int = 0,
                force: bool = False, standalone: bool = False) -> Outcome:
    """``cnnviz kernels``: a conv layer's weights (default: the first conv layer)."""
    with OutputUnit(out, "kernels", force, main="kernels.html") as unit:
        name = layer or default_layer(facts.model, first=True)
        kernels = conv_kernels(facts.model, name, channel)
        with unit.writing() as written:
            written += views.write_kernel_views(kernels, name, out, standalone=standalone)
    outcome = Outcome(written)
    outcome.lines = [outcome.wrote()]
    return outcome


def patterns_job(facts: ModelFacts, out: Path, *, layer: str | None = None, dense: bool = True,
                 data: Any = None, split: str = "test", size: tuple[int, int] | None = None,
                 top: int = 5, only_class: int | None = None, preactivation: bool = False,
                 batch: int = 256, force: bool = False, standalone: bool = False,
                 map_images: bool = False, progress: ProgressFn | None = None,
                 runner: Any = None, shard: int = 2000) -> Outcome:
    """``cnnviz patterns``: the mean activation of each map per class over labelled data;
    with ``map_images``, each class's mean image of every map of ``layer`` too. With
    ``runner`` (:class:`~cnnviz.parts.cluster.RayRunner`) the data's shards of ``shard``
    images are computed on a cluster and merged exactly."""
    if top <= 0 or batch <= 0:
        raise CnnvizError("--top and --batch must be positive")
    if shard <= 0:
        raise CnnvizError(f"--shard must be a positive number of images, got {shard}")
    with OutputUnit(out, "patterns", force, main="patterns.npz") as unit:
        name = layer or default_layer(facts.model)
        resolve_map_layers(facts.model, [name])
        source = data_for(facts.input_shape, data, split)
        if source is None:
            raise CnnvizError(no_data_note(facts.name, facts.input_shape, "class patterns",
                                           "need labelled images"))
        if not source.labelled:
            raise CnnvizError(f"data set '{source.name}' has no labels: class patterns need "
                              "them")
        if only_class is not None and only_class not in set(source.labels().tolist()):
            raise CnnvizError(f"class {only_class} is not in data set '{source.name}'")
        names = [name] + ([i.name for i in list_layers(facts.model) if i.type == "Dense"]
                          if dense else [])
        options = {"preactivation": preactivation, "size": size, "batch_size": batch,
                   "map_images": map_images}
        result = class_patterns(facts, source, None, names, on_progress=progress, **options) \
            if runner is None else patterns_in_parts(PatternWork(facts, source, names, shard,
                                                                 **options), runner, progress)
        with unit.writing() as written:
            written += result.save(out / "patterns.npz")
            written += views.write_pattern_views(result, out, standalone=standalone)
    outcome = Outcome(written, notes=list(facts.notes))
    tops = result.top_maps(name, top)
    outcome.lines = [f"class {cname}: top maps of {name}: " + ", ".join(map(str, tops[cname]))
                     for c, cname in enumerate(result.class_names)
                     if (only_class is None or c == only_class) and result.counts[c]]
    outcome.lines.append(outcome.wrote())
    return outcome
