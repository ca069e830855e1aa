"""Output units: the files one command writes into a folder, complete or not at all, one writer
at a time. A manifest is data read from disk: no name in it is trusted as a path."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnnviz.core.errors import CnnvizError
from cnnviz.core.fileio import write_text

try:  # POSIX: a lock the kernel drops when its process ends, however it ends
    import fcntl
except ImportError:  # pragma: no cover - Windows: the writer's process id, checked while it lives
    fcntl = None

_DIGEST = re.compile(r"[0-9a-f]{64}")
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp(\.[^./]+)?")  # fileio.atomic_path's names
_MAX_MANIFEST = 64 << 20  # a larger manifest is not one cnnviz wrote (200,000 files ≈ 20 MiB)
CONTROL = ".cnnviz-"  # the prefix of a unit's own files: manifest, lock, checkpoint


def digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    value = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            value.update(block)
    return value.hexdigest()


def plain_name(name: object) -> bool:
    """Whether ``name`` is a plain file name in a unit's folder: no folder part, not absolute,
    not ``.``/``..``, no NUL, not one of a unit's own control files."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "\0" not in name
            and Path(name).name == name and "/" not in name and "\\" not in name
            and not name.startswith(CONTROL))


def read_manifest(folder: str | os.PathLike[str], kind: str) -> dict[str, str] | None:
    """The files (plain name → SHA-256) that the ``kind`` unit in ``folder`` lists; ``None``
    without a manifest. A manifest that is not what cnnviz writes — another kind, a name that
    is not a plain file name of the folder (``../x``, ``/etc/x``, ``a/b``), a digest that is
    not one — is refused whole, so that nothing it names is ever read, reused or deleted."""
    path = Path(folder) / f"{CONTROL}{kind}.json"
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise CnnvizError(f"cannot read {path}: {exc.strerror or exc}") from None
    why = ("it is not a plain file" if not stat.S_ISREG(info.st_mode) else
           "it is too large" if info.st_size > _MAX_MANIFEST else _manifest_problem(path, kind))
    if isinstance(why, dict):
        return why
    raise CnnvizError(f"{path} is not a manifest cnnviz wrote ({why}): nothing was read or "
                      f"deleted; remove that file if {Path(folder)} is yours, or choose another "
                      "--out")


def _manifest_problem(path: Path, kind: str) -> dict[str, str] | str:
    """The manifest's listing, or what is wrong with it."""
    try:
        listing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"unreadable: {type(exc).__name__}"
    if not isinstance(listing, dict) or listing.get("kind") != kind:
        return f"not a {kind} manifest"
    files = listing.get("files")
    if not isinstance(files, dict):
        return "no file list"
    for name, value in files.items():
        if not plain_name(name):
            return f"it names {ascii(name)[:80]}, not a file of this folder"
        if not isinstance(value, str) or not _DIGEST.fullmatch(value):
            return f"the digest of {ascii(name)[:80]} is not a SHA-256"
    return files


class FolderLock:
    """One writer at a time for a lock file. Under POSIX the lock is the kernel's (``flock``):
    a dead run's lock never blocks, whatever process later takes its id; the file holds the
    writer's process id for messages only."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: object | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fh is not None

    def holder(self) -> str | None:
        """The process id of a live writer holding the lock (``"?"`` where unreadable), or
        ``None`` when it is free; this object's own lock counts as held."""
        if self._fh is not None:
            return str(os.getpid())
        try:
            fh = _open_plain(self.path, os.O_RDWR)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CnnvizError(f"{self.path} is a link: cnnviz never follows one there; "
                                  "remove it") from None
            return "?"
        with fh:
            if fcntl is None:  # pragma: no cover
                return _live(fh.read(32))
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return fh.read(32).decode("ascii", "replace").strip() or "?"
            fcntl.flock(fh, fcntl.LOCK_UN)
            return None

    def acquire(self, what: str) -> None:
        """Take the lock, or refuse (one line naming ``what`` is being written) when a live
        writer holds it."""
        for _ in range(5):  # the file may be removed between open and lock: open it again
            try:
                fh = _open_plain(self.path, os.O_RDWR | os.O_CREAT)
            except OSError as exc:
                raise CnnvizError(f"{self.path} is a link: cnnviz never follows one there; "
                                  "remove it" if exc.errno == errno.ELOOP else
                                  f"cannot lock {self.path}: {exc.strerror or exc}") from None
            if self._lock(fh, what):
                fh.seek(0)
                fh.truncate()
                fh.write(str(os.getpid()).encode("ascii"))
                fh.flush()
                self._fh = fh
                return
        raise CnnvizError(f"could not lock {self.path}: another cnnviz run keeps replacing it")

    def _lock(self, fh: object, what: str) -> bool:
        """Lock the open ``fh``; False when its file was replaced meanwhile."""
        if fcntl is None:  # pragma: no cover
            fh.seek(0)
            pid = _live(fh.read(32))
            if pid is not None and pid != str(os.getpid()):
                fh.close()
                raise CnnvizError(f"another cnnviz run (process {pid}) is writing {what}")
            return True
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read(32).decode("ascii", "replace").strip() or "?"
            fh.close()
            raise CnnvizError(f"another cnnviz run (process {pid}) is writing {what}: wait for "
                              "it to finish, or choose another --out") from None
        try:
            same = os.fstat(fh.fileno()).st_ino == self.path.stat().st_ino
        except OSError:
            same = False
        if not same:
            fh.close()
        return same

    def release(self) -> None:
        """Give the lock back and remove its file."""
        if self._fh is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: nobody locks a file on its way out
        self._fh.close()
        self._fh = None


def _open_plain(path: Path, flags: int) -> Any:
    """``path`` opened for reading and writing without following a link (a link planted in
    the folder never makes cnnviz write elsewhere)."""
    return os.fdopen(os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o644), "r+b")


def _live(raw: bytes) -> str | None:  # pragma: no cover - the Windows fallback
    pid = raw.decode("ascii", "replace").strip()
    if not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError, OSError):
        return None
    return pid


class OutputUnit:
    """The files one command writes into a folder, kept together as one unit.

    A unit is complete when its manifest (``.cnnviz-<kind>.json``, written last) lists every
    file with its digest. A run holds the unit's lock from start to finish (``with unit:``), so
    that no second run writes into it meanwhile; one that only writes takes it while it writes.
    ``--force`` replaces the whole unit: files of the earlier run that the new one did not
    write are removed when they still hold what that run wrote; a run journals what it writes
    (``.cnnviz-<kind>.journal``), so the next removes what a killed run wrote as well, and the
    temporary files it left. Nothing outside the folder, and no file of other commands or of
    the user, is ever touched. A long run may keep a checkpoint
    (``.cnnviz-<kind>.checkpoint.npz``, one file) that the finished unit supersedes."""

    def __init__(self, folder: str | os.PathLike[str], kind: str, force: bool = False,
                 main: str = "") -> None:
        self.folder, self.kind, self.force = Path(folder), kind, force
        self.manifest = self.folder / f"{CONTROL}{kind}.json"
        self.checkpoint = self.folder / f"{CONTROL}{kind}.checkpoint.npz"
        self.journal = self.folder / f"{CONTROL}{kind}.journal"  # what a run wrote so far
        self._lock = FolderLock(self.folder / f"{CONTROL}{kind}.lock")
        self.lock = self._lock.path
        self._made: list[Path] = []
        existing = next(p for p in [self.folder, *self.folder.parents, Path(".")] if p.exists())
        if not existing.is_dir():
            raise CnnvizError(f"{self.folder} is a file, not a folder: choose another --out"
                              if existing == self.folder else
                              f"cannot write to {self.folder}: {existing} is a file")
        self._check_free()
        self._seen = self._state()
        if not force and self.checkpoint.exists():
            raise CnnvizError(f"{self.folder} holds an interrupted {kind} run: --resume "
                              "continues it, --force starts again")
        if not force and (self._seen[0] is not None or self._earlier_output(main)):
            raise CnnvizError(f"{self.folder} already holds an earlier {kind} run: pass --force "
                              "to replace it, or choose another --out")

    def _earlier_output(self, main: str) -> bool:
        """Whether ``main`` marks a complete run made before units had manifests: the file
        itself, and for saved results their ``.json`` twin too (an ``.npz`` alone is a run that
        did not finish, and blocks nothing)."""
        if not main or not (self.folder / main).exists():
            return False
        return not main.endswith(".npz") or (self.folder / main).with_suffix(".json").exists()

    def _check_free(self) -> None:
        pid = self._lock.holder()
        if pid is not None and not self._lock.held:
            raise CnnvizError(f"another cnnviz run (process {pid}) is writing {self.kind} into "
                              f"{self.folder}: wait for it to finish, or choose another --out")

    def _state(self) -> tuple[dict[str, str] | None, int | None]:
        """The manifest's listing (validated) and its modification time, as this run saw it."""
        listing = read_manifest(self.folder, self.kind)
        return listing, None if listing is None else self.manifest.stat().st_mtime_ns

    def __enter__(self) -> OutputUnit:
        """Hold the unit's lock until the block ends (a run that computes, checkpoints and
        writes); folders this made and left empty go with it."""
        self._made = [p for p in [self.folder, *self.folder.parents] if not p.exists()][::-1]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CnnvizError(f"cannot write to {self.folder}: {exc.strerror or exc}") from None
        self._lock.acquire(f"{self.kind} into {self.folder}")
        try:
            self._check_unchanged()
            self._clear_temporaries([])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        for folder in reversed(self._made):  # a run that wrote nothing leaves no folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made = []

    def _check_unchanged(self) -> None:
        """Refuse to write over a run that finished after this one looked at the folder."""
        if self._state() != self._seen:
            raise CnnvizError(f"another {self.kind} run finished writing into {self.folder} "
                              "while this one ran: nothing of this run was written; run it "
                              "again (--force replaces that run) or choose another --out")

    @contextlib.contextmanager
    def writing(self) -> Iterator[list[Path]]:
        """Write the unit: the block appends every path it writes to the yielded list. On
        success the manifest is written, the earlier run's leftovers and the checkpoint
        removed; on failure the unit stays incomplete (no manifest)."""
        with contextlib.ExitStack() as stack:
            if not self._lock.held:
                stack.enter_context(self)
            self._check_unchanged()
            # what the earlier run finished, and what a killed run wrote before it died
            earlier = {**read_journal(self.journal), **(self._seen[0] or {})}
            self.manifest.unlink(missing_ok=True)  # incomplete until this run has finished
            self._clear_temporaries([*earlier, self.manifest.name])
            self.journal.unlink(missing_ok=True)  # read: a new one, never through a link
            with _open_plain(self.journal, os.O_RDWR | os.O_CREAT | os.O_EXCL) as raw, \
                    io.TextIOWrapper(raw, encoding="utf-8") as log:
                written = _Journal(self.folder.resolve(), log)
                yield written
            names = sorted(written.names)
            self._remove_stale({n: d for n, d in earlier.items() if n not in names})
            listing = {"kind": self.kind, "files": {n: digest(self.folder / n) for n in names}}
            write_text(self.manifest, json.dumps(listing, indent=1) + "\n")
            self.checkpoint.unlink(missing_ok=True)
            self.journal.unlink(missing_ok=True)
            self._seen = self._state()

    def _remove_stale(self, stale: dict[str, str]) -> None:
        """Remove the earlier run's files that this run did not write — only regular files
        that still hold the bytes the manifest lists (a file the user replaced stays)."""
        for name, expected in stale.items():
            path = self.folder / name
            with contextlib.suppress(OSError):
                if stat.S_ISREG(path.lstat().st_mode) and digest(path) == expected:
                    path.unlink()

    def _clear_temporaries(self, names: list[str]) -> None:
        """Remove a killed run's temporary files: those of ``names`` and of the checkpoint,
        and, while no other cnnviz run writes into the folder, every file named as cnnviz
        names its temporary files (a killed run's name for a file not yet listed anywhere)."""
        orphans = [o for name in [*names, self.checkpoint.name]
                   for o in self.folder.glob(f".{glob.escape(name)}.*.tmp*")]
        writers = [p for p in self.folder.glob(f"{CONTROL}*.lock")
                   if p != self.lock and FolderLock(p).holder() is not None]
        if not writers:
            orphans += [p for p in self.folder.iterdir() if _TEMPORARY.fullmatch(p.name)]
        for orphan in orphans:
            with contextlib.suppress(OSError):
                if stat.S_ISREG(orphan.lstat().st_mode):
                    orphan.unlink()


class _Journal(list):
    """The paths a unit's run wrote: each file of the unit's folder is logged with its digest
    as it is added, so that a run killed half-way leaves the list of what it wrote."""

    def __init__(self, here: Path, log: Any) -> None:
        super().__init__()
        self.here, self.log, self.names = here, log, set()

    def append(self, path: Any) -> None:
        super().append(path)
        path = Path(path)
        if path.resolve().parent == self.here and path.name not in self.names:
            self.names.add(path.name)
            if path.is_file():  # one named before it is written is listed when the run ends
                self.log.write(f"{digest(path)} {path.name}\n")
                self.log.flush()

    def extend(self, paths: Any) -> None:
        for path in paths:
            self.append(path)

    def __iadd__(self, paths: Any) -> _Journal:
        self.extend(paths)
        return self


def read_journal(path: Path) -> dict[str, str]:
    """What a killed run wrote (plain name → SHA-256); lines that are not a digest and a plain
    file name are passed over, so a journal names nothing outside its folder."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_MANIFEST:
            return {}
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    pairs = (line.partition(" ") for line in lines)
    return {name: value for value, _, name in pairs
            if _DIGEST.fullmatch(value) and plain_name(name)}


def check_unit(path: str | os.PathLike[str], kind: str) -> None:
    """Refuse a saved result that another run is still writing, or whose files (the ``.npz``
    and its ``.json`` twin) changed after its run finished or are not listed by its unit."""
    path = Path(path)
    pid = FolderLock(path.parent / f"{CONTROL}{kind}.lock").holder()
    if pid is not None:
        raise CnnvizError(f"{path} is still being written by another cnnviz run (process {pid})")
    listing = read_manifest(path.parent, kind)
    if listing is None:
        return  # saved by the Python API, outside any unit
    twin = path.with_suffix(".json")
    for part in [path, *([twin] if path.suffix == ".npz" and twin.exists() else [])]:
        if part.name not in listing:
            raise CnnvizError(f"{part} is not one of the files its {kind} run wrote: compute "
                              "it again")
        if digest(part) != listing[part.name]:
            raise CnnvizError(f"{part} changed after the run that wrote it: compute it again")

