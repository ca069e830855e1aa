"""One self-contained HTML report of a model: summary, activations, filter galleries, class
patterns and attributions — read from saved results where they are given, computed otherwise."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.attribution import METHODS, explain
from cnnviz.attribution.metrics import evaluate
from cnnviz.core.errors import CnnvizError
from cnnviz.core.units import check_unit
from cnnviz.data.inputs import pick_digit
from cnnviz.data.readers import Source
from cnnviz.data.sources import data_for, model_inputs, no_data_note
from cnnviz.maps.activations import activations
from cnnviz.maps.patterns import class_patterns
from cnnviz.model.facts import (
    ModelFacts,
    as_facts,
    default_layer,
    get_layer,
    list_layers,
    resolve_map_layers,
)
from cnnviz.model.heads import output_layer
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.presets import preset
from cnnviz.oip.settings import examples_that_fit
from cnnviz.render import attributions as attribution_views
from cnnviz.render import page as widgets
from cnnviz.render import views
from cnnviz.results import ClassPatterns, FilterResult, Meta

StatusFn = Callable[[str], None]
Section = tuple[str, Any]


def build_report(model: ModelFacts | Any, *, results: str | Path | None = None,
                 layer: str | None = None, steps: int = 100, examples: int = 9, seed: int = 0,
                 data: Any = None, size: tuple[int, int] | None = None,
                 status: StatusFn | None = None, note: StatusFn | None = None) -> str:
    """The report page as one self-contained HTML text. ``results`` is a folder holding
    ``filters.npz`` and ``patterns.npz`` from earlier runs (directly or one level down, as in
    cnnviz-out/); what it lacks is computed. ``data`` gives the images (default: the bundled
    digits, only for a model that takes 28×28×1 images); without data, the sections that need
    it say so in place. ``note`` is told why a saved result was not reused."""
    facts = as_facts(model)
    if steps <= 0 or examples < 0:
        raise CnnvizError("--steps must be positive and --examples ≥ 0")
    say = status or (lambda message: None)
    shape, _ = facts.default_size(size)
    deepest = layer or default_layer(facts.model)
    resolve_map_layers(facts.model, [deepest])
    source = data_for(facts.input_shape, data)
    sections = [_summary(facts)]
    inputs = labels = None
    if source is not None:
        inputs, labels = _one_per_class(source, shape, facts, seed)
        say("activations")
        sections.append(_activation_section(facts, inputs, labels, source))
    else:
        sections.append(_missing(facts, "Activation maps"))
    say(f"filters of {deepest}")
    tell = note or (lambda message: None)
    saved = _reuse(_find(results, "filters.npz"), "filters", facts, source, tell, deepest)
    sections.append(_filter_section(facts, deepest, saved, source, steps, examples, seed,
                                    shape))
    say("class images")
    sections.append(_class_section(facts, source, steps, seed, shape))
    say("class patterns")
    saved = _reuse(_find(results, "patterns.npz"), "patterns", facts, source, tell)
    sections.append(_pattern_section(facts, deepest, saved, source, shape))
    say("attribution")
    if inputs is not None and labels is not None:
        sections += _attribution_sections(facts, inputs, labels, source, seed, say)
    else:
        sections.append(_missing(facts, "Attribution maps"))
    return widgets.page(f"cnnviz report: {facts.name}", sections, standalone=True,
                        intro=f"input {shape[0]}×{shape[1]}×{shape[2]}, preprocessing "
                              f"{facts.preprocess.name}; data "
                              f"{source.name if source else 'none'}; seed {seed}")


# The report checks the attribution maps of models up to this size (the cascade re-computes
# every method at each of its stages; on bigger models `cnnviz explain --metrics` does it).
CHECKED_PARAMETERS = 2_000_000


def _attribution_sections(facts: ModelFacts, inputs: np.ndarray, labels: list[str],
                          source: Source | None, seed: int, say: StatusFn) -> list[Section]:
    """Every method's map of the first input, flagged where a check fails, and the checks over
    the inputs (one per class) as a table and the cascade's curves — for a small model; a bigger
    one gets the first input's maps without RISE (its 1000 masks) and a line on what to run."""
    classes = source.class_names if source else ()
    parameters = int(facts.model.count_params())
    if parameters > CHECKED_PARAMETERS:
        methods = tuple(m for m in METHODS if m != "rise")
        explained = explain(facts, inputs[:1], methods, seed=seed, data=labels[0],
                            classes=classes)
        skipped = (f'<p class="meta">The model has {parameters:,} parameters, more than the '
                   f"{CHECKED_PARAMETERS:,} the report checks and draws RISE for: run cnnviz "
                   "explain --method all --metrics for them.</p>")
        return [("Attribution maps", attribution_views.attribution_figure(explained)),
                ("Checks", skipped)]
    explained = explain(facts, inputs, seed=seed, data=labels[0], classes=classes)
    explained.params["inputs"] = list(labels)
    say("attribution checks")
    scores = evaluate(facts, explained, seed=seed, stages=2)  # the top layer, then all
    explained.params["checks"] = {name: score.summary() for name, score in scores.items()}
    return [("Attribution maps", attribution_views.attribution_figure(explained)),
            *attribution_views.checks_sections(explained)]


def _missing(facts: ModelFacts, heading: str) -> Section:
    note = no_data_note(facts.name, facts.input_shape, heading)
    return (heading, f'<p class="meta">{html.escape(note)}</p>')


def _one_per_class(source: Source, shape: tuple[int, int, int], facts: ModelFacts,
                   seed: int) -> tuple[np.ndarray, list[str]]:
    """Up to ten inputs: one image of each of the first classes (drawn with ``seed``), or the
    first ten images of unlabelled data, with their labels for the menus."""
    labels = source.labels()
    if labels is None:
        picks = list(range(min(10, source.size() or 10)))
        names = [f"image {i}" for i in picks]
    else:
        present = [c for c in range(max(len(source.class_names), 1)) if (labels == c).any()]
        picks = [pick_digit(labels, c, seed, max(len(source.class_names), 1))
                 for c in present[:10]]
        names = [f"class {source.class_name(int(labels[i]))} (image {i})" for i in picks]
    pixels, _ = source.gather(picks, shape)
    return model_inputs(pixels, facts.preprocess), names


def _summary(facts: ModelFacts) -> Section:
    rows = [[i.name, i.type, str(i.output_shape), "" if i.maps is None else str(i.maps),
             f"{get_layer(facts.model, i.name).count_params():,}"]
            for i in list_layers(facts.model)]
    return (f"Model {facts.name}", widgets.table(
        ["layer", "type", "output shape", "maps", "parameters"], rows))


def _activation_section(facts: ModelFacts, inputs: np.ndarray, labels: list[str],
                        source: Source) -> Section:
    names = resolve_map_layers(facts.model, None)
    acts = activations(facts, inputs, names)
    per_input = [{n: acts.maps[n][i] for n in names} for i in range(len(inputs))]
    if acts.probabilities.ndim == 2:
        predictions = [f"{label}: predicted {source.class_name(int(p))}"
                       for label, p in zip(labels, acts.predictions, strict=True)]
    else:
        predictions = labels
    return ("Activation maps", widgets.switchable_maps(per_input, predictions))


def _foreign(meta: Meta, facts: ModelFacts, source: Source | None, saved: Path) -> str:
    """Why a saved result cannot stand in this report ("" when it can): another model made
    it, or it was computed on other data than this report's."""
    if not meta.model_digest:
        return f" (recomputed: {saved.name} does not record the model that made it)"
    if not meta.made_by(facts.digest):
        return f" (recomputed: {saved.name} was made by another model '{meta.model}')"
    if meta.data_digest and source is not None and meta.data_digest != source.digest():
        return f" (recomputed: {saved.name} was computed on other data, {meta.data})"
    return ""


def _reuse(saved: Path | None, kind: str, facts: ModelFacts, source: Source | None,
           note: StatusFn, layer: str | None = None) -> tuple[Any, str]:
    """The saved ``kind`` result (filters or patterns) at ``saved`` when this report can stand
    on it, else ``None`` and why it is recomputed (also told to ``note``)."""
    if saved is None:
        return None, ""
    check_unit(saved, kind)
    result = (FilterResult if kind == "filters" else ClassPatterns).load(saved)
    why = _foreign(result.meta, facts, source, saved)
    if not why and layer is not None and result.layer != layer:
        why = f" (recomputed: {saved.name} holds layer {result.layer}, not {layer})"
    if why:
        note(why.strip(" ()"))
        return None, why
    return result, ""


def _filter_section(facts: ModelFacts, layer: str, saved: tuple[Any, str],
                    source: Source | None, steps: int, examples: int, seed: int,
                    shape: tuple[int, int, int]) -> Section:
    result, why = saved
    if result is None:
        settings = preset("default", facts, layer, shape, steps=steps, seed=seed)
        filters = int(get_layer(facts.model, layer).output.shape[-1])
        fit = min(examples, examples_that_fit(filters, shape))  # a wide layer keeps fewer
        result = visualize_filters(facts, layer, None, settings, reference_images=source,
                                   examples=fit if source is not None else 0, size=shape[:2])
    return (f"Optimal input patterns of {result.layer}{why}",
            views.filter_gallery_figure(result, "activation"))


MAX_CLASS_IMAGES = 16  # a 1,000-class model's report draws the first 16 (`filters` draws any)


def _class_section(facts: ModelFacts, source: Source | None, steps: int, seed: int,
                   shape: tuple[int, int, int]) -> Section:
    """What the model takes each class to be: the image each class logit (before the
    softmax) answers most, one per class, named by the data's classes."""
    heading = "What the model takes each class to be"
    name = output_layer(facts.model)
    if name is None:
        return (heading, '<p class="meta">no class images: the model\'s output is not a '
                         'vector of classes</p>')
    units = int(get_layer(facts.model, name).output.shape[-1])
    shown = list(range(min(units, MAX_CLASS_IMAGES)))
    settings = preset("default", facts, name, shape, steps=steps, seed=seed)
    names = source if source is not None and len(source.class_names) == units else None
    result = visualize_filters(facts, name, shown, settings, size=shape[:2],
                               reference_images=names, examples=1 if names else 0)
    cut = f" (the first {len(shown)} of {units}: cnnviz filters --layer {name} draws any)" \
        if len(shown) < units else ""
    return (f"{heading}{cut}", views.filter_gallery_figure(result))


def _pattern_section(facts: ModelFacts, layer: str, saved: tuple[Any, str],
                     source: Source | None, shape: tuple[int, int, int]) -> Section:
    patterns, why = saved
    if patterns is None and (source is None or not source.labelled):
        if source is None:
            return _missing(facts, "Class activation patterns")
        return ("Class activation patterns", f'<p class="meta">class patterns skipped: '
                f'{html.escape(source.name)} has no labels</p>')
    if patterns is None:
        dense = [i.name for i in list_layers(facts.model) if i.type == "Dense"]
        patterns = class_patterns(facts, source, None, [layer, *dense], size=shape[:2])
    return (f"Class activation patterns{why}", views.patterns_figure(patterns))


def _find(folder: str | Path | None, name: str) -> Path | None:
    if folder is None:
        return None
    folder = Path(folder)
    if not folder.is_dir():
        raise CnnvizError(f"results folder not found: {folder}")
    for candidate in [folder / name, *sorted(folder.glob(f"*/{name}"))]:
        if candidate.is_file():
            return candidate
    return None
