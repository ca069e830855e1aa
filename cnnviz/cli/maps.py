"""Commands about what maps respond to: ``activations`` for one input, ``patterns`` per class."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnviz.cli.common import (
    MODEL_PANEL,
    OUTPUT_PANEL,
    DataOpt,
    DigitOpt,
    ForceOpt,
    ImageOpt,
    IndexOpt,
    InvertOpt,
    ModelArg,
    OutputOpt,
    PreprocessOpt,
    RayOpt,
    SeedOpt,
    SizeOpt,
    StandaloneOpt,
    UnsafeOpt,
    load,
    out_option,
    output_path,
    progress_bar,
    ray_runner,
    show,
    size,
    split,
)
from cnnviz.core import tables


def activations(
    model: ModelArg = None,
    digit: DigitOpt = None,
    index: IndexOpt = None,
    image: ImageOpt = None,
    invert: InvertOpt = False,
    data: DataOpt = None,
    size_: SizeOpt = None,
    layers: Annotated[str | None, typer.Option(
        "--layers", help="Comma-separated layer names, or all for every conv and pooling "
                         "layer.", rich_help_panel=MODEL_PANEL,
        show_default="every conv and pooling layer; past 16 of them, the end of each stage, "
                     "the pooling layers and merges between, 16 at most (a note says so)")
    ] = None,
    seed: SeedOpt = 0,
    scale: Annotated[str, typer.Option(
        metavar=tables.SCALES.metavar(), rich_help_panel=OUTPUT_PANEL,
        help="Colour scale of the PNG grids: one for the layer, or each map's own.")]
        = "shared",
    out: Annotated[Path | None, out_option("cnnviz-out/activations")] = None,
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    output: OutputOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """Activation maps of every conv and pooling layer for one input."""
    from cnnviz.jobs import InputSpec, activations_job

    out = output_path(out, "cnnviz-out/activations", "activations", force)
    spec = InputSpec(image, digit, index, data, size(size_), seed, invert)
    show(activations_job(load(model, unsafe, preprocess, output), out, spec,
                         layers=split(layers), scale=scale, force=force, standalone=standalone))


def patterns(
    model: ModelArg = None,
    layer: Annotated[str | None, typer.Option(
        help="Layer with maps.", show_default="the deepest conv layer",
        rich_help_panel=MODEL_PANEL)] = None,
    dense: Annotated[bool, typer.Option(
        help="Add the Dense layers (the MLP part).", rich_help_panel=MODEL_PANEL)] = True,
    data: DataOpt = None,
    split_: Annotated[str, typer.Option(
        "--split", metavar=tables.SPLITS.metavar(), rich_help_panel=MODEL_PANEL,
        help="Which split of bundled, keras, fashion or .npz data.")] = "test",
    size_: SizeOpt = None,
    preactivation: Annotated[bool, typer.Option(
        "--pre-activation/--post-activation", rich_help_panel=MODEL_PANEL,
        help="Average maps before or after their ReLU.")] = False,
    batch: Annotated[int, typer.Option(help="Images per batch.")] = 256,
    top: Annotated[int, typer.Option(
        help="How many top maps to list per class.", rich_help_panel=OUTPUT_PANEL)] = 5,
    values: Annotated[str, typer.Option(
        metavar=tables.PATTERN_VALUES.metavar(), rich_help_panel=OUTPUT_PANEL,
        help="What the heatmaps show and the top maps rank by: "
             + tables.PATTERN_VALUES.helps())] = "contrast",
    maps: Annotated[bool, typer.Option(
        "--maps", rich_help_panel=OUTPUT_PANEL,
        help="Also each class's mean image of every map of --layer, and its difference from "
             "the mean over all classes (class_maps_* PNG grids and an HTML page).")] = False,
    class_: Annotated[int | None, typer.Option(
        "--class", help="List the top maps of this class only.", rich_help_panel=OUTPUT_PANEL,
        show_default="every class")] = None,
    ray: RayOpt = None,
    shard: Annotated[int, typer.Option(
        rich_help_panel=OUTPUT_PANEL, help="Images per part with --ray.")] = 2000,
    resume: Annotated[bool, typer.Option(
        rich_help_panel=OUTPUT_PANEL, help="Continue an interrupted run saved in --out (give "
                                           "the same model, data and options).")] = False,
    checkpoint: Annotated[float, typer.Option(
        rich_help_panel=OUTPUT_PANEL, metavar="SECONDS",
        help="Save the sums of the images seen every N seconds, so that --resume continues "
             "even after a crash (0: only at Ctrl-C).")] = 60.0,
    out: Annotated[Path | None, out_option("cnnviz-out/patterns")] = None,
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    output: OutputOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """Which maps respond to which class: the mean map activation per class over a data set."""
    from cnnviz.jobs import patterns_job

    out = output_path(out, "cnnviz-out/patterns", "patterns", force, resume)
    facts = load(model, unsafe, preprocess, output)
    with progress_bar("class patterns", "images") as progress:
        outcome = patterns_job(facts, out, layer=layer, dense=dense, data=data, split=split_,
                               size=size(size_), top=top, only_class=class_,
                               preactivation=preactivation, batch=batch, force=force,
                               standalone=standalone, map_images=maps, progress=progress,
                               runner=ray_runner(ray), shard=shard, resume=resume,
                               checkpoint=checkpoint, values=values)
    show(outcome)
