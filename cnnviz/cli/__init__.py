"""The ``cnnviz`` command line: each command parses its options, calls one library function
(:mod:`cnnviz.jobs`) and prints what it did. ``--help`` imports no TensorFlow."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated

import typer
import typer.core

from cnnviz.cli.common import VERBOSE, console, handle_errors
from cnnviz.cli.help import asks_for_help, print_help
from cnnviz.core import tables


class _Command(typer.core.TyperCommand):
    def format_help(self, ctx: typer.Context, formatter: object) -> None:
        print_help(self, ctx, console)


class _Group(typer.core.TyperGroup):
    def format_help(self, ctx: typer.Context, formatter: object) -> None:
        print_help(self, ctx, console)


app = typer.Typer(
    cls=_Group,
    name="cnnviz",
    help="See what a trained Keras CNN has learned: activation maps, optimal input patterns, "
         "class patterns and attributions, as PNG and interactive HTML. MODEL defaults to the "
         "bundled reference CNN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for entry in tables.COMMANDS:  # the table's order is the help's
    app.command(entry.name, cls=_Command)(handle_errors(entry.load()))


def _version(value: bool) -> None:
    if value:
        from cnnviz.version import __version__

        console.print(f"cnnviz {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the cnnviz version and exit.")] = False,
             verbose: Annotated[bool, typer.Option(
        "--verbose", help="End with where the time went: import, load, compile, compute, "
                          "render, write.")] = False) -> None:
    """See what a trained Keras CNN has learned."""
    VERBOSE["on"] = verbose


def main() -> None:
    """Entry point of the ``cnnviz`` console script. A help page is printed without parsing
    the rest of the command line."""
    import typer.main

    group = typer.main.get_command(app)
    wanted = asks_for_help(sys.argv[1:], list(getattr(group, "commands", {})))
    if wanted is None:
        try:
            app()
        except SystemExit as exc:
            _exit(exc.code)
        return
    ctx = typer.Context(group, info_name="cnnviz")
    if wanted:
        command = group.commands[wanted]  # type: ignore[attr-defined]
        ctx = typer.Context(command, info_name=wanted, parent=ctx)
        print_help(command, ctx, console)
    else:
        print_help(group, ctx, console)


def _exit(code: object) -> None:
    """End the process with ``code``. Once TensorFlow or JAX is loaded, without the
    interpreter's teardown of their modules (0.9 s after every command on a 2-core machine):
    everything cnnviz writes is complete and closed by now, and the terminal is flushed."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    status = 0 if code is None else int(code)  # type: ignore[call-overload]
    if not {"tensorflow", "jax"} & set(sys.modules):
        raise SystemExit(status)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (| head)
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
