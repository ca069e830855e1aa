"""What each command does, as one library call: compute, write the files into the output folder
(never over an earlier run's without ``force``) and say what happened. The command line parses
its options, calls one of these and prints the :class:`Outcome`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.activations import activations, class_patterns
from cnnviz.attribution import BASELINES, METHODS, Target, explain
from cnnviz.data import load_dataset
from cnnviz.errors import CnnvizError
from cnnviz.fileio import refuse_overwrite
from cnnviz.inputs import InputChoice, select_input
from cnnviz.metrics import evaluate
from cnnviz.models import (
    ModelFacts,
    conv_kernels,
    default_layer,
    list_layers,
    load,
    resolve_map_layers,
)
from cnnviz.oip.filters import chosen_filters, resume_filters, visualize_filters
from cnnviz.oip.optimize import ProgressFn
from cnnviz.oip.presets import preset
from cnnviz.oip.settings import DEFAULT_BUDGET, MemoryPlan, bytes_per_image
from cnnviz.readers import Source
from cnnviz.render import grids, views
from cnnviz.render.outputs import output_bars
from cnnviz.report import StatusFn, build_report
from cnnviz.results import FilterResult
from cnnviz.sources import bundled_fits, data_for, model_inputs, no_data_note

TrainProgressFn = Callable[[int, int, int, dict[str, float]], None]


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


def _choose_input(facts: ModelFacts, spec: InputSpec) -> tuple[InputChoice, Source | None]:
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


def _output_line(source: str, outputs: np.ndarray, classes: tuple[str, ...]) -> str:
    bars = output_bars(outputs, classes or None)
    if outputs.ndim == 1:
        return f"{source}: {bars.title}"
    return f"{source}: {bars.title} {', '.join(bars.names[:5])}"


def activations_job(facts: ModelFacts, out: Path, source: InputSpec, *,
                    layers: list[str] | None = None, scale: str = "shared",
                    force: bool = False, standalone: bool = False) -> Outcome:
    """``cnnviz activations``: every map of the chosen layers for one input."""
    if scale not in grids.SCALES:
        raise CnnvizError(f"unknown scale '{scale}': use {' or '.join(grids.SCALES)}")
    refuse_overwrite(out / "activations.npz", force)
    names = resolve_map_layers(facts.model, layers)
    choice, data = _choose_input(facts, source)
    labels = None if choice.label is None else np.asarray([choice.label])
    result = activations(facts, choice.image[None], names, data=choice.source, labels=labels,
                         classes=() if data is None else data.class_names)
    written = views.write_activation_views(result, out, scale=scale, standalone=standalone,
                                           title=f"{facts.name}: {choice.source}")
    written += result.save(out / "activations.npz")
    outcome = Outcome(written, notes=[*facts.notes, *choice.notes])
    outcome.lines = [_output_line(choice.source, result.probabilities[0], result.meta.classes),
                     outcome.wrote(out)]
    return outcome


def redraw_filters_job(saved: Path, out: Path, *, order: str = "index", force: bool = False,
                       standalone: bool = False) -> Outcome:
    """``cnnviz filters --from``: the galleries of saved results, without recomputing."""
    refuse_overwrite(out / "filters.html", force)
    result = FilterResult.load(saved)
    written = views.write_filter_views(result, out, order=order, standalone=standalone)
    outcome = Outcome(written)
    outcome.lines = [f"redrew {len(result.filters)} filters; {outcome.wrote()}"]
    return outcome


@dataclass(frozen=True)
class AscentSpec:
    """How ``cnnviz filters`` ascends: a preset with overrides (Settings fields; ``jitter``,
    ``scale``, ``rotate``, ``pad`` for the transforms; ``None`` keeps the preset's), the
    objective, the colour basis and the start (noise, grey, image:PATH, index:K, digit:D)."""

    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)
    objective: str = "auto"
    colour: str = "auto"
    start: str | None = None


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
                layer: str | None = None, filters: list[int] | None = None,
                reference: bool = True, examples: int = 0, data: Any = None,
                size: tuple[int, int] | None = None, order: str = "index",
                batch: int | None = None, budget: int = DEFAULT_BUDGET, force: bool = False,
                standalone: bool = False, progress: ProgressFn | None = None) -> Outcome:
    """``cnnviz filters``: the optimal input pattern of each filter of a layer, compared with
    the real images of the data (skipped, with a note, when there are none)."""
    ascent = ascent or AscentSpec()
    views.check_order(order)
    refuse_overwrite(out / "filters.npz", force)
    name = layer or default_layer(facts.model)
    chosen = chosen_filters(facts, name, filters).tolist()
    notes = list(facts.notes)
    shape, size_note = facts.default_size(size)
    notes += [size_note] if size_note else []
    real = data_for(facts.input_shape, data)
    if (reference or examples) and real is None:
        notes.append(no_data_note(facts.name, facts.input_shape,
                                  "the comparison with real images"))
    kind, which = start_input(ascent.start or "noise")
    start = None
    if which is not None:
        choice, _ = _choose_input(facts, replace(which, data=data, size=shape[:2]))
        start, notes = choice.image, notes + choice.notes + [f"started from {choice.source}"]
    pixels = None
    if ascent.colour == "data" and real is not None:
        pixels = real.gather(np.arange(min(256, real.size() or 256)), shape)[0] / 255.0
    settings = preset(ascent.preset, facts, name, shape, colour=ascent.colour,
                      data_pixels=pixels, **{**ascent.overrides, "start": kind})
    result = visualize_filters(facts, name, chosen, settings, objective=ascent.objective,
                               reference_images=real if reference or examples else None,
                               examples=examples if real is not None else 0, size=size,
                               start_image=start, batch=batch, budget=budget,
                               on_progress=progress)
    outcome = _filters_outcome(facts, result, out, order, budget, standalone)
    outcome.notes = notes
    return outcome


def resume_filters_job(facts: ModelFacts, out: Path, *, data: Any = None, order: str = "index",
                       batch: int | None = None, budget: int = DEFAULT_BUDGET,
                       standalone: bool = False, progress: ProgressFn | None = None) -> Outcome:
    """``cnnviz filters --resume``: finish the interrupted run saved in ``out``."""
    views.check_order(order)
    if not (out / "filters.npz").exists():
        raise CnnvizError(f"nothing to resume: no filters.npz in {out}")
    previous = FilterResult.load(out / "filters.npz")
    if not previous.interrupted:
        raise CnnvizError(f"{out / 'filters.npz'} is complete: nothing to resume")
    compared = previous.best_real is not None or previous.example_images is not None
    if compared and data is None and not bundled_fits(facts.input_shape):
        raise CnnvizError("the saved run compared with real images: give them again with "
                          "--data")
    result = resume_filters(facts, previous, batch=batch, budget=budget, on_progress=progress,
                            reference_images=data_for(facts.input_shape, data)
                            if compared else None)
    return _filters_outcome(facts, result, out, order, budget, standalone)


def _filters_outcome(facts: ModelFacts, result: FilterResult, out: Path, order: str,
                     budget: int, standalone: bool) -> Outcome:
    written = list(result.save(out / "filters.npz"))
    if len(result.filters):
        written += views.write_filter_views(result, out, order=order, standalone=standalone)
    shape = tuple(result.images.shape[1:]) if len(result.images) else None
    plan = MemoryPlan(bytes_per_image(facts.model, result.layer, shape), budget,
                      result.params["chunk"], len(result.requested))
    outcome = Outcome(written, [plan.describe(), result.summary()])
    outcome.lines += [f"  filter {f}: {note}" for f, note in result.notes.items()]
    outcome.lines.append(outcome.wrote())
    if result.interrupted:
        outcome.interrupted = (f"saved {len(result.filters)} of {len(result.requested)} "
                               "filters; --resume continues")
    return outcome


def kernels_job(facts: ModelFacts, out: Path, *, layer: str | None = None, channel: int = 0,
                force: bool = False, standalone: bool = False) -> Outcome:
    """``cnnviz kernels``: a conv layer's weights (default: the first conv layer)."""
    refuse_overwrite(out / "kernels.html", force)
    name = layer or default_layer(facts.model, first=True)
    kernels = conv_kernels(facts.model, name, channel)
    outcome = Outcome(views.write_kernel_views(kernels, name, out, standalone=standalone))
    outcome.lines = [outcome.wrote()]
    return outcome


def patterns_job(facts: ModelFacts, out: Path, *, layer: str | None = None, dense: bool = True,
                 data: Any = None, split: str = "test", size: tuple[int, int] | None = None,
                 top: int = 5, only_class: int | None = None, preactivation: bool = False,
                 batch: int = 256, force: bool = False, standalone: bool = False,
                 progress: ProgressFn | None = None) -> Outcome:
    """``cnnviz patterns``: the mean activation of each map per class over labelled data."""
    if top <= 0 or batch <= 0:
        raise CnnvizError("--top and --batch must be positive")
    refuse_overwrite(out / "patterns.npz", force)
    name = layer or default_layer(facts.model)
    resolve_map_layers(facts.model, [name])
    source = data_for(facts.input_shape, data, split)
    if source is None:
        raise CnnvizError(no_data_note(facts.name, facts.input_shape, "class patterns",
                                       "need labelled images"))
    if not source.labelled:
        raise CnnvizError(f"data set '{source.name}' has no labels: class patterns need them")
    if only_class is not None and only_class not in set(source.labels().tolist()):
        raise CnnvizError(f"class {only_class} is not in data set '{source.name}'")
    names = [name] + ([i.name for i in list_layers(facts.model) if i.type == "Dense"]
                      if dense else [])
    result = class_patterns(facts, source, None, names, preactivation=preactivation,
                            size=size, batch_size=batch, on_progress=progress)
    outcome = Outcome(list(result.save(out / "patterns.npz")), notes=list(facts.notes))
    outcome.written += views.write_pattern_views(result, out, standalone=standalone)
    tops = result.top_maps(name, top)
    outcome.lines = [f"class {cname}: top maps of {name}: " + ", ".join(map(str, tops[cname]))
                     for c, cname in enumerate(result.class_names)
                     if (only_class is None or c == only_class) and result.counts[c]]
    outcome.lines.append(outcome.wrote())
    return outcome


def explain_job(facts: ModelFacts, out: Path, source: InputSpec, *, method: str = "gradcam",
                target: Target = None, layer: str | None = None, baseline: str = "black",
                metrics: bool = False, force: bool = False,
                standalone: bool = False) -> Outcome:
    """``cnnviz explain``: every attribution method for one input, ``method`` as an overlay;
    integrated gradients from ``baseline`` with their completeness error; with ``metrics``,
    each method's deletion, insertion and randomization checks."""
    if method not in METHODS:
        raise CnnvizError(f"unknown attribution method '{method}': use one of "
                          f"{', '.join(METHODS)}")
    if baseline not in BASELINES:
        raise CnnvizError(f"unknown baseline '{baseline}': use one of {', '.join(BASELINES)}")
    refuse_overwrite(out / "explain.html", force)
    choice, data = _choose_input(facts, source)
    references = None
    if baseline in ("mean", "expected"):
        if data is None:
            raise CnnvizError(f"the {baseline} baseline needs images: give them with --data")
        count = min(256, data.size() or 256)
        pixels, _ = data.gather(np.arange(count), choice.image.shape)
        references = model_inputs(pixels, facts.preprocess)
    result = explain(facts, choice.image[None], METHODS, target=target, layer=layer,
                     seed=source.seed, baseline=baseline, references=references,
                     data=choice.source, classes=() if data is None else data.class_names)
    outcome = Outcome(views.write_attribution_views(result, method, out, standalone=standalone),
                      [views.attribution_title(result)], [*facts.notes, *choice.notes])
    outcome.written += result.save(out / "explain.npz")
    delta = result.params["completeness"][0]
    change = float(result.maps["integrated_gradients"][0].sum()) - delta
    average = "; complete only on average over samples" if baseline == "expected" else ""
    outcome.lines.append(f"integrated gradients from the {baseline} baseline: the attributions "
                         f"add up to the score change {change:.4g} within {abs(delta):.2g}"
                         f" ({abs(delta) / max(abs(change), 1e-12):.1%}{average})")
    if not result.maps["gradcam"].any():
        outcome.lines.append("note: Grad-CAM is zero everywhere: no map of its layer raises this "
                             "class at any position (try an earlier layer with --layer)")
    if metrics:
        scores = evaluate(facts, result, baseline=baseline, references=references)
        outcome.lines += [f"  {score.line(name)}" for name, score in scores.items()]
    outcome.lines.append(outcome.wrote())
    return outcome


def report_job(facts: ModelFacts, out: Path, *, results: Path | None = None,
               layer: str | None = None, steps: int = 100, examples: int = 9, seed: int = 0,
               data: Any = None, size: tuple[int, int] | None = None, force: bool = False,
               status: StatusFn | None = None) -> Outcome:
    """``cnnviz report``: one self-contained HTML file."""
    from cnnviz.fileio import write_text

    if out.suffix.lower() not in (".html", ".htm"):
        raise CnnvizError(f"--out must be an .html file, got {out.name}")
    refuse_overwrite(out, force)
    text = build_report(facts, results=results, layer=layer, steps=steps, examples=examples,
                        seed=seed, data=data, size=size, status=status)
    notes = list(facts.notes)
    if data is None and not bundled_fits(facts.input_shape):
        notes.append(no_data_note(facts.name, facts.input_shape, "the sections that need data"))
    return Outcome([write_text(out, text)], [f"wrote {out} ({len(text) / 2**20:.1f} MiB)"],
                   notes)


def gallery_job(out: Path, *, steps: int = 100, seed: int = 0, force: bool = False,
                say: Callable[[str], None] | None = None) -> Outcome:
    """``cnnviz gallery``: every command's output on the bundled model, with fixed seeds (the
    same bytes each time); refuses to replace an earlier gallery without ``force``."""
    say = say or (lambda message: None)
    facts = load()
    if not force:  # every part is checked before the first is written
        for part in ("activations/activations.npz", "filters/filters.npz",
                     "kernels/kernels.html", "patterns/patterns.npz", "explain/explain.html",
                     "report.html"):
            refuse_overwrite(out / part, force)
    runs: list[tuple[str, Callable[[], Outcome]]] = [
        ("activations --digit 6", lambda: activations_job(
            facts, out / "activations", InputSpec(digit=6, seed=seed), force=True)),
        (f"filters --examples 9 --steps {steps}", lambda: filters_job(
            facts, out / "filters", AscentSpec(overrides={"steps": steps, "seed": seed}),
            examples=9, force=True)),
        ("kernels", lambda: kernels_job(facts, out / "kernels", force=True)),
        ("patterns", lambda: patterns_job(facts, out / "patterns", force=True)),
        ("explain --digit 6 --method integrated_gradients", lambda: explain_job(
            facts, out / "explain", InputSpec(digit=6, seed=seed),
            method="integrated_gradients", force=True)),
        (f"report --from {out} --steps {steps}", lambda: report_job(
            facts, out / "report.html", results=out, steps=steps, seed=seed, force=True)),
    ]
    outcome = Outcome()
    for label, run in runs:
        say(f"cnnviz {label}")
        done = run()
        outcome.written += done.written
    outcome.lines = [f"rebuilt {out}: {len(outcome.written)} files"]
    return outcome


def train_job(out: Path, *, data: str = "bundled", conv: list[int] | None = None,
              pool_after: list[int] | None = None, dense: list[int] | None = None,
              epochs: int = 5, batch_size: int = 64, n_train: int | None = None,
              force: bool = False, progress: TrainProgressFn | None = None,
              **fit: Any) -> Outcome:
    """``cnnviz train``: build the reference CNN, train it (``fit``: learning rate, momentum,
    schedule, decay, l1, l2, seed), save it."""
    from cnnviz.train import build_cnn, learning_rate_schedule, save_model, train

    if out.suffix.lower() not in (".keras", ".h5"):
        raise CnnvizError(f"--out must end in .keras or .h5, got {out.name}")
    refuse_overwrite(out, force)
    learning_rate_schedule(fit.get("schedule", "inverse_time"))  # checked before data loads
    dataset = load_dataset(data)
    x = dataset.x_train
    model = build_cnn(conv or [32, 64, 128], pool_after or [1, 2], dense or [120],
                      n_classes=len(dataset.class_names),
                      input_shape=(*x.shape[1:3], 1 if x.ndim == 3 else x.shape[3]),
                      l2=fit.get("l2", 5e-4), l1=fit.get("l1", 0.0), seed=fit.get("seed", 0))
    n = len(x) if n_train is None else min(n_train, len(x))
    steps = -(-n // max(batch_size, 1))  # train() refuses a batch size < 1 itself
    result = train(dataset, model=model, epochs=epochs, batch_size=batch_size, n_train=n_train,
                   on_progress=None if progress is None else
                   (lambda epoch, step, logs: progress(epoch, step, steps, logs)), **fit)
    save_model(result.model, out)
    return Outcome([out], [f"test accuracy {result.test_accuracy:.4f} (loss "
                           f"{result.test_loss:.4f}) on {len(dataset.x_test)} {dataset.name} "
                           f"test images; wrote {out}"])
