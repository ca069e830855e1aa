"""Where a command's time goes: named phases (import, load, compile, compute, render, write),
recorded only while :func:`recording` is active, each counted once (a phase inside another is
taken out of the outer one)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

PHASES = ("import", "load", "compile", "compute", "render", "write")
F = TypeVar("F", bound=Callable[..., Any])
ENV = "CNNVIZ_PHASES"  # a file to write the phases of a command to, as JSON (benchmarks)


@dataclass
class Phases:
    """Seconds per phase, and the phase running now (innermost last)."""

    seconds: dict[str, float] = field(default_factory=dict)
    running: list[str] = field(default_factory=list)
    spans: dict[str, float] = field(default_factory=dict)
    start: float = field(default_factory=time.perf_counter)

    def total(self) -> float:
        """Seconds since recording began."""
        return time.perf_counter() - self.start

    def line(self) -> str:
        """``import 3.1 s · load 0.4 s · … · other 0.2 s (7.9 s)``: the phases in their usual
        order, then what no phase covered (argument parsing, checks, printing)."""
        total = self.total()
        names = [p for p in PHASES if p in self.seconds] + \
            [p for p in self.seconds if p not in PHASES]
        parts = [f"{name} {self.seconds[name]:.2f} s" for name in names]
        other = total - sum(self.seconds.values())
        return " · ".join([*parts, f"other {max(other, 0.0):.2f} s"]) + f" ({total:.2f} s)"

    def to_json(self) -> dict[str, Any]:
        """The phases, the spans and the total, in seconds."""
        return {**self.seconds, "spans": dict(self.spans), "total": self.total()}


_ACTIVE: ContextVar[Phases | None] = ContextVar("cnnviz_phases", default=None)


@contextlib.contextmanager
def recording() -> Iterator[Phases]:
    """Record the phases of the block; with ``CNNVIZ_PHASES=FILE`` in the environment they
    are also written to FILE as JSON when it ends."""
    phases = Phases()
    token = _ACTIVE.set(phases)
    try:
        yield phases
    finally:
        _ACTIVE.reset(token)
        target = os.environ.get(ENV)
        if target:
            with contextlib.suppress(OSError), open(target, "w", encoding="utf-8") as fh:
                json.dump(phases.to_json(), fh)


_LISTENER: ContextVar[Callable[[str], None] | None] = ContextVar("cnnviz_phase_listener",
                                                               default=None)


@contextlib.contextmanager
def listening(listener: Callable[[str], None]) -> Iterator[None]:
    """Tell ``listener`` the name of each phase as it starts, and the outer phase's name (or
    ``""``) as it ends: what a progress display says the command is doing."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Count the block's time as ``name`` (and not as the phase it runs inside)."""
    phases, listener = _ACTIVE.get(), _LISTENER.get()
    if listener:
        listener(name)
    if phases is None:
        try:
            yield
        finally:
            if listener:
                listener("")
        return
    begin = time.perf_counter()
    phases.running.append(name)
    try:
        yield
    finally:
        spent = time.perf_counter() - begin
        phases.running.pop()
        phases.seconds[name] = phases.seconds.get(name, 0.0) + spent
        if phases.running:
            outer = phases.running[-1]
            phases.seconds[outer] = phases.seconds.get(outer, 0.0) - spent
        if listener:
            listener(phases.running[-1] if phases.running else "")


@contextlib.contextmanager
def span(name: str) -> Iterator[None]:
    """Also keep the block's whole time as ``name`` (phases inside it still count as
    themselves): a yardstick such as the ascent, for benchmarks."""
    phases = _ACTIVE.get()
    begin = time.perf_counter()
    try:
        yield
    finally:
        if phases is not None:
            phases.spans[name] = phases.spans.get(name, 0.0) + time.perf_counter() - begin


def timed(name: str) -> Callable[[F], F]:
    """A decorator: every call of the function counts as phase ``name``."""
    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with phase(name):
                return function(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate
