"""The ``cnnviz`` command line: each command parses its options, calls one library function
(:mod:`cnnviz.jobs`) and prints what it did. ``--help`` imports no TensorFlow."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cnnviz.cli import explain, filters, inspect, maps, site, train
from cnnviz.cli.common import console, handle_errors

app = typer.Typer(
    name="cnnviz",
    help="See what a trained Keras CNN has learned: activation maps, optimal input patterns, "
         "class patterns and attributions, as PNG and interactive HTML. MODEL defaults to the "
         "bundled reference CNN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for command in (inspect.layers, maps.activations, filters.filters, inspect.kernels,
                maps.patterns, explain.explain, site.report, site.gallery, train.train):
    app.command()(handle_errors(command))


def _version(value: bool) -> None:
    if value:
        from cnnviz.version import __version__

        console.print(f"cnnviz {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the cnnviz version and exit.")] = False) -> None:
    """See what a trained Keras CNN has learned."""


def main() -> None:
    """Entry point of the ``cnnviz`` console script."""
    app()


if __name__ == "__main__":
    sys.exit(main())
