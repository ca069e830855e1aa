"""Commands about what maps respond to: ``activations`` for one input, ``patterns`` per class."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnviz.cli.common import (
    MODEL_PANEL,
    OUTPUT_PANEL,
    DigitOpt,
    ForceOpt,
    ImageOpt,
    IndexOpt,
    InvertOpt,
    ModelArg,
    PreprocessOpt,
    SeedOpt,
    StandaloneOpt,
    UnsafeOpt,
    load,
    out_option,
    progress_bar,
    show,
    split,
)


def activations(
    model: ModelArg = None,
    digit: DigitOpt = None,
    index: IndexOpt = None,
    image: ImageOpt = None,
    invert: InvertOpt = False,
    layers: Annotated[str | None, typer.Option(
        "--layers", help="Comma-separated layer names.", rich_help_panel=MODEL_PANEL,
        show_default="every conv and pooling layer")] = None,
    seed: SeedOpt = 0,
    scale: Annotated[str, typer.Option(
        metavar="[shared|per-map]", rich_help_panel=OUTPUT_PANEL,
        help="Colour scale of the PNG grids: one for the layer, or each map's own.")]
        = "shared",
    out: Annotated[Path, out_option("cnnviz-out/activations")] = Path("cnnviz-out/activations"),
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    unsafe: UnsafeOpt = False,
) -> None:
    """Activation maps of every conv and pooling layer for one input."""
    from cnnviz.jobs import activations_job

    show(activations_job(load(model, unsafe, preprocess), out, layers=split(layers), digit=digit,
                         index=index, image=image, seed=seed, invert=invert, scale=scale,
                         force=force, standalone=standalone))


def patterns(
    model: ModelArg = None,
    layer: Annotated[str | None, typer.Option(
        help="Layer with maps.", show_default="the deepest conv layer",
        rich_help_panel=MODEL_PANEL)] = None,
    dense: Annotated[bool, typer.Option(
        help="Add the Dense layers (the MLP part).", rich_help_panel=MODEL_PANEL)] = True,
    data: Annotated[str, typer.Option(
        metavar="[bundled|keras|fashion|FILE.npz]", rich_help_panel=MODEL_PANEL,
        help="Labelled images: the bundled MNIST sample, full MNIST (keras.datasets, online), "
             "Fashion-MNIST (Debian's IDX files) or an .npz file.")] = "bundled",
    split_: Annotated[str, typer.Option(
        "--split", metavar="[train|test]", rich_help_panel=MODEL_PANEL,
        help="Which split of the data.")] = "test",
    preactivation: Annotated[bool, typer.Option(
        "--pre-activation/--post-activation", rich_help_panel=MODEL_PANEL,
        help="Average maps before or after their ReLU.")] = False,
    batch: Annotated[int, typer.Option(help="Images per batch.")] = 256,
    top: Annotated[int, typer.Option(
        help="How many top maps to list per class.", rich_help_panel=OUTPUT_PANEL)] = 5,
    class_: Annotated[int | None, typer.Option(
        "--class", help="List the top maps of this class only.", rich_help_panel=OUTPUT_PANEL,
        show_default="every class")] = None,
    out: Annotated[Path, out_option("cnnviz-out/patterns")] = Path("cnnviz-out/patterns"),
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    unsafe: UnsafeOpt = False,
) -> None:
    """Which maps respond to which class: the mean map activation per class over a data set."""
    from cnnviz.jobs import patterns_job

    facts = load(model, unsafe, preprocess)
    with progress_bar("class patterns", "images") as progress:
        outcome = patterns_job(facts, out, layer=layer, dense=dense, data=data, split=split_,
                               top=top, only_class=class_, preactivation=preactivation,
                               batch=batch, force=force, standalone=standalone,
                               progress=progress)
    show(outcome)
