"""The ``cnnviz`` command line: a thin typer layer over the Python API of the same names."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from cnnviz.errors import CnnvizError

app = typer.Typer(
    name="cnnviz",
    help="See what a trained Keras CNN has learned: activation maps as PNG grids and "
         "interactive HTML. MODEL defaults to the bundled reference CNN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

ModelArg = Annotated[Path | None, typer.Argument(
    help="A .keras or .h5 model file [default: the bundled reference CNN].", show_default=False)]
DigitOpt = Annotated[int | None, typer.Option(help="Use a test image of this digit (0-9).")]
IndexOpt = Annotated[int | None, typer.Option(help="Use the test image at this index.")]
ImageOpt = Annotated[Path | None, typer.Option(help="Use this image file.")]
InvertOpt = Annotated[bool, typer.Option(help="Invert an image file (dark ink on white).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (which image of --digit, noise).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite the results of an earlier "
                                                        "run in the same place.")]
PreprocessOpt = Annotated[str, typer.Option(
    help="How the model wants its pixels: auto, unit (0..1), symmetric (-1..1), raw (0..255), "
         "caffe or torch (ImageNet modes).")]
UnsafeOpt = Annotated[bool, typer.Option(
    "--unsafe", help="Allow Lambda layers (runs code from the model file: trusted files only).")]


def handle_errors(command: F) -> F:
    """Turn cnnviz errors into one red line on stderr and exit code 1; Ctrl-C into exit 130."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except CnnvizError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("CNNVIZ_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            err_console.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {first} "
                              "(set CNNVIZ_DEBUG=1 for the traceback)", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def load(model: Path | None, unsafe: bool, preprocess: str = "auto") -> Any:
    """The model, with the preprocessing cnnviz should assume for it."""
    from cnnviz.models import load_model
    from cnnviz.preprocess import MODES, set_preprocess

    if preprocess not in MODES:
        raise CnnvizError(f"unknown preprocessing '{preprocess}': use one of {', '.join(MODES)}")
    return set_preprocess(load_model(model, safe_mode=not unsafe), preprocess)


def guard_output(path: Path, force: bool) -> None:
    """Refuse to overwrite an earlier run's results unless ``--force`` says so."""
    if path.exists() and not force:
        raise CnnvizError(f"{path} already exists: pass --force to overwrite it, or choose "
                          "another --out")


def print_notes(notes: list[str]) -> None:
    for note in notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise CnnvizError(f"empty list: '{value}'")
    return items


def _ints(value: str, option: str) -> list[int]:
    try:
        return [int(v) for v in _split(value) or []]
    except ValueError:
        raise CnnvizError(f"{option} takes comma-separated whole numbers, got '{value}'") from None


@app.command()
@handle_errors
def layers(model: ModelArg = None, unsafe: UnsafeOpt = False) -> None:
    """List a model's layers: name, type, output shape and number of maps."""
    from rich.table import Table

    from cnnviz.models import list_layers, load_model

    net = load_model(model, safe_mode=not unsafe)
    table = Table(title=f"{net.name}", show_lines=False)
    for column, justify in (("name", "left"), ("type", "left"), ("output shape", "left"),
                            ("maps", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for info in list_layers(net):
        shape = "(" + ", ".join("None" if s is None else str(s) for s in info.output_shape) + ")"
        table.add_row(info.name, info.type, shape, "" if info.maps is None else str(info.maps))
    console.print(table)


@app.command()
@handle_errors
def activations(
    model: ModelArg = None,
    digit: DigitOpt = None,
    index: IndexOpt = None,
    image: ImageOpt = None,
    layers: Annotated[str | None, typer.Option(
        "--layers", help="Comma-separated layer names [default: every layer with maps].")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("cnnviz-out/activations"),
    seed: SeedOpt = 0,
    scale: Annotated[str, typer.Option(help="Colour scale of PNG grids: shared or per-map.")]
        = "shared",
    invert: InvertOpt = False,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    unsafe: UnsafeOpt = False,
) -> None:
    """Activation maps of every conv and pooling layer for one input (default: a digit 6)."""
    from cnnviz.activations import activations as compute
    from cnnviz.data import load_mnist, select_input
    from cnnviz.models import input_shape, resolve_map_layers
    from cnnviz.preprocess import preprocess_of
    from cnnviz.render.grids import SCALES
    from cnnviz.render.views import write_activation_views

    if scale not in SCALES:
        raise CnnvizError(f"unknown scale '{scale}': use {' or '.join(SCALES)}")
    guard_output(out / "activations.npz", force)
    net = load(model, unsafe, preprocess)
    names = resolve_map_layers(net, _split(layers))
    dataset = load_mnist() if image is None else None
    choice = select_input(input_shape(net), preprocess_of(net), digit=digit, index=index,
                          image=image, dataset=dataset, seed=seed, invert=invert)
    print_notes(choice.notes)
    labels = None if choice.label is None else [choice.label]
    import numpy as np

    result = compute(net, choice.image[None], names,
                     labels=None if labels is None else np.asarray(labels))
    result.meta["source"] = choice.source
    written = write_activation_views(result, out, scale=scale,
                                     title=f"{net.name}: {choice.source}")
    written += result.save(out / "activations.npz")
    predicted = int(result.predictions[0])
    console.print(f"{choice.source}: predicted {predicted} "
                  f"({result.probabilities[0, predicted]:.1%})", highlight=False)
    console.print(f"wrote {len(written)} files to {out}/: "
                  + ", ".join(p.name for p in written), highlight=False, soft_wrap=True)


def parse_indices(spec: str | None, n: int, what: str = "filter") -> list[int] | None:
    """``"0-15,20"`` → [0..15, 20], checked against ``n`` items; ``None`` stays ``None``."""
    if spec is None:
        return None
    chosen: list[int] = []
    for part in _split(spec) or []:
        first, dash, last = part.partition("-")
        try:
            lo, hi = int(first), int(last) if dash else int(first)
        except ValueError:
            raise CnnvizError(f"bad {what} range '{part}': use whole numbers like 0-15,20") \
                from None
        if lo > hi:
            raise CnnvizError(f"bad {what} range '{part}': the start is after the end")
        if hi >= n:
            raise CnnvizError(f"{what} {hi} is out of range: there are {n} (0..{n - 1})")
        chosen.extend(range(lo, hi + 1))
    return list(dict.fromkeys(chosen))


def _default_conv_layer(net: Any) -> str:
    from cnnviz.models import conv_layers

    convs = conv_layers(net)
    if not convs:
        raise CnnvizError(f"model '{net.name}' has no convolution layer; name one with --layer")
    return convs[-1]


def _layer(net: Any, name: str) -> Any:
    from cnnviz.models import get_layer

    return get_layer(net, name)


@app.command()
@handle_errors
def filters(
    model: ModelArg = None,
    layer: Annotated[str | None, typer.Option(help="Layer whose filters to visualize "
                                              "[default: the deepest conv layer].")] = None,
    filter_spec: Annotated[str | None, typer.Option(
        "--filters", help="Filters as ranges, e.g. 0-15,20 [default: all].")] = None,
    steps: Annotated[int, typer.Option(help="Ascent steps.")] = 100,
    method: Annotated[str, typer.Option(help="rms (RMS-normalized gradient) or adam.")] = "rms",
    lr: Annotated[float, typer.Option(help="Step size (fraction of the input range for pixel).")]
        = 0.05,
    param: Annotated[str, typer.Option(help="pixel or fourier.")] = "pixel",
    decay: Annotated[float, typer.Option(help="Fourier decay power.")] = 1.0,
    start: Annotated[str, typer.Option(help="noise (long-range fluctuations) or grey.")]
        = "noise",
    precursors: Annotated[int, typer.Option(help="Short runs from this many random starts per "
                                                 "filter; the best one continues.")] = 0,
    precursor_steps: int = 20,
    jitter: Annotated[int, typer.Option(help="Random shift up to N pixels per step.")] = 0,
    rotate: Annotated[float, typer.Option(help="Random rotation up to ± degrees.")] = 0.0,
    scale: Annotated[str, typer.Option(help="Random zoom range min,max.")] = "1,1",
    pad: Annotated[str, typer.Option(help="Fill for transforms: reflect, nearest, constant, "
                                          "wrap.")] = "reflect",
    tv: Annotated[float, typer.Option(help="Total-variation penalty.")] = 0.0,
    l1: Annotated[float, typer.Option(help="L1 penalty on the distance from mid-grey.")] = 0.0,
    l2: Annotated[float, typer.Option(help="L2 penalty on the distance from mid-grey.")] = 0.0,
    blur_every: Annotated[int, typer.Option(help="Blur the image every N steps (pixel).")] = 0,
    blur_sigma: float = 0.5,
    post_activation: Annotated[bool, typer.Option(
        "--post-activation", help="Maximize the map after its ReLU instead of before.")] = False,
    batch: Annotated[int | None, typer.Option(help="Images per compiled step [default: as "
                                                   "many as fit --budget].")] = None,
    budget: Annotated[int, typer.Option(help="Memory budget of a step, MiB.")] = 512,
    seed: int = 0,
    order: Annotated[str, typer.Option(help="Gallery order: index or activation.")] = "index",
    reference: Annotated[bool, typer.Option(help="Compare with the best real image of the "
                                                 "bundled test split.")] = True,
    examples: Annotated[int, typer.Option(help="Show the N real test images that excite each "
                                               "filter most beside its pattern.")] = 0,
    from_results: Annotated[Path | None, typer.Option(
        "--from", help="Redraw saved results (filters.npz) without recomputing.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run saved in --out, with "
                                              "its own settings.")] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("cnnviz-out/filters"),
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    unsafe: UnsafeOpt = False,
) -> None:
    """Synthesize the image that maximally activates each filter of a layer (all at once)."""
    from cnnviz.oip.optimize import Settings, resume_filters, visualize_filters
    from cnnviz.oip.results import FilterResult
    from cnnviz.oip.transforms import Transforms
    from cnnviz.render.views import ORDERS, write_filter_views

    if order not in ORDERS:
        raise CnnvizError(f"unknown order '{order}': use {' or '.join(ORDERS)}")
    if from_results is not None:
        guard_output(out / "filters.html", force)
        result = FilterResult.load(from_results)
        written = write_filter_views(result, out, order=order)
        console.print(f"redrew {len(result.filters)} filters; wrote "
                      + ", ".join(str(p) for p in written), highlight=False, soft_wrap=True)
        return
    zoom = [float(v) for v in _split(scale) or []] if scale else [1.0, 1.0]
    if len(zoom) != 2:
        raise CnnvizError(f"--scale takes min,max, got '{scale}'")
    settings = Settings(steps=steps, update=method, lr=lr, param=param, decay=decay,
                        start=start, precursors=precursors, precursor_steps=precursor_steps,
                        transforms=Transforms(jitter, (zoom[0], zoom[1]), rotate, pad), tv=tv,
                        l1=l1, l2=l2, blur_every=blur_every, blur_sigma=blur_sigma,
                        preactivation=not post_activation, seed=seed)
    from cnnviz.models import resolve_map_layers

    if examples < 0:
        raise CnnvizError(f"--examples must be ≥ 0, got {examples}")
    if budget <= 0:
        raise CnnvizError(f"--budget must be positive, got {budget}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                        transient=True)
    task = progress.add_task("ascent steps", total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    if resume:
        if not (out / "filters.npz").exists():
            raise CnnvizError(f"nothing to resume: no filters.npz in {out}")
        previous = FilterResult.load(out / "filters.npz")
        if not previous.interrupted:
            raise CnnvizError(f"{out / 'filters.npz'} is complete: nothing to resume")
        net = load(model, unsafe)  # resume_filters restores the run's own preprocessing
        progress.update(task, description=f"{previous.layer}: ascent steps")
        real = None
        if previous.best_real is not None or previous.example_images is not None:
            from cnnviz.data import load_mnist

            real = load_mnist().x_test
        with progress:
            result = resume_filters(net, previous, reference_images=real, batch=batch,
                                    budget=budget * 2**20, on_progress=on_progress)
        name = result.layer
    else:
        guard_output(out / "filters.npz", force)
        net = load(model, unsafe, preprocess)
        name = layer or _default_conv_layer(net)
        resolve_map_layers(net, [name])
        chosen = parse_indices(filter_spec, int(_layer(net, name).output.shape[-1]))
        progress.update(task, description=f"{name}: ascent steps")
        real = None
        if reference or examples:
            from cnnviz.data import load_mnist

            real = load_mnist().x_test
        with progress:
            result = visualize_filters(net, name, chosen, settings, reference_images=real,
                                       examples=examples, batch=batch, budget=budget * 2**20,
                                       on_progress=on_progress)
    written = list(result.save(out / "filters.npz"))
    if len(result.filters):
        written += write_filter_views(result, out, order=order)
    live = ~result.dead
    from cnnviz.oip.optimize import bytes_per_image

    per_image = bytes_per_image(net, name) / 2**20
    chunks = -(-len(result.params["requested"]) // result.params["chunk"])
    console.print(f"memory: ~{per_image:.2f} MiB per image in a step; budget {budget} MiB → "
                  f"{chunks} chunk(s) of up to {result.params['chunk']} images", highlight=False)
    summary = (f"{name}: {len(result.filters)} filters in chunks of {result.params['chunk']}; "
               f"mean activation {result.activation.mean() if live.size else float('nan'):.3f}; "
               f"{int(result.dead.sum())} dead")
    if result.best_real is not None and live.any():
        summary += f"; {result.beats_real[live].mean():.0%} of live filters beat their best " \
                   "real test image"
    console.print(summary, highlight=False, soft_wrap=True)
    for filter_index, note in result.notes.items():
        console.print(f"  filter {filter_index}: {note}", highlight=False)
    console.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False, soft_wrap=True)
    if result.interrupted:
        err_console.print(f"[bold red]interrupted:[/] saved {len(result.filters)} of "
                          f"{len(result.params['requested'])} filters; --resume continues")
        raise typer.Exit(130)


@app.command()
@handle_errors
def kernels(
    model: ModelArg = None,
    layer: Annotated[str, typer.Option(help="A convolution layer.")] = "conv2d_1",
    channel: Annotated[int, typer.Option(help="Input channel to show when the layer has "
                                              "several.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("cnnviz-out/kernels"),
    force: ForceOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Show a convolution layer's kernel weights as images."""
    import numpy as np

    from cnnviz.models import load_model
    from cnnviz.render.views import write_kernel_views

    guard_output(out / "kernels.html", force)
    net = load_model(model, safe_mode=not unsafe)
    target = _layer(net, layer)
    weights = getattr(target, "kernel", None)
    if weights is None or len(weights.shape) != 4:
        raise CnnvizError(f"layer '{layer}' has no 2-D convolution kernel")
    kernel = np.asarray(weights)
    if not 0 <= channel < kernel.shape[2]:
        raise CnnvizError(f"--channel {channel} is out of range: '{layer}' has "
                          f"{kernel.shape[2]} input channels")
    written = write_kernel_views(kernel[:, :, channel, :], layer, out)
    console.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def patterns(
    model: ModelArg = None,
    layer: Annotated[str | None, typer.Option(help="Layer with maps [default: the deepest conv "
                                              "layer].")] = None,
    dense: Annotated[bool, typer.Option(help="Add the Dense layers (the MLP part).")] = True,
    data: Annotated[str, typer.Option(help="bundled, keras, fashion or a .npz file.")]
        = "bundled",
    split: Annotated[str, typer.Option(help="train or test.")] = "test",
    top: Annotated[int, typer.Option(help="How many top maps to list per class.")] = 5,
    class_: Annotated[int | None, typer.Option("--class", help="List the top maps of this "
                                                               "class only.")] = None,
    preactivation: Annotated[bool, typer.Option(
        "--pre-activation/--post-activation",
        help="Average maps before or after their ReLU.")] = False,
    batch: Annotated[int, typer.Option(help="Images per batch.")] = 256,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("cnnviz-out/patterns"),
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    unsafe: UnsafeOpt = False,
) -> None:
    """Which maps respond to which class: the mean map activation per class over a data set."""
    from cnnviz.activations import class_patterns
    from cnnviz.data import load_dataset
    from cnnviz.models import list_layers, resolve_map_layers
    from cnnviz.render.views import write_pattern_views

    if top <= 0 or batch <= 0:
        raise CnnvizError("--top and --batch must be positive")
    guard_output(out / "patterns.npz", force)
    net = load(model, unsafe, preprocess)
    name = layer or _default_conv_layer(net)
    resolve_map_layers(net, [name])
    dataset = load_dataset(data)
    images, labels = dataset.split(split)
    if labels is None:
        raise CnnvizError(f"data set '{dataset.name}' has no labels: class patterns need them")
    if class_ is not None and (labels.size == 0 or class_ not in set(labels.tolist())):
        raise CnnvizError(f"class {class_} is not in data set '{dataset.name}' ({split} split)")
    names = [name] + ([i.name for i in list_layers(net) if i.type == "Dense"] if dense else [])
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("images", total=len(images))
        result = class_patterns(net, images, labels, names, class_names=dataset.class_names,
                                preactivation=preactivation, batch_size=batch,
                                on_progress=lambda done, _: progress.update(task,
                                                                             completed=done))
    result.meta.update(dataset=f"{dataset.name} ({split})",
                       kinds={n: "maps" if n == name else "units" for n in names})
    written = list(result.save(out / "patterns.npz")) + write_pattern_views(result, out)
    tops = result.top_maps(name, top)
    for c, cname in enumerate(result.class_names):
        if (class_ is None or c == class_) and result.counts[c]:
            console.print(f"class {cname}: top maps of {name}: "
                          + ", ".join(map(str, tops[cname])), highlight=False)
    console.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def explain(
    model: ModelArg = None,
    digit: DigitOpt = None,
    index: IndexOpt = None,
    image: ImageOpt = None,
    method: Annotated[str, typer.Option(help="Overlay of: saliency, smoothgrad, gradcam or "
                                             "integrated_gradients.")] = "gradcam",
    target: Annotated[int | None, typer.Option(help="Class to explain [default: the "
                                                    "predicted one].")] = None,
    layer: Annotated[str | None, typer.Option(help="Grad-CAM layer [default: the last conv "
                                                   "layer].")] = None,
    seed: SeedOpt = 0,
    invert: InvertOpt = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("cnnviz-out/explain"),
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    unsafe: UnsafeOpt = False,
) -> None:
    """Which pixels drove a prediction: saliency, SmoothGrad, Grad-CAM, integrated gradients."""
    import numpy as np

    from cnnviz.attribution import METHODS
    from cnnviz.attribution import explain as attribute
    from cnnviz.data import select_input
    from cnnviz.models import input_shape
    from cnnviz.preprocess import preprocess_of
    from cnnviz.render.views import write_attribution_views

    if method not in METHODS:
        raise CnnvizError(f"unknown attribution method '{method}': use one of "
                          f"{', '.join(METHODS)}")
    guard_output(out / "explain.html", force)
    net = load(model, unsafe, preprocess)
    choice = select_input(input_shape(net), preprocess_of(net), digit=digit, index=index,
                          image=image,
                          seed=seed, invert=invert)
    print_notes(choice.notes)
    x = choice.image[None]
    probabilities = np.asarray(net.predict(x, verbose=0))[0]
    predicted = int(np.argmax(probabilities))
    explained = predicted if target is None else target
    heatmaps = {name: maps[0] for name, maps in attribute(net, x, METHODS, target=target,
                                                         layer=layer, seed=seed).items()}
    title = (f"{choice.source}: class {explained} explained (predicted {predicted}, "
             f"{probabilities[predicted]:.1%})")
    shown = preprocess_of(net).to_unit(choice.image)
    written = write_attribution_views(shown, heatmaps, method, out, value_range=(0.0, 1.0),
                                      title=title)
    console.print(title, highlight=False)
    if not heatmaps["gradcam"].any():
        console.print("note: Grad-CAM is zero everywhere: no map of its layer raises this class "
                      "at any position (try an earlier layer with --layer)", highlight=False)
    console.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def report(
    model: ModelArg = None,
    results: Annotated[Path | None, typer.Option(
        "--from", help="Folder with saved results (filters.npz, patterns.npz) to reuse.")]
        = None,
    layer: Annotated[str | None, typer.Option(help="Layer of the filter gallery [default: the "
                                              "deepest conv layer].")] = None,
    steps: Annotated[int, typer.Option(help="Ascent steps when filters are computed.")] = 100,
    examples: Annotated[int, typer.Option(help="Real images beside each filter.")] = 9,
    seed: SeedOpt = 0,
    out: Annotated[Path, typer.Option(help="The report file.")] = Path("cnnviz-out/report.html"),
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    unsafe: UnsafeOpt = False,
) -> None:
    """One self-contained HTML report: summary, activations, filters, class patterns,
    attributions."""
    from cnnviz.fileio import write_text
    from cnnviz.report import build_report

    if out.suffix.lower() not in (".html", ".htm"):
        raise CnnvizError(f"--out must be an .html file, got {out.name}")
    if steps <= 0 or examples < 0:
        raise CnnvizError("--steps must be positive and --examples ≥ 0")
    guard_output(out, force)
    net = load(model, unsafe, preprocess)
    with err_console.status("building the report") as status:
        page = build_report(net, results=results, layer=layer, steps=steps, examples=examples,
                            seed=seed, status=lambda what: status.update(f"report: {what}"))
    write_text(out, page)
    console.print(f"wrote {out} ({len(page) / 2**20:.1f} MiB)", highlight=False)


@app.command()
@handle_errors
def gallery(
    out: Annotated[Path, typer.Option(help="Gallery folder.")] = Path("gallery"),
    steps: Annotated[int, typer.Option(help="Ascent steps of the filter gallery.")] = 100,
    seed: SeedOpt = 0,
) -> None:
    """Rebuild the gallery: every command's output on the bundled model, same seeds each time."""
    runs = [
        ["activations", "--digit", "6", "--out", str(out / "activations")],
        ["filters", "--examples", "9", "--steps", str(steps), "--out", str(out / "filters")],
        ["kernels", "--out", str(out / "kernels")],
        ["patterns", "--out", str(out / "patterns")],
        ["explain", "--digit", "6", "--method", "integrated_gradients", "--out",
         str(out / "explain")],
        ["report", "--from", str(out), "--steps", str(steps), "--out",
         str(out / "report.html")],
    ]
    for args in runs:
        err_console.print(f"[bold]cnnviz {' '.join(args)}[/]", highlight=False)
        code = app(args + ["--seed", str(seed)] * (args[0] not in ("kernels", "patterns")) +
                   ["--force"], standalone_mode=False)
        if code:  # the step printed its error already
            raise typer.Exit(code)


@app.command()
@handle_errors
def train(
    out: Annotated[Path, typer.Option(help="Where to save the model (.keras or .h5).")]
        = Path("cnnviz-out/reference_cnn.keras"),
    data: Annotated[str, typer.Option(help="bundled (MNIST sample), keras (full MNIST, online) "
                                           "or fashion (Fashion-MNIST IDX files).")] = "bundled",
    conv: Annotated[str, typer.Option(help="Filters of each conv layer.")] = "32,64,128",
    pool_after: Annotated[str, typer.Option(help="Max-pool after these conv layers (1-based).")]
        = "1,2",
    dense: Annotated[str, typer.Option(help="Units of each hidden dense layer.")] = "120",
    epochs: int = 5,
    batch_size: int = 64,
    lr: Annotated[float, typer.Option(help="Initial learning rate.")] = 1e-3,
    momentum: Annotated[float, typer.Option(help="RMSprop momentum.")] = 0.5,
    schedule: Annotated[str, typer.Option(help="inverse_time, exponential or constant.")]
        = "inverse_time",
    decay_steps: int = 1000,
    decay_rate: float = 0.5,
    l2: Annotated[float, typer.Option(help="L2 penalty on the dense layers.")] = 5e-4,
    l1: Annotated[float, typer.Option(help="L1 penalty on the dense layers.")] = 0.0,
    n_train: Annotated[int | None, typer.Option(help="Use only the first N training images.")]
        = None,
    seed: int = 0,
    force: ForceOpt = False,
) -> None:
    """Train the reference CNN (RMSprop with momentum, a learning-rate schedule, L2) and save it."""
    from cnnviz.data import load_fashion_mnist, load_mnist
    from cnnviz.train import build_cnn, learning_rate_schedule, save_model
    from cnnviz.train import train as fit

    if out.suffix.lower() not in (".keras", ".h5"):
        raise CnnvizError(f"--out must end in .keras or .h5, got {out.name}")
    guard_output(out, force)
    learning_rate_schedule(schedule)  # validate before the data loads
    dataset = load_fashion_mnist() if data == "fashion" else load_mnist(data)
    x = dataset.x_train
    model = build_cnn(_ints(conv, "--conv"), _ints(pool_after, "--pool-after"),
                      _ints(dense, "--dense"), n_classes=len(dataset.class_names),
                      input_shape=(*x.shape[1:3], 1 if x.ndim == 3 else x.shape[3]),
                      l2=l2, l1=l1, seed=seed)
    n = len(x) if n_train is None else min(n_train, len(x))
    with _EpochBars(epochs, steps=-(-n // batch_size)) as bars:
        result = fit(dataset, model=model, epochs=epochs, batch_size=batch_size,
                     learning_rate=lr, momentum=momentum, schedule=schedule,
                     decay_steps=decay_steps, decay_rate=decay_rate, n_train=n_train, seed=seed,
                     on_progress=bars.update)
    save_model(result.model, out)
    console.print(f"test accuracy {result.test_accuracy:.4f} (loss {result.test_loss:.4f}) on "
                  f"{len(dataset.x_test)} {dataset.name} test images; wrote {out}",
                  highlight=False)


class _EpochBars:
    """One rich progress bar per epoch showing loss, accuracy and the current learning rate."""

    def __init__(self, epochs: int, steps: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.epochs, self.steps, self.epoch = epochs, steps, -1
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[metrics]}"), console=err_console)

    def __enter__(self) -> _EpochBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, epoch: int, step: int, logs: dict[str, float]) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.task = self.progress.add_task("train", total=self.steps, epoch=epoch + 1,
                                               epochs=self.epochs, metrics="")
        metrics = (f"loss {logs.get('loss', float('nan')):.4f}  "
                   f"acc {logs.get('accuracy', float('nan')):.4f}  lr {logs['lr']:.2e}")
        self.progress.update(self.task, completed=step, metrics=metrics)


def main() -> None:
    """Entry point of the ``cnnviz`` console script."""
    app()


if __name__ == "__main__":
    sys.exit(main())
