"""``explain``: which pixels drove a prediction."""

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
    show,
)


def explain(
    model: ModelArg = None,
    digit: DigitOpt = None,
    index: IndexOpt = None,
    image: ImageOpt = None,
    invert: InvertOpt = False,
    target: Annotated[int | None, typer.Option(
        help="Class to explain.", show_default="the predicted class",
        rich_help_panel=MODEL_PANEL)] = None,
    layer: Annotated[str | None, typer.Option(
        help="Grad-CAM layer.", show_default="the deepest conv layer (or the nested model "
                                             "holding it)", rich_help_panel=MODEL_PANEL)] = None,
    method: Annotated[str, typer.Option(
        metavar="[saliency|smoothgrad|gradcam|integrated_gradients]",
        rich_help_panel=OUTPUT_PANEL, help="The method drawn over the input in the PNG (the "
                                           "HTML shows all four).")] = "gradcam",
    seed: SeedOpt = 0,
    out: Annotated[Path, out_option("cnnviz-out/explain")] = Path("cnnviz-out/explain"),
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    unsafe: UnsafeOpt = False,
) -> None:
    """Which pixels drove a prediction: saliency, SmoothGrad, Grad-CAM, integrated gradients."""
    from cnnviz.jobs import explain_job

    show(explain_job(load(model, unsafe, preprocess), out, method=method, target=target,
                     layer=layer, digit=digit, index=index, image=image, seed=seed,
                     invert=invert, force=force, standalone=standalone))
