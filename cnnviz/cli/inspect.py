"""Commands that read a model without running it: ``layers`` and ``kernels``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnviz.cli.common import (
    MODEL_PANEL,
    ForceOpt,
    ModelArg,
    StandaloneOpt,
    UnsafeOpt,
    console,
    load,
    out_option,
    show,
)


def layers(model: ModelArg = None, unsafe: UnsafeOpt = False) -> None:
    """List a model's layers: name, type, output shape and number of maps."""
    from rich.table import Table

    from cnnviz.models import list_layers

    facts = load(model, unsafe)
    table = Table(title=facts.name, show_lines=False)
    for column, justify in (("name", "left"), ("type", "left"), ("output shape", "left"),
                            ("maps", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for info in list_layers(facts.model):
        shape = "(" + ", ".join("None" if s is None else str(s) for s in info.output_shape) + ")"
        table.add_row(info.name, info.type, shape, "" if info.maps is None else str(info.maps))
    console.print(table)


def kernels(
    model: ModelArg = None,
    layer: Annotated[str | None, typer.Option(
        help="A 2-D convolution layer.", show_default="the first conv layer",
        rich_help_panel=MODEL_PANEL)] = None,
    channel: Annotated[int, typer.Option(
        help="Input channel to show when the layer has several.",
        rich_help_panel=MODEL_PANEL)] = 0,
    out: Annotated[Path, out_option("cnnviz-out/kernels")] = Path("cnnviz-out/kernels"),
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Show a convolution layer's kernel weights as images (PNG and HTML)."""
    from cnnviz.jobs import kernels_job

    show(kernels_job(load(model, unsafe), out, layer=layer, channel=channel, force=force,
                     standalone=standalone))
