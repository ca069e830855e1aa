"""``serve``: the live explorer in the browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnviz.core.timing import span
from cnnviz.data.sources import no_data_note
from cnnviz.model.facts import ModelFacts
from cnnviz.serve.app import create_app, is_loopback, make_server, run_server
from cnnviz.serve.engine import Explorer
from cnnviz.serve.live import LiveView


def explorer_app(facts: ModelFacts, *, data: Any = None, atlas: str | Path | None = None,
                 size: tuple[int, int] | None = None, steps: int = 100,
                 seed: int = 0) -> tuple[Any, LiveView]:
    """The explorer's Dash app for ``facts`` and the :class:`LiveView` behind it, with the
    default view's compiled passes already built (the first stroke does not wait for them)."""
    explorer = Explorer(facts, data, atlas, size=size, steps=steps, seed=seed)
    live = LiveView(explorer)
    app = create_app(live)
    with span("compile"):
        layout = app.layout
        warm = _find(layout, "current").data
        if warm.get("kind") != "none":
            live.view(warm, [], _find(layout, "layer").value, _find(layout, "method").value, 0)
    return app, live


def _find(component: Any, wanted: str) -> Any:
    """The component with id ``wanted`` in a Dash layout."""
    if getattr(component, "id", None) == wanted:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str):
            found = _find(child, wanted)
            if found is not None:
                return found
    return None


def serve_job(facts: ModelFacts, *, data: Any = None, atlas: str | Path | None = None,
              host: str = "127.0.0.1", port: int = 8050, size: tuple[int, int] | None = None,
              steps: int = 100, seed: int = 0, say: Callable[[str], None] = print) -> None:
    """``cnnviz serve``: build the explorer, listen on ``host:port`` and serve until Ctrl-C;
    ``say`` gets the address and any warning."""
    app, live = explorer_app(facts, data=data, atlas=atlas, size=size, steps=steps, seed=seed)
    for note in facts.notes:
        say(note)
    if live.explorer.source is None:
        say(no_data_note(facts.name, facts.input_shape, "test images, top examples and class "
                         "profiles", "not shown"))
    server = make_server(app, host, port)
    if not is_loopback(host):
        say(f"warning: listening on {host}: anyone who can reach this machine can use the "
            "explorer and run the model")
    run_server(server, lambda url: say(f"cnnviz explorer at {url} (Ctrl-C stops it)"))
