"""Help pages: every option in its panel, two columns that keep the help text wide at any
terminal width. ``cnnviz [COMMAND] --help`` is printed without parsing the other arguments and
without typer's rich help module, so that it appears at once."""

from __future__ import annotations

import inspect
import re
from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

ARGUMENTS = "Arguments"
OPTIONS = "Options"
LEFT_MAX = 30  # widest left column (option names and metavar), in cells
TYPE_NAMES = {"integer": "INT", "int": "INT", "float": "FLOAT", "path": "PATH", "text": "TEXT",
              "str": "TEXT", "boolean": "BOOL", "bool": "BOOL"}


def asks_for_help(args: list[str], commands: list[str]) -> str | None:
    """Whose help ``args`` ask for: ``""`` for the tool (no arguments, or ``--help`` alone), a
    command's name (``COMMAND ... --help``), ``None`` when they ask for none (or for something
    the parser must judge, such as an unknown command)."""
    if not args or args == ["--help"]:
        return ""
    head = args[: args.index("--")] if "--" in args else args
    if args[0] in commands and "--help" in head:
        return args[0]
    return None


def print_help(command: Any, ctx: Any, console: Console | None = None) -> None:
    """Print the help page of a click ``command`` (a typer group or command) in ``ctx``."""
    console = console or Console()
    width = min(console.width, 110)
    parts: list[Any] = [Padding(Text(command.get_usage(ctx), style="bold"), (1, 1, 0, 1))]
    for paragraph in paragraphs(command.help or ""):
        parts.append(Padding(Text(paragraph), (1, 1, 0, 1)))
    parts.append(Text(""))
    panels: dict[str, list[tuple[Text, Text]]] = {}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        kind = ARGUMENTS if param.param_type_name == "argument" else OPTIONS
        panel = getattr(param, "rich_help_panel", None) or kind
        panels.setdefault(panel, []).append((_names(param), _help(param)))
    order = [ARGUMENTS, OPTIONS] + [p for p in panels if p not in (ARGUMENTS, OPTIONS)]
    for title in order:
        if panels.get(title):
            parts.append(_panel(title, panels[title], width))
    subcommands = getattr(command, "commands", {})
    if subcommands:
        rows = [(Text(name, style="bold cyan"), Text(first_paragraph(sub.help or "")))
                for name, sub in subcommands.items() if not getattr(sub, "hidden", False)]
        parts.append(_panel("Commands", rows, width))
    console.print(Group(*parts), width=width, highlight=False, soft_wrap=False)


def paragraphs(text: str) -> list[str]:
    """A docstring's paragraphs, each on one line (the terminal wraps them)."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", inspect.cleandoc(text))
            if block.strip()]


def first_paragraph(text: str) -> str:
    """The first paragraph of a help text, on one line."""
    found = paragraphs(text)
    return found[0] if found else ""


def _panel(title: str, rows: list[tuple[Text, Text]], width: int) -> Panel:
    left = min(LEFT_MAX, max(len(names) for names, _ in rows))
    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(width=left, overflow="fold")
    table.add_column(ratio=1, overflow="fold")
    for names, text in rows:
        table.add_row(names, text)
    return Panel(table, title=title, title_align="left", border_style="dim", width=width,
                 padding=(0, 1))


def _names(param: Any) -> Text:
    """``--name / --no-name`` or ``--name METAVAR``; an argument's name in capitals."""
    if param.param_type_name == "argument":
        names = Text(param.name.upper(), style="bold cyan")
        metavar = ""
    else:
        opts = sorted(param.opts, key=lambda o: o.startswith("--"))  # short first, then as declared
        names = Text(", ".join(opts), style="bold cyan")
        if param.secondary_opts:
            names.append(" / " + ", ".join(param.secondary_opts), style="bold magenta")
        metavar = "" if getattr(param, "is_flag", False) else _metavar(param)
    if metavar:
        names.append(" " + metavar, style="yellow")
    return names


def _metavar(param: Any) -> str:
    """The option's metavar, or its value type in capitals (from click's type, or from the
    annotation where typer keeps no click type)."""
    if param.metavar:
        return str(param.metavar)
    kind = getattr(getattr(param, "type", None), "name", None)
    if kind is None:
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        kind = getattr(annotation, "__name__", "value")
    kind = str(kind).lower()
    return TYPE_NAMES.get(kind, kind.upper())


def _help(param: Any) -> Text:
    text = Text(" ".join((getattr(param, "help", None) or "").split()))
    default = _default(param)
    if default:
        text.append(f"{' ' if text else ''}[default: {default}]", style="dim")
    if getattr(param, "required", False):
        text.append(" [required]", style="dim red")
    return text


def _default(param: Any) -> str:
    """What the option takes when not given, as the help says it."""
    shown = getattr(param, "show_default", None)
    if isinstance(shown, str):
        return shown
    if shown is False:
        return ""
    value = param.default
    if value is None or callable(value):
        return ""
    if getattr(param, "is_flag", False) and param.secondary_opts:
        names = param.opts if value else param.secondary_opts
        return names[0].lstrip("-")
    if isinstance(value, bool):
        return "" if not value and getattr(param, "is_flag", False) else str(value).lower()
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)
