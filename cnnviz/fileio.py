"""Atomic file writing: a failed write never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.errors import CnnvizError
from cnnviz.timing import phase


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix,
                                   dir=target.parent)
    except OSError as exc:
        raise CnnvizError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        with phase("write"):
            yield tmp_path
            os.replace(tmp_path, target)
    except OSError as exc:  # a full disk, a vanished folder: the old file stays as it was
        tmp_path.unlink(missing_ok=True)
        raise CnnvizError(f"could not write {target}: {exc.strerror or exc}") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def refuse_overwrite(path: str | os.PathLike[str], force: bool) -> None:
    """Refuse to replace an earlier run's output unless ``force`` says so."""
    if Path(path).exists() and not force:
        raise CnnvizError(f"{path} already exists: pass --force to overwrite it, or choose "
                          "another --out")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8) and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


EMBEDDED = "__cnnviz_meta__"  # the npz entry that holds the metadata of a one-file result


def save_results(path: str | os.PathLike[str], kind: str, arrays: dict[str, Any],
                 meta: dict[str, Any], twin: bool = True) -> tuple[Path, ...]:
    """Write ``arrays`` to ``path`` (.npz) and ``{"kind": kind, **meta}`` beside it (.json);
    with ``twin=False`` the metadata goes inside the ``.npz``, so that arrays and metadata
    appear together in one rename."""
    npz = Path(path).with_suffix(".npz")
    text = json.dumps({"kind": kind, **meta}, indent=2, sort_keys=False) + "\n"
    inside = {} if twin else {EMBEDDED: np.frombuffer(text.encode("utf-8"), np.uint8)}
    with atomic_path(npz) as tmp, tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays, **inside)
    return (npz, write_text(npz.with_suffix(".json"), text)) if twin else (npz,)


def load_results(path: str | os.PathLike[str], kind: str) -> tuple[dict[str, np.ndarray],
                                                                     dict[str, Any]]:
    """Read what :func:`save_results` wrote; checks that it holds ``kind`` results."""
    npz = Path(path).with_suffix(".npz")
    try:
        with np.load(npz) as data:
            arrays = {key: data[key] for key in data.files}
        inside = arrays.pop(EMBEDDED, None)
        text = npz.with_suffix(".json").read_text(encoding="utf-8") if inside is None \
            else inside.astype(np.uint8).tobytes().decode("utf-8")
        meta = json.loads(text)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CnnvizError(f"cannot read saved results {npz}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        raise CnnvizError(f"{npz} does not hold saved {kind}")
    return arrays, meta


def _digest(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OutputUnit:
    """The files one command writes into a folder, kept together as one unit.

    A unit is complete when its manifest (``.cnnviz-<kind>.json``, written last) lists every
    file with its digest; while a run writes, a lock file (``.cnnviz-<kind>.lock``) keeps a
    second writer out. ``--force`` replaces the whole unit: files of the earlier run that the
    new one did not write are removed. Temporary files of a killed run are removed by the next.
    Files of other commands or of the user in the same folder are never touched.

    A long run holds the lock from start to end (:meth:`running`) and may keep a checkpoint
    (``.cnnviz-<kind>.checkpoint.npz``, one file) that the finished unit supersedes."""

    def __init__(self, folder: str | os.PathLike[str], kind: str, force: bool = False,
                 main: str = "") -> None:
        self.folder, self.kind, self.force = Path(folder), kind, force
        self.manifest = self.folder / f".cnnviz-{kind}.json"
        self.lock = self.folder / f".cnnviz-{kind}.lock"
        self.checkpoint = self.folder / f".cnnviz-{kind}.checkpoint.npz"
        self._held = False
        self._check_free()
        if not force and self.checkpoint.exists():
            raise CnnvizError(f"{self.folder} holds an interrupted {kind} run: --resume "
                              "continues it, --force starts again")
        if not force and (self.manifest.exists() or self._earlier_output(main)):
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
        pid = _writer(self.lock)
        if pid is not None:
            raise CnnvizError(f"another cnnviz run (process {pid}) is writing {self.kind} into "
                              f"{self.folder}: wait for it to finish, or choose another --out")
        if self.lock.exists():
            self.lock.unlink(missing_ok=True)  # its writer is gone

    def _take_lock(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._check_free()  # refuses a live writer, clears a dead one's lock
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise CnnvizError(f"another cnnviz run is writing {self.kind} into {self.folder}: "
                              "wait for it to finish, or choose another --out") from None
        except OSError as exc:
            raise CnnvizError(f"cannot write to {self.folder}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))

    @contextlib.contextmanager
    def running(self) -> Iterator[OutputUnit]:
        """Hold the lock for the whole block (a run that computes, checkpoints and writes), so
        that no second run starts writing into the folder meanwhile."""
        missing = [p for p in [self.folder, *self.folder.parents] if not p.exists()]
        self._take_lock()
        self._held = True
        try:
            self._clear_temporaries([])
            yield self
        finally:
            self._held = False
            self.lock.unlink(missing_ok=True)
            for folder in missing:  # a run that wrote nothing leaves no folder behind
                with contextlib.suppress(OSError):
                    folder.rmdir()

    @contextlib.contextmanager
    def writing(self) -> Iterator[list[Path]]:
        """Hold the lock while the block writes; append every written path to the yielded
        list. On success the manifest is written, the earlier run's leftovers and the
        checkpoint removed; on failure the unit stays incomplete (no manifest) and the lock is
        released."""
        held = self._held
        if not held:
            self._take_lock()
        try:
            earlier = self._earlier_files()
            self.manifest.unlink(missing_ok=True)  # incomplete until this run has finished
            self._clear_temporaries([*earlier, self.manifest.name])
            written: list[Path] = []
            yield written
            here = self.folder.resolve()
            names = sorted({Path(p).name for p in written if Path(p).resolve().parent == here})
            for stale in set(earlier) - set(names):
                (self.folder / stale).unlink(missing_ok=True)
            listing = {"kind": self.kind,
                       "files": {name: _digest(self.folder / name) for name in names}}
            write_text(self.manifest, json.dumps(listing, indent=1) + "\n")
            self.checkpoint.unlink(missing_ok=True)
        finally:
            if not held:
                self.lock.unlink(missing_ok=True)

    def _clear_temporaries(self, names: list[str]) -> None:
        """Remove a killed run's temporary files of ``names`` and of the checkpoint."""
        for name in [*names, self.checkpoint.name]:
            for orphan in self.folder.glob(f".{glob.escape(name)}.*.tmp*"):
                orphan.unlink(missing_ok=True)

    def _earlier_files(self) -> list[str]:
        try:
            return list(json.loads(self.manifest.read_text())["files"])
        except (OSError, ValueError, KeyError, TypeError):
            return []


def check_writable(folder: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a folder cnnviz cannot write into."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CnnvizError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def _writer(lock: Path) -> str | None:
    """The process id in ``lock`` while that process lives; ``None`` for no lock or a dead
    writer's."""
    try:
        pid = lock.read_text(errors="replace").strip()
    except OSError:
        return None
    if not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):  # gone, or never a process id
        return None
    except PermissionError:  # alive, another user's
        return pid
    return pid


def check_unit(path: str | os.PathLike[str], kind: str) -> None:
    """Refuse a saved result that another run is still writing, or that changed after its run
    finished (its digest no longer matches the manifest)."""
    path = Path(path)
    folder = path.parent
    pid = _writer(folder / f".cnnviz-{kind}.lock")
    if pid is not None:
        raise CnnvizError(f"{path} is still being written by another cnnviz run (process {pid})")
    manifest = folder / f".cnnviz-{kind}.json"
    if manifest.exists():
        try:
            files = json.loads(manifest.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            files = {}
        if path.name in files and files[path.name] != _digest(path):
            raise CnnvizError(f"{path} changed after the run that wrote it: compute it again")
