"""Where a run writes when ``--out`` is not given: the default, or beside an earlier run a new
numbered sibling, so that a rerun is never refused and never replaces anything."""

from __future__ import annotations

import os
from pathlib import Path

from cnnviz.core.units import CONTROL


def numbered(default: str | os.PathLike[str], n: int) -> Path:
    """The ``n``-th sibling of a default output: ``out/explain`` → ``out/explain-2``,
    ``out/report.html`` → ``out/report-2.html`` (``n`` 1: the default itself)."""
    path = Path(default)
    return path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def _interrupted(path: Path, kind: str) -> bool:
    """Whether ``path`` holds a run that stopped before it finished and can be continued."""
    if not path.is_dir():
        return False
    finished = (path / f"{CONTROL}{kind}.json").exists()
    return (path / f"{CONTROL}{kind}.checkpoint.npz").exists() or (
        kind == "atlas" and (path / "parts").is_dir() and not finished)


def chosen_out(given: str | os.PathLike[str] | None, default: str | os.PathLike[str],
               kind: str, *, force: bool = False, resume: bool = False
               ) -> tuple[Path, str | None]:
    """Where a run writes, and a note when it is not the default: ``given`` when the user named
    it; with ``force`` the default itself (replaced); with ``resume`` the newest of the default
    and its numbered siblings holding an interrupted run; else the first of them that does not
    exist yet (or is an empty folder) — so a rerun never meets an earlier run and never
    destroys one."""
    if given is not None:
        return Path(given), None
    base = Path(default)
    if force:
        return base, None
    taken = []
    n = 1
    while (candidate := numbered(base, n)).exists() and not (
            candidate.is_dir() and not any(candidate.iterdir())):
        taken.append(candidate)
        n += 1
    if resume:
        for earlier in reversed(taken):
            if _interrupted(earlier, kind):
                return earlier, None
    if not taken:
        return candidate, None
    earlier = taken[-1]
    stopped = " (an interrupted run: --resume continues it)" if _interrupted(earlier, kind) \
        else ""
    return candidate, (f"{earlier} holds an earlier {kind} run{stopped}: this one goes to "
                       f"{candidate} (--out to choose, --force to replace {base})")
