"""A command's files form one unit: complete (manifest written last) or not at all, one writer
at a time, replaced whole by --force, never touching other files in the folder."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.errors import CnnvizError
from cnnviz.core.fileio import write_text
from cnnviz.core.units import OutputUnit, check_unit

runner = CliRunner()


def _unit_run(folder, names, force=False):
    unit = OutputUnit(folder, "demo", force, main="demo.npz")
    with unit.writing() as written:
        for name in names:
            written.append(write_text(folder / name, f"{name} of this run"))
    return unit


def test_a_unit_is_complete_only_with_its_manifest(tmp_path):
    _unit_run(tmp_path, ["a.png", "demo.npz", "demo.json"])
    listing = json.loads((tmp_path / ".cnnviz-demo.json").read_text())
    assert listing["kind"] == "demo" and sorted(listing["files"]) == ["a.png", "demo.json",
                                                                        "demo.npz"]
    assert not (tmp_path / ".cnnviz-demo.lock").exists()
    with pytest.raises(CnnvizError, match="already holds an earlier demo run: pass --force"):
        OutputUnit(tmp_path, "demo")


def test_force_replaces_the_whole_unit_and_nothing_else(tmp_path):
    _unit_run(tmp_path, ["old.png", "demo.npz", "demo.json"])
    (tmp_path / "mine.txt").write_text("the user's own file")
    _unit_run(tmp_path, ["new.png", "demo.npz", "demo.json"], force=True)
    assert not (tmp_path / "old.png").exists()  # the earlier run's picture, not rewritten
    assert (tmp_path / "new.png").exists() and (tmp_path / "mine.txt").exists()


def test_a_failed_run_leaves_no_manifest_and_blocks_nothing(tmp_path):
    unit = OutputUnit(tmp_path, "demo")
    with pytest.raises(RuntimeError), unit.writing() as written:
        written.append(write_text(tmp_path / "demo.npz", "half"))
        raise RuntimeError("disk full")
    assert not (tmp_path / ".cnnviz-demo.json").exists()
    assert not (tmp_path / ".cnnviz-demo.lock").exists()
    _unit_run(tmp_path, ["demo.npz", "demo.json"])  # an npz without its json blocks nothing


def test_one_writer_at_a_time(tmp_path):
    with OutputUnit(tmp_path, "demo") as unit:  # a run holds its unit from start to finish
        assert unit.lock.read_text() == str(os.getpid())
        with pytest.raises(CnnvizError, match=f"another cnnviz run \\(process {os.getpid()}\\)"):
            OutputUnit(tmp_path, "demo", force=True)
        with pytest.raises(CnnvizError, match="still being written by another cnnviz run"):
            check_unit(tmp_path / "demo.npz", "demo")
    assert not (tmp_path / ".cnnviz-demo.lock").exists()
    # a lock file naming a live process that holds no lock (a dead run's id, reused) blocks
    # nothing: the lock is the kernel's, not the number in the file
    (tmp_path / ".cnnviz-demo.lock").write_text(str(os.getppid()))
    _unit_run(tmp_path, ["demo.npz"])
    assert not (tmp_path / ".cnnviz-demo.lock").exists()


def test_a_killed_runs_temporary_files_go_with_the_next_run(tmp_path):
    _unit_run(tmp_path, ["demo.npz", "demo.json"])
    orphan = tmp_path / ".demo.npz.k3j2.tmp.npz"
    orphan.write_text("left by SIGKILL")
    _unit_run(tmp_path, ["demo.npz", "demo.json"], force=True)
    assert not orphan.exists()


def test_changed_results_are_refused(tmp_path):
    _unit_run(tmp_path, ["demo.npz", "demo.json"])
    check_unit(tmp_path / "demo.npz", "demo")
    (tmp_path / "demo.npz").write_text("edited later")
    with pytest.raises(CnnvizError, match="changed after the run that wrote it"):
        check_unit(tmp_path / "demo.npz", "demo")


def test_commands_keep_their_units(tmp_path):
    first = runner.invoke(app, ["explain", "--digit", "3", "--method", "saliency", "--out",
                                str(tmp_path)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["explain", "--digit", "3", "--out", str(tmp_path)])
    assert again.exit_code == 1 and "already holds an earlier explain run" in again.stderr
    forced = runner.invoke(app, ["explain", "--digit", "3", "--method", "gradcam", "--force",
                                 "--out", str(tmp_path)])
    assert forced.exit_code == 0, forced.output
    assert not (tmp_path / "explain_saliency.png").exists()  # stale picture of the old run
    assert (tmp_path / "explain_gradcam.png").exists()
    # another command in the same folder is its own unit
    kernels = runner.invoke(app, ["kernels", "--out", str(tmp_path)])
    assert kernels.exit_code == 0 and (tmp_path / "explain_gradcam.png").exists()


def test_train_refuses_an_unwritable_place_before_training(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = runner.invoke(app, ["train", "--epochs", "1", "--out",
                                 str(tmp_path / "file" / "model.keras")])
    assert result.exit_code == 1 and "cannot write to" in result.stderr
    assert "Epoch" not in result.output


def test_a_run_without_out_never_meets_an_earlier_run(tmp_path):
    from cnnviz.core.places import chosen_out, numbered

    base = tmp_path / "cnnviz-out" / "explain"
    assert numbered(base, 3) == tmp_path / "cnnviz-out" / "explain-3"
    assert numbered(tmp_path / "report.html", 2) == tmp_path / "report-2.html"
    assert chosen_out(None, base, "explain") == (base, None)
    base.mkdir(parents=True)
    assert chosen_out(None, base, "explain") == (base, None)  # an empty folder is free
    (base / "explain.html").write_text("x")
    path, note = chosen_out(None, base, "explain")
    assert path == numbered(base, 2) and note == (
        f"{base} holds an earlier explain run: this one goes to {path} (--out to choose, "
        f"--force to replace {base})")
    assert chosen_out(tmp_path / "mine", base, "explain") == (tmp_path / "mine", None)
    assert chosen_out(None, base, "explain", force=True) == (base, None)
    # --resume: the newest sibling holding an interrupted run; a plain rerun goes past it
    second = numbered(base, 2)
    second.mkdir()
    (second / ".cnnviz-filters.checkpoint.npz").write_bytes(b"x")
    assert chosen_out(None, base, "filters", resume=True) == (second, None)
    path, note = chosen_out(None, base, "filters")
    assert path == numbered(base, 3) and "(an interrupted run: --resume continues it)" in note
    atlas = tmp_path / "atlas"
    (atlas / "parts").mkdir(parents=True)  # parts, no manifest: the atlas continues there
    assert chosen_out(None, atlas, "atlas", resume=True) == (atlas, None)
    (atlas / ".cnnviz-atlas.json").write_text("{}")  # finished: a new one
    assert chosen_out(None, atlas, "atlas", resume=True)[0] == numbered(atlas, 2)


def test_rerunning_a_command_in_place_writes_beside_the_earlier_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(app, ["kernels"])
    second = runner.invoke(app, ["kernels"])
    assert first.exit_code == second.exit_code == 0, second.output
    assert "this one goes to cnnviz-out/kernels-2" in second.stderr
    assert second.stdout.strip().splitlines()[-1].startswith("wrote cnnviz-out/kernels-2/")
    assert (tmp_path / "cnnviz-out" / "kernels" / "kernels.png").exists()
    assert (tmp_path / "cnnviz-out" / "kernels-2" / "kernels.png").exists()
    named = runner.invoke(app, ["kernels", "--out", "cnnviz-out/kernels"])
    assert named.exit_code == 1 and "pass --force" in named.stderr  # an explicit --out: refused
