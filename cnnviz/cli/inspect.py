"""Commands that read a model without running it: ``layers`` and ``kernels``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnviz.cli.common import (
    MODEL_PANEL,
    ForceOpt,
    ModelArg,
    SizeOpt,
    StandaloneOpt,
    UnsafeOpt,
    console,
    load,
    out_option,
    output_path,
    show,
    size,
    stop_live,
)
from cnnviz.core.text import printable


def layers(model: ModelArg = None, size_: SizeOpt = None, unsafe: UnsafeOpt = False) -> None:
    """List a model's layers: name, type, output shape, number of maps, and the receptive field
    and stride of each unit in input pixels."""
    from rich.table import Table
    from rich.text import Text

    from cnnviz.jobs import layers_job

    found = layers_job(model, size=size(size_), unsafe=unsafe)
    stop_live()
    if not console.is_terminal:  # a pipe or a file: whole names, tab-separated, no box
        print(printable(found.title))
        print("\t".join(("name", "type", "output shape", "maps", "field", "stride")))
        for row in found.rows:
            print("\t".join(printable(cell) for cell in row))
        return
    table = Table(title=Text(printable(found.title)), show_lines=False,
                  caption="field: input pixels one unit sees; stride: pixels between units")
    for column, justify in (("name", "left"), ("type", "left"), ("output shape", "left"),
                            ("maps", "right"), ("field", "right"), ("stride", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in found.rows:
        table.add_row(*(Text(printable(cell)) for cell in row))  # names are not markup
    console.print(table)


def kernels(
    model: ModelArg = None,
    layer: Annotated[str | None, typer.Option(
        help="A 2-D convolution layer.", show_default="the first conv layer",
        rich_help_panel=MODEL_PANEL)] = None,
    channel: Annotated[int | None, typer.Option(
        help="Input channel to show when the layer has several.", show_default="channel 0 in "
        "the HTML; the PNG in colour for a layer reading RGB", rich_help_panel=MODEL_PANEL)
    ] = None,
    out: Annotated[Path | None, out_option("cnnviz-out/kernels")] = None,
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    unsafe: UnsafeOpt = False,
) -> None:
    """Show a convolution layer's kernel weights as images (PNG and HTML)."""
    from cnnviz.jobs import kernels_job

    out = output_path(out, "cnnviz-out/kernels", "kernels", force)
    show(kernels_job(load(model, unsafe, run=False), out, layer=layer, channel=channel, force=force,
                     standalone=standalone))
