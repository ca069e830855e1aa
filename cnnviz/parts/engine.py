"""One parts engine: a job is planned as parts, each part computed by the same function in this
process or on a Ray cluster, and the results merged exactly. A job that keeps its parts in a
folder (the atlas) saves each as it finishes, stamped with the digests of the model, data and
settings it came from, so that an interrupted run continues where it stopped and a part of
another run is refused."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnviz.errors import CnnvizError
from cnnviz.fileio import write_text
from cnnviz.units import digest

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
        """One part's result (in this process, or in a worker that got the same work)."""
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


class InProcess:
    """Runs the parts one after the other in this process."""

    def run(self, work: Work, todo: list[Part], progress: Progress
            ) -> Iterator[tuple[Part, Any]]:
        """Each part with its result, as it finishes."""
        for part in todo:
            yield part, work.compute(part, progress.within)


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
    it finishes and an earlier run's parts are read instead of computed again."""
    done = Done(work.plan())
    progress = Progress(sum(p.units for p in done.plan), on_progress)
    stamp = json.loads(json.dumps(work.stamp()))  # tuples as lists, as they read back
    for part in done.plan if folder is not None else []:
        found = _read(work, part, folder, stamp)
        if found is not None:
            done.results[part] = found
            done.reused += 1
            progress.advance(part.units)
    todo = [part for part in done.plan if part not in done.results]
    for part, value in (runner or InProcess()).run(work, todo, progress):
        if folder is not None:
            path = work.path(part, folder)
            work.save(part, value, path)
            write_text(_stamp_path(path), json.dumps({**stamp, "sha256": digest(path)}) + "\n")
        done.results[part] = value
        done.computed += 1
        progress.advance(part.units)
    return done


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".stamp.json")


def _read(work: Work, part: Part, folder: Path, stamp: dict[str, Any]) -> Any:
    """The part an earlier run finished (its stamp written last), or ``None`` (none, an
    unfinished or damaged one: it is made again); one of another model, data or settings is
    refused."""
    path = work.path(part, folder)
    try:
        theirs = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(theirs, dict):
        return None
    differs = [key for key in stamp if theirs.get(key) != stamp[key]]
    if differs:
        raise CnnvizError(f"{path} was made from another {' and '.join(differs)}: pass --force "
                          "to start again, or choose another --out")
    try:
        if digest(path) != theirs.get("sha256"):
            return None
        return work.load(part, path)
    except (OSError, CnnvizError):
        return None
