"""One parts engine: a job is planned as parts, each part computed by the same function in this
process or on a Ray cluster, and the results merged exactly. A job that keeps its parts in a
folder (the atlas) saves each as it finishes, stamped with the digests of the model, data and
settings it came from, so that an interrupted run continues where it stopped and a part of
another run is refused."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnviz.core.errors import CnnvizError, Stopped
from cnnviz.core.fileio import write_text
from cnnviz.core.units import digest

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Part:
    """One piece of a job: items ``first``..``last`` — filters of ``layer``, or (``layer``
    empty) images of the data; ``units`` counts its work (ascent steps, images) for progress."""

    layer: str
    first: int
    last: int
    units: int


class Work:
    """What a job's parts compute: :meth:`plan` and :meth:`compute`; a job that keeps its
    parts on disk also says where (:meth:`path`), how to read one back (:meth:`load`) and
    what made them (:meth:`stamp`). Instances travel to Ray workers, so they hold plain
    data: the model facts, the data source, the settings."""

    def plan(self) -> list[Part]:
        """The parts, in the order they are merged."""
        raise NotImplementedError

    def compute(self, part: Part, on_progress: Callable[[int, Any], None] | None = None) -> Any:
        """One part's result (in this process, or in a worker that got the same work). Ctrl-C
        may raise :class:`~cnnviz.core.errors.Stopped` with the part's state; a work whose
        parts can continue takes it back as the keyword ``resume``."""
        raise NotImplementedError

    def stamp(self) -> dict[str, Any]:
        """The digests of the model, data and settings the parts come from (JSON values)."""
        raise NotImplementedError

    def path(self, part: Part, folder: Path) -> Path:
        """Where ``part``'s file lives under ``folder``."""
        raise NotImplementedError

    def load(self, part: Part, path: Path) -> Any:
        """The part saved at ``path``."""
        raise NotImplementedError

    def save(self, part: Part, value: Any, path: Path) -> None:
        """Write ``value`` to ``path``."""
        value.save(path, twin=False)


class Progress:
    """One count over a whole job: the units of its parts."""

    def __init__(self, total: int, report: ProgressFn | None) -> None:
        self.done, self.total, self.report = 0, total, report

    def within(self, count: int, _: Any = None) -> None:
        """``count`` units into the running part."""
        if self.report:
            self.report(self.done + count, self.total)

    def advance(self, count: int) -> None:
        """A part of ``count`` units finished."""
        self.done += count
        self.within(0)


class PartStopped(Stopped):
    """Ctrl-C inside ``part``, with its value over its first ``done`` items (``state``)."""

    def __init__(self, part: Part, state: object, done: int) -> None:
        super().__init__(state, done)
        self.part = part


class InProcess:
    """Runs the parts one after the other in this process; a part that Ctrl-C stops hands
    over what it computed (:class:`PartStopped`), and one of a data pass hands its partial
    value to ``partial`` every ``partial.every`` seconds."""

    def run(self, work: Work, todo: list[Part], progress: Progress, partial: Any = None,
            resumes: dict[Part, Any] | None = None) -> Iterator[tuple[Part, Any]]:
        """Each part with its result, as it finishes (a part of ``resumes`` continues from
        the state given there)."""
        for part in todo:
            extra = {} if partial is None else {"partial": partial}
            if resumes and part in resumes:
                extra["resume"] = resumes[part]
            try:
                value = work.compute(part, progress.within, **extra)
            except Stopped as stop:
                raise PartStopped(part, stop.state, stop.done) from None
            yield part, value


@dataclass
class Done:
    """A job's parts, planned and computed: each part's result in plan order, and how many
    were read from an earlier run or computed now."""

    plan: list[Part]
    results: dict[Part, Any] = field(default_factory=dict)
    reused: int = 0
    computed: int = 0

    def of(self, layer: str) -> list[Any]:
        """The results of ``layer``'s parts (``""``: the data's), in plan order."""
        return [self.results[p] for p in self.plan if p.layer == layer]


def run_parts(work: Work, runner: Any = None, folder: Path | None = None,
              on_progress: ProgressFn | None = None) -> Done:
    """Every part of ``work``, computed by ``runner`` (default: in this process; or a
    :class:`~cnnviz.parts.cluster.RayRunner`). With ``folder``, each part is saved there as
    it finishes and an earlier run's parts are read instead of computed again; a part that
    Ctrl-C stops in this process is saved as it stood (``*.partial.npz``) and the next run
    hands it to :meth:`Work.compute` as ``resume``."""
    done = Done(work.plan())
    progress = Progress(sum(p.units for p in done.plan), on_progress)
    stamp = json.loads(json.dumps(work.stamp()))  # tuples as lists, as they read back
    resumes: dict[Part, Any] = {}
    for part in done.plan if folder is not None else []:
        found = _read(work, part, folder, stamp)
        if found is not None:
            done.results[part] = found
            done.reused += 1
            progress.advance(part.units)
        else:
            stopped = _read(work, part, folder, stamp, partial=True)
            if stopped is not None:
                resumes[part] = stopped
    todo = [part for part in done.plan if part not in done.results]
    try:
        for part, value in (runner or InProcess()).run(work, todo, progress, resumes=resumes):
            if folder is not None:
                _keep(work, part, value, work.path(part, folder), stamp)
                stood = _partial_path(work.path(part, folder))  # superseded
                stood.unlink(missing_ok=True)
                _stamp_path(stood).unlink(missing_ok=True)
            done.results[part] = value
            done.computed += 1
            progress.advance(part.units)
    except PartStopped as stop:
        if folder is not None and stop.state is not None:
            _keep(work, stop.part, stop.state, _partial_path(work.path(stop.part, folder)),
                  stamp)
        raise
    return done


def _keep(work: Work, part: Part, value: Any, path: Path, stamp: dict[str, Any]) -> None:
    """Save a part's value at ``path``, then its stamp (written last: a part without one is
    unfinished)."""
    work.save(part, value, path)
    write_text(_stamp_path(path), json.dumps({**stamp, "sha256": digest(path)}) + "\n")


def _partial_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".npz") + ".partial.npz")


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".stamp.json")


def _check_stamp(path: Path, theirs: dict[str, Any], stamp: dict[str, Any], advice: str) -> None:
    """Refuse in one line what ``path`` holds when another model, data or settings made it
    (``stamp``: ours, as JSON values)."""
    differs = [key for key in stamp if theirs.get(key) != stamp[key]]
    if differs:
        raise CnnvizError(f"{path} was made from another {' and '.join(differs)}: {advice}")


def _read(work: Work, part: Part, folder: Path, stamp: dict[str, Any],
          partial: bool = False) -> Any:
    """The part an earlier run finished (its stamp written last) — or, with ``partial``, the
    state Ctrl-C left it in — or ``None`` (none, an unfinished or damaged one: it is made
    again); one of another model, data or settings is refused."""
    path = work.path(part, folder)
    path = _partial_path(path) if partial else path
    try:
        theirs = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(theirs, dict):
        return None
    _check_stamp(path, theirs, stamp, "pass --force to start again, or choose another --out")
    try:
        if digest(path) != theirs.get("sha256"):
            return None
        return work.load(part, path)
    except (OSError, CnnvizError):
        return None


@dataclass(frozen=True)
class Tally:
    """What a data pass covered so far: the exactly merged value of the item ranges done (a
    result with ``merged``), and those ranges, joined and in order."""

    value: Any = None
    covered: tuple[tuple[int, int], ...] = ()

    @property
    def count(self) -> int:
        """How many items the ranges cover."""
        return sum(b - a for a, b in self.covered)

    def plus(self, first: int, last: int, value: Any) -> Tally:
        """This tally and ``value``, the result of items ``first``..``last``."""
        if value is None or last <= first:
            return self
        merged = value if self.value is None else self.value.merged(value)
        spans: list[tuple[int, int]] = []
        for a, b in sorted([*self.covered, (first, last)]):
            if spans and a <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(b, spans[-1][1]))
            else:
                spans.append((a, b))
        return Tally(merged, tuple(spans))

    def missing(self, first: int, last: int) -> list[tuple[int, int]]:
        """The ranges of ``first``..``last`` not covered yet."""
        gaps, at = [], first
        for a, b in self.covered:
            if a > at and at < last:
                gaps.append((at, min(a, last)))
            at = max(at, b)
        return gaps + ([(at, last)] if at < last else [])


class _Partial:
    """A running part's partial values, joined with the parts finished, handed to
    ``report`` at most every ``every`` seconds."""

    def __init__(self, report: Callable[[Tally], None] | None, every: float) -> None:
        self.report, self.every = report, every if report else 0.0
        self.tally, self.last, self.reported = Tally(), time.monotonic(), -1

    def due(self) -> bool:
        """Whether a checkpoint is due."""
        return self.every > 0 and time.monotonic() - self.last >= self.every

    def __call__(self, part: Part, value: Any, done: int) -> None:
        """``value``: ``part``'s result over its first ``done`` items."""
        if self.report and self.due() and part.last >= 0:
            self._report(self.tally.plus(part.first, part.first + done, value))

    def finished(self) -> None:
        """A part finished (and joined the tally)."""
        if self.report and self.due():
            self._report(self.tally)

    def _report(self, tally: Tally) -> None:
        if tally.count != self.reported:  # a part's last batch, then the part: once
            self.report(tally)  # type: ignore[misc]
            self.reported = tally.count
        self.last = time.monotonic()


def run_pass(work: Work, tally: Tally | None = None, runner: Any = None,
             on_progress: ProgressFn | None = None,
             on_checkpoint: Callable[[Tally], None] | None = None,
             checkpoint_every: float = 60.0) -> Tally:
    """A data pass (parts are item ranges whose results merge exactly): the parts of ``work``
    that ``tally`` (what an earlier, interrupted run covered) lacks, computed by ``runner``
    and merged into it. Every ``checkpoint_every`` seconds ``on_checkpoint`` gets what is
    covered so far — in this process inside a running part too, on a cluster as parts finish;
    Ctrl-C raises :class:`~cnnviz.core.errors.Stopped` with the same."""
    plan = work.plan()
    partial = _Partial(on_checkpoint, checkpoint_every)
    partial.tally = tally or Tally()
    todo = [Part(p.layer, a, b, b - a) for p in plan if p.last >= 0
            for a, b in partial.tally.missing(p.first, p.last)] + \
        [p for p in plan if p.last < 0 and not partial.tally.covered]
    progress = Progress(sum(p.units for p in plan), on_progress)
    progress.advance(partial.tally.count)
    try:
        for part, value in (runner or InProcess()).run(work, todo, progress, partial):
            partial.tally = partial.tally.plus(part.first, part.last, value) \
                if part.last >= 0 else Tally(value)  # a source of unknown size: all of it
            progress.advance(part.units)
            partial.finished()
    except PartStopped as stop:
        known = stop.part.last >= 0
        raise Stopped(partial.tally.plus(stop.part.first, stop.part.first + stop.done,
                                         stop.state) if known else partial.tally) from None
    except KeyboardInterrupt:
        raise Stopped(partial.tally) from None
    return partial.tally


def save_tally(tally: Tally, path: Path, stamp: dict[str, Any]) -> None:
    """Write ``tally`` (a checkpoint of a data pass) to ``path`` in one step, with the digests
    of the model, data and settings it came from."""
    value = copy.copy(tally.value)
    value.params = {**value.params, "covered": [list(s) for s in tally.covered],
                    "stamp": json.loads(json.dumps(stamp))}
    value.save(path, twin=False)


def read_tally(path: Path, stamp: dict[str, Any], load: Callable[[Path], Any]) -> Tally:
    """The tally :func:`save_tally` wrote to ``path``; one of another model, data or settings
    is refused in one line."""
    value = load(path)
    params = dict(value.params)
    theirs, covered = params.pop("stamp", None), params.pop("covered", None)
    if not isinstance(theirs, dict) or not isinstance(covered, list):
        raise CnnvizError(f"{path} is not a checkpoint of a data pass: pass --force to start "
                          "again")
    _check_stamp(path, theirs, json.loads(json.dumps(stamp)),
                 "run the interrupted command as it was, or pass --force to start again")
    try:
        spans = tuple((int(a), int(b)) for a, b in covered)
        if any(not 0 <= a < b for a, b in spans):
            raise ValueError
    except (TypeError, ValueError):
        raise CnnvizError(f"{path} is damaged (its covered ranges): pass --force to start "
                          "again") from None
    value.params = params
    return Tally(value, spans)
