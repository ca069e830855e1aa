"""``explain``: which pixels drove a prediction."""

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
    SeedOpt,
    SizeOpt,
    StandaloneOpt,
    UnsafeOpt,
    load,
    out_option,
    output_path,
    show,
    size,
    target,
)
from cnnviz.core import tables


def explain(
    model: ModelArg = None,
    digit: DigitOpt = None,
    index: IndexOpt = None,
    image: ImageOpt = None,
    invert: InvertOpt = False,
    data: DataOpt = None,
    size_: SizeOpt = None,
    target_: Annotated[str | None, typer.Option(
        "--target", metavar="CLASS|channel:K", rich_help_panel=MODEL_PANEL,
        show_default="the predicted class; for a model whose output is maps, its strongest "
                     "channel",
        help="What to explain: a class number, or the mean of channel K of the output (or of "
             "--target-layer).")] = None,
    target_layer: Annotated[str | None, typer.Option(
        rich_help_panel=MODEL_PANEL, show_default="the output",
        help="Explain a channel of this layer instead of the output.")] = None,
    layer: Annotated[str | None, typer.Option(
        help="The layer Grad-CAM, Grad-CAM++ and LayerCAM read.",
        show_default="the deepest layer whose maps are at least 7×7 (coarser maps land "
                     "anywhere), else the deepest conv layer", rich_help_panel=MODEL_PANEL)] = None,
    method: Annotated[str, typer.Option(
        metavar=tables.ATTRIBUTIONS.metavar("all"),
        rich_help_panel=OUTPUT_PANEL, help="The methods to compute: one, several "
                                           "comma-separated, or all; the first is drawn over "
                                           "the input in the PNG, the HTML shows each.")
    ] = "gradcam",
    baseline: Annotated[str, typer.Option(
        metavar=tables.BASELINES.metavar(), rich_help_panel=MODEL_PANEL,
        help="Where integrated gradients start: black, the input blurred, uniform noise, the "
             "mean of --data, or expected gradients over --data.")] = "black",
    metrics: Annotated[bool, typer.Option(
        "--metrics", rich_help_panel=OUTPUT_PANEL,
        help="Check each method: deletion and insertion beside the same pixels in random "
             "order, and how much its map changes as the weights are re-drawn from the top "
             "layer down (cascading randomization); a method that fails is flagged ⚠ in the "
             "page and the PNG.")] = False,
    indices: Annotated[str | None, typer.Option(
        "--indices", metavar="0-15,20", rich_help_panel=MODEL_PANEL,
        help="Explain several images of --data (or the bundled digits) at once: one grid of "
             "inputs × methods, explain_grid.png and explain.html (at most 64).")] = None,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, out_option("cnnviz-out/explain")] = None,
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    output: OutputOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """Which pixels drove a prediction: gradients (signed), integrated gradients, Grad-CAM,
    Grad-CAM++, LayerCAM, and occlusion and RISE as model-agnostic references."""
    from cnnviz.jobs import InputSpec, explain_job

    out = output_path(out, "cnnviz-out/explain", "explain", force)
    spec = InputSpec(image, digit, index, data, size(size_), seed, invert)
    show(explain_job(load(model, unsafe, preprocess, output), out, spec, method=method,
                     target=target(target_, target_layer), layer=layer, baseline=baseline,
                     metrics=metrics, force=force, standalone=standalone, indices=indices))
