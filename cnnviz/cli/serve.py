"""``cnnviz serve``: the live explorer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnviz.cli.common import (
    MODEL_PANEL,
    DataOpt,
    ModelArg,
    OutputOpt,
    PreprocessOpt,
    SeedOpt,
    SizeOpt,
    UnsafeOpt,
    console,
    err_console,
    load,
    safe,
    size,
    stop_live,
)


def serve(
    model: ModelArg = None,
    data: DataOpt = None,
    atlas: Annotated[Path | None, typer.Option(
        "--atlas", rich_help_panel=MODEL_PANEL, show_default="none: computed on first click",
        help="A folder cnnviz atlas wrote (same model): its patterns, top images and class "
             "profiles are shown instead of computed.")] = None,
    host: Annotated[str, typer.Option(
        help="Address to listen on; anything but this machine's own (127.0.0.1, localhost, "
             "::1) lets other machines in, with a warning.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8050,
    steps: Annotated[int, typer.Option(help="Ascent steps of a pattern computed on a "
                                            "click.")] = 100,
    size_: SizeOpt = None,
    seed: SeedOpt = 0,
    preprocess: PreprocessOpt = "auto",
    output: OutputOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """A live explorer in the browser: draw a digit (28×28 grey models), upload an image or
    pick one of the data, and watch the prediction, a layer's maps and an attribution answer
    on every stroke; click a map to see what its filter looks for, a class bar to see what
    the model takes that class to be. Ctrl-C stops it. Needs
    pip install 'cnnviz[serve]'."""
    from cnnviz.jobs.serve import serve_job

    facts = load(model, unsafe, preprocess, output)

    def say(line: str) -> None:
        stop_live()
        if line.startswith("cnnviz explorer at"):
            console.print(safe(line), highlight=False)
        else:
            err_console.print(f"[yellow]{safe(line)}[/]", highlight=False, soft_wrap=True)

    serve_job(facts, data=data, atlas=atlas, host=host, port=port, size=size(size_),
              steps=steps, seed=seed, say=say)
    err_console.print("stopped", highlight=False)
