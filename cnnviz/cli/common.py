"""What every command shares: option types, error handling, loading the model, parsing lists,
progress bars, and printing what a library call did. Nothing here checks what the
library checks."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from cnnviz.core import tables
from cnnviz.core.errors import CnnvizError
from cnnviz.core.text import printable
from cnnviz.core.timing import listening, recording

if TYPE_CHECKING:
    from cnnviz.jobs import Outcome
    from cnnviz.model.facts import ModelFacts

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
VERBOSE = {"on": False}  # set by ``cnnviz --verbose``

MODEL_PANEL = "Model and data"
OUTPUT_PANEL = "Output"

ModelArg = Annotated[Path | None, typer.Argument(
    help="A .keras or .h5 model file.", show_default="the bundled reference CNN")]
UnsafeOpt = Annotated[bool, typer.Option(
    "--unsafe", rich_help_panel=MODEL_PANEL,
    help="Allow Lambda layers (runs code from the model file: trusted files only).")]
PreprocessOpt = Annotated[str, typer.Option(
    metavar=tables.PREPROCESSING.metavar(), rich_help_panel=MODEL_PANEL,
    help="How the model wants its pixels: auto reads the model (0..255 after a leading "
         "Rescaling; a Keras Applications architecture's own mode, named in a note; else "
         "0..1); unit 0..1, symmetric -1..1, raw 0..255, caffe or torch (ImageNet modes).")]
DigitOpt = Annotated[int | None, typer.Option(
    "--class", "--digit", rich_help_panel=MODEL_PANEL,
    help="Use an image of this class of the data (--digit: the same, for the bundled digits "
         "0-9), drawn with --seed.", show_default="a 6")]
IndexOpt = Annotated[int | None, typer.Option(
    rich_help_panel=MODEL_PANEL, help="Use the bundled test image at this index.")]
ImageOpt = Annotated[Path | None, typer.Option(
    rich_help_panel=MODEL_PANEL, help="Use this image file (any size; converted to the "
                                      "model's input).")]
InvertOpt = Annotated[bool, typer.Option(
    rich_help_panel=MODEL_PANEL, help="Invert an image file (dark ink on white).")]
DataOpt = Annotated[str | None, typer.Option(
    "--data", metavar=tables.DATA.metavar(),
    rich_help_panel=MODEL_PANEL, show_default="the bundled MNIST digits, for 28×28×1 models only",
    help="Images: " + tables.DATA.helps())]
SizeOpt = Annotated[str | None, typer.Option(
    "--size", metavar="H,W", rich_help_panel=MODEL_PANEL,
    show_default="the model's own; for a model of any size, the image's own",
    help="Input size for a model that takes any size (None in its input shape).")]
OutputOpt = Annotated[str | None, typer.Option(
    "--output", metavar="NAME|INDEX", rich_help_panel=MODEL_PANEL,
    show_default="the first, with a note", help="Which output of a multi-output model to use.")]
SeedOpt = Annotated[int, typer.Option(
    help="Random seed: which image of --digit, noise, transforms.")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", rich_help_panel=OUTPUT_PANEL,
    help="Overwrite the results of an earlier run in the same place.")]
StandaloneOpt = Annotated[bool, typer.Option(
    "--standalone", rich_help_panel=OUTPUT_PANEL,
    help="Inline plotly.js in each HTML page (one self-contained file, ~4.6 MiB more) instead "
         "of one plotly.min.js shared by the pages of the folder.")]

PrecisionOpt = Annotated[str, typer.Option(
    "--precision", metavar=tables.PRECISIONS.metavar(),
    help="Float type of the model's passes in the ascent: " + tables.PRECISIONS.helps() +
         " What each image reaches is measured in float32.")]

RayOpt = Annotated[str | None, typer.Option(
    "--ray", metavar="auto|local|ADDRESS", show_default="in this process",
    help="Compute the parts on a Ray cluster: the one RAY_ADDRESS names (else a new local "
         "one), a new local one, or a cluster's address (ray://head:10001); a GPU per worker "
         "where the cluster has GPUs. Needs pip install 'cnnviz[ray]'.")]


def ray_runner(address: str | None) -> Any:
    """``--ray``: the runner of a job's parts on that cluster (``None``: in this process)."""
    if address is None:
        return None
    from cnnviz.parts.cluster import RayRunner

    return RayRunner(address)


def out_option(default: str, what: str = "Output folder.", numbered: bool = True) -> Any:
    """An ``--out`` option in the output panel; ``numbered``: when it is not given, a run goes
    to the default or, beside an earlier run, to a new numbered sibling."""
    shown = f"{default}, or a new {Path(default).stem}-2, -3… beside an earlier run" \
        if numbered else default
    return typer.Option(help=what, rich_help_panel=OUTPUT_PANEL, show_default=shown)


def output_path(out: Path | None, default: str, kind: str, force: bool = False,
                resume: bool = False) -> Path:
    """Where the run writes (:func:`cnnviz.core.units.chosen_out`), saying so in a note when
    an earlier run sent it to a numbered sibling."""
    from cnnviz.core.places import chosen_out

    path, note = chosen_out(out, default, kind, force=force, resume=resume)
    if note:
        err_console.print(f"[yellow]note:[/] {safe(note)}", highlight=False, soft_wrap=True)
    return path


def check_early(command: Callable[..., Any], values: dict[str, Any]) -> None:
    """Before the model loads (TensorFlow's start-up): each option whose metavar lists a
    table's choices holds one of them (or, where ``all`` is offered, several comma-separated);
    ``--image`` names a non-empty file; ``--data`` names data that exists."""
    import typing

    hints = typing.get_type_hints(command, include_extras=True)
    for name, value in values.items():
        if not isinstance(value, str):
            if name == "image" and value is not None:
                from cnnviz.data.images import check_image_file

                check_image_file(value)
            continue
        if name == "data":
            from cnnviz.data.sources import data_entry

            data_entry(value)
            continue
        info = next((m for m in getattr(hints.get(name), "__metadata__", ())
                     if hasattr(m, "metavar")), None)
        metavar = getattr(info, "metavar", None) or ""
        if not metavar.startswith("["):
            continue
        offered = metavar.strip("[]").split("|")
        if any(c.isupper() or ":" in c for c in offered):
            continue  # free forms (FOLDER, image:PATH): the library checks them
        parts = [p.strip() for p in value.split(",")] if "all" in offered and value != "all" \
            else [value]  # several choices where "all" is offered, "all" only alone
        for part in parts:
            if part in offered and not (part == "all" and len(parts) > 1):
                continue
            table = next((t for t in tables.ALL if set(t.names()) <= set(offered)), None)
            if table is not None:
                table.check(part)  # its own line: "unknown attribution method 'x': use …"
            flag = (info.param_decls or (f"--{name.rstrip('_').replace('_', '-')}",))[0]
            raise CnnvizError(f"{flag} takes {' or '.join(offered)}, got '{value}'")


def handle_errors(command: F) -> F:
    """Turn cnnviz errors into one red line on stderr and exit code 1; Ctrl-C into exit 130;
    options are checked before anything heavy loads (:func:`check_early`)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_early(command, kwargs)
            with recording() as phases:
                try:
                    with live_status(f"cnnviz {command.__name__}"):
                        return command(*args, **kwargs)
                finally:
                    if VERBOSE["on"]:
                        err_console.print(f"[dim]time: {phases.line()}[/]", highlight=False,
                                          soft_wrap=True)  # one line, however narrow
        except typer.Exit:
            raise
        except CnnvizError as exc:
            err_console.print(f"[bold red]error:[/] {safe(exc)}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None
        except BrokenPipeError:  # `cnnviz layers | head`: the reader has all it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # so that the interpreter's last flush finds a sink
            raise typer.Exit(0) from None
        except Exception as exc:
            if os.environ.get("CNNVIZ_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            err_console.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: "
                              f"{safe(first)} "
                              "(set CNNVIZ_DEBUG=1 for the traceback)", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def load(model: Path | None, unsafe: bool, preprocess: str = "auto",
         output: str | None = None, run: bool = True) -> ModelFacts:
    """The model file (default: the bundled reference CNN) as model facts (``run=False``: only
    read, never called)."""
    from cnnviz.model.facts import load as load_facts

    return load_facts(model, preprocess=preprocess, unsafe=unsafe, output=output, run=run)


def size(value: str | None) -> tuple[int, int] | None:
    """``"224,224"`` → (224, 224)."""
    if value is None:
        return None
    numbers = ints(value, "--size")
    if len(numbers) != 2:
        raise CnnvizError(f"--size takes H,W, got '{value}'")
    return numbers[0], numbers[1]


def split(value: str | None) -> list[str] | None:
    """``"a, b"`` → ["a", "b"]; ``None`` stays ``None``."""
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise CnnvizError(f"empty list: '{value}'")
    return items


def ints(value: str, option: str) -> list[int]:
    """Comma-separated whole numbers."""
    try:
        return [int(v) for v in split(value) or []]
    except ValueError:
        raise CnnvizError(f"{option} takes comma-separated whole numbers, got '{value}'") from None


def floats(value: str, option: str, count: int) -> tuple[float, ...]:
    """Exactly ``count`` comma-separated numbers."""
    try:
        numbers = tuple(float(v) for v in split(value) or [])
    except ValueError:
        numbers = ()
    if len(numbers) != count:
        raise CnnvizError(f"{option} takes {count} comma-separated numbers, got '{value}'")
    return numbers


def target(value: str | None, layer: str | None) -> Any:
    """``--target``: a class number, or ``channel:K`` (of the output, or of ``--target-layer``);
    ``--target-layer`` alone explains that layer's strongest channel."""
    from cnnviz.attribution import ChannelTarget

    if value is None:
        return None if layer is None else ChannelTarget(None, layer)
    kind, colon, number = value.partition(":")
    if colon and kind == "channel" and number.isdigit():
        return ChannelTarget(int(number), layer)
    if not colon and value.lstrip("-").isdigit() and layer is None:
        return int(value)
    raise CnnvizError(f"--target takes a class number or channel:K (with --target-layer only "
                      f"channel:K), got '{value}'")


DOING = {"import": "starting Keras", "load": "loading", "compile": "compiling",
         "compute": "computing", "render": "drawing", "write": "writing"}
_LIVE: dict[str, Any] = {}  # the running command's display: progress, task, label


def _columns() -> list[Any]:
    from rich.progress import (
        BarColumn,
        SpinnerColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return [SpinnerColumn(), "[progress.description]{task.description}", BarColumn(),
            _Count(), _Speed(), TimeElapsedColumn(), TimeRemainingColumn()]


@contextlib.contextmanager
def live_status(command: str) -> Iterator[None]:
    """While a command runs in a terminal, one transient line on stderr says what it is doing
    (starting Keras, loading, compiling, computing, drawing, writing) and for how long; a bar
    joins it for long loops (:func:`progress_bar`). Nothing in a pipe or under tests."""
    if not err_console.is_terminal or _LIVE:
        yield
        return
    from rich.progress import Progress

    with Progress(*_columns(), console=err_console, transient=True) as progress:
        task = progress.add_task(command, total=None, unit="")
        _LIVE.update(progress=progress, task=task, label=command, status=command)

        def doing(name: str) -> None:
            current = _LIVE.get("task", task)
            if current != task and any(t.id == current and t.finished for t in progress.tasks):
                progress.update(current, visible=False)  # a finished bar: the command goes on
                progress.update(task, visible=True)
                _LIVE.update(task=task, label=command)
                current = task
            label = _LIVE.get("label", command)
            progress.update(current,
                            description=f"{label}: {DOING.get(name, name)}" if name else label)
            progress.refresh()  # now: a long import may keep the refresh thread waiting

        try:
            with listening(doing):
                yield
        finally:
            _LIVE.clear()


def stop_live() -> None:
    """End the running command's display before it prints its results."""
    progress = _LIVE.pop("progress", None)
    if progress is not None:
        progress.stop()


@contextlib.contextmanager
def progress_bar(description: str, unit: str | None = None
                 ) -> Iterator[Callable[[int, int], None]]:
    """A bar for a long loop, in the command's display (a transient rich bar on stderr of its
    own outside one); yields the ``(done, total)`` callback to hand down."""
    label = description + (f" ({unit})" if unit else "")
    live = _LIVE.get("progress")
    if live is None:
        from rich.progress import Progress

        with Progress(*_columns(), console=err_console, transient=True) as progress:
            task = progress.add_task(label, total=None, unit=unit or "steps")
            yield lambda done, total: progress.update(task, completed=done, total=total)
        return
    status = _LIVE["task"]
    live.update(status, visible=False)
    task = live.add_task(label, total=None, unit=unit or "steps")
    _LIVE.update(task=task, label=label)
    try:
        yield lambda done, total: live.update(task, completed=done, total=total)
    finally:
        if _LIVE.get("progress") is live:
            live.remove_task(task)
            live.update(status, visible=True, description=_LIVE["status"])
            _LIVE.update(task=status, label=_LIVE["status"])


def _Count() -> Any:  # noqa: N802 (a column class, made where rich is imported)
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Count(ProgressColumn):
        """``done/total`` once the total is known; nothing before (no "0/?")."""

        def render(self, task: Any) -> Text:
            if task.total is None:
                return Text("")
            return Text(f"{task.completed:,.0f}/{task.total:,.0f}", style="progress.download")

    return Count()


def _Speed() -> Any:  # noqa: N802 (a column class, made where rich is imported)
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Speed(ProgressColumn):
        """Items per second, as rich measures them, for a task with a unit."""

        def render(self, task: Any) -> Text:
            unit = task.fields.get("unit", "")
            if task.speed is None or not unit or task.total is None:
                return Text("")
            return Text(f"{task.speed:,.0f} {unit}/s")

    return Speed()


def safe(text: object) -> str:
    """A user-supplied string for rich output: control characters shown as escapes, markup
    brackets taken literally."""
    return escape(printable(text))


def show(outcome: Outcome) -> None:
    """Print a library call's outcome: notes on stderr, lines on stdout; exit 130 when it was
    interrupted (what it kept is saved)."""
    stop_live()
    for note in outcome.notes:
        err_console.print(f"[yellow]note:[/] {safe(note)}", highlight=False, soft_wrap=True)
    for line in outcome.lines:
        console.print(printable(line), highlight=False, soft_wrap=True, markup=False)
    if outcome.interrupted:
        err_console.print(f"[bold red]interrupted:[/] {safe(outcome.interrupted)}",
                          highlight=False)
        raise typer.Exit(130)
