"""Output folders cannot be turned against the user: a manifest is data from disk (no name in it
is a path to follow), a run holds its unit from start to finish, a run that finished meanwhile
is never written over, and a saved result is reused only with every file as its run wrote it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.errors import CnnvizError
from cnnviz.core.fileio import write_text
from cnnviz.core.units import FolderLock, OutputUnit, check_unit, digest, plain_name, read_manifest

runner = CliRunner()
SHA = "ab" * 32


@pytest.fixture(scope="module")
def saved_filters(tmp_path_factory):
    """A real filters.npz (+ .json) of the bundled model: four filters, each compared with
    the real digits, one example each."""
    out = tmp_path_factory.mktemp("saved") / "f"
    assert runner.invoke(app, ["filters", "--filters", "0-3", "--steps", "2", "--examples", "1",
                               "--out", str(out)]).exit_code == 0
    return out / "filters.npz"


def _manifest(folder, kind, files, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f".cnnviz-{kind}.json").write_text(json.dumps({"kind": kind, "files": files,
                                                             **extra}))


def _victims(tmp_path):
    """A file beside the output folder, one above it, and one in a sibling folder."""
    (tmp_path / "sibling").mkdir()
    paths = [tmp_path / "beside.txt", tmp_path / "sibling" / "notes.txt"]
    for path in paths:
        path.write_text("the user's own words")
    return paths


@pytest.mark.parametrize("name", ["../beside.txt", "../sibling/notes.txt", "sub/../../beside.txt",
                                  "..", ".", "", "a\0b", ".cnnviz-demo.lock",
                                  ".cnnviz-kernels.json", "sub/", "\\..\\beside.txt"])
def test_a_manifest_naming_anything_but_a_plain_file_is_refused_whole(tmp_path, name):
    victims = _victims(tmp_path)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "kept.png").write_text("an earlier picture")
    _manifest(out, "demo", {"kept.png": digest(out / "kept.png"), name: SHA})
    for force in (False, True):
        with pytest.raises(CnnvizError, match="is not a manifest cnnviz wrote .*nothing was read "
                                              "or deleted"):
            OutputUnit(out, "demo", force=force)
    assert all(v.read_text() == "the user's own words" for v in victims)
    assert (out / "kept.png").exists()


def test_absolute_names_and_bad_digests_are_refused(tmp_path):
    victim = _victims(tmp_path)[0]
    out = tmp_path / "out"
    for files in ({str(victim): digest(victim)}, {"a.png": "0" * 63}, {"a.png": "X" * 64},
                  {"a.png": 7}, ["a.png"], None):
        _manifest(out, "demo", files)
        with pytest.raises(CnnvizError, match="is not a manifest cnnviz wrote"):
            read_manifest(out, "demo")
    _manifest(out, "other", {})
    (out / ".cnnviz-demo.json").write_bytes((out / ".cnnviz-other.json").read_bytes())
    with pytest.raises(CnnvizError, match=r"not a demo manifest"):
        read_manifest(out, "demo")
    (out / ".cnnviz-demo.json").unlink()
    (out / ".cnnviz-demo.json").symlink_to(tmp_path / "beside.txt")
    with pytest.raises(CnnvizError, match="not a plain file"):
        read_manifest(out, "demo")
    assert victim.read_text() == "the user's own words"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=12))
def test_plain_names_never_leave_the_folder(name):
    if plain_name(name):
        assert "/" not in name and name not in (".", "..") and "\0" not in name
        assert not name.startswith(".cnnviz-")
        assert os.path.dirname(os.path.normpath(os.path.join("unit", name))) == "unit"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.dictionaries(st.text(alphabet="./\\a\0-", max_size=6),
                       st.sampled_from([SHA, "x", ""]), max_size=4))
def test_any_manifest_either_reads_as_plain_names_or_is_refused(tmp_path, files):
    out = tmp_path / "fuzz"
    _manifest(out, "demo", files)
    try:
        listing = read_manifest(out, "demo")
    except CnnvizError as exc:
        assert "\n" not in str(exc)
        return
    assert listing == files and all(plain_name(n) for n in listing)


def test_force_removes_only_files_that_still_hold_what_the_run_wrote(tmp_path):
    out = tmp_path / "out"
    with OutputUnit(out, "demo").writing() as written:
        for name in ("old.png", "edited.png", "became_a_folder", "became_a_link"):
            written.append(write_text(out / name, f"{name} as written"))
    (out / "edited.png").write_text("the user drew over it")
    (out / "became_a_folder").unlink()
    (out / "became_a_folder").mkdir()
    (out / "became_a_link").unlink()
    (tmp_path / "target.txt").write_text("elsewhere")
    (out / "became_a_link").symlink_to(tmp_path / "target.txt")
    with OutputUnit(out, "demo", force=True).writing() as written:
        written.append(write_text(out / "new.png", "new"))
    assert not (out / "old.png").exists()
    assert (out / "edited.png").read_text() == "the user drew over it"
    assert (out / "became_a_folder").is_dir() and (out / "became_a_link").is_symlink()
    assert (tmp_path / "target.txt").read_text() == "elsewhere"
    assert sorted(read_manifest(out, "demo")) == ["new.png"]


def test_a_run_that_finished_meanwhile_is_not_written_over(tmp_path):
    slow = OutputUnit(tmp_path, "demo")  # looked at the folder: empty
    with OutputUnit(tmp_path, "demo").writing() as written:  # a short run finishes first
        written.append(write_text(tmp_path / "demo.npz", "the short run's"))
    meanwhile = ("another demo run finished writing into .* while this one ran: nothing of "
                 "this run was written")
    with pytest.raises(CnnvizError, match=meanwhile), slow.writing() as written:
        written.append(write_text(tmp_path / "demo.npz", "the slow run's"))
    assert (tmp_path / "demo.npz").read_text() == "the short run's"
    check_unit(tmp_path / "demo.npz", "demo")


def test_a_held_unit_blocks_another_process_until_it_ends(tmp_path):
    """The lock is the kernel's: a second process is refused while the first lives, and is let
    in as soon as the first is killed (no lock file to clear by hand)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from cnnviz.core.units import OutputUnit\n"
         f"u = OutputUnit({str(tmp_path)!r}, 'demo').__enter__()\n"
         "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CnnvizError, match=f"process {holder.pid}\\) is writing demo"):
            OutputUnit(tmp_path, "demo", force=True)
        assert FolderLock(tmp_path / ".cnnviz-demo.lock").holder() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / ".cnnviz-demo.lock").exists()  # killed: its file stays, its lock does not
    _unit_writes(tmp_path)


def _unit_writes(folder):
    with OutputUnit(folder, "demo", force=True).writing() as written:
        written.append(write_text(folder / "demo.npz", "done"))
    assert not (folder / ".cnnviz-demo.lock").exists()


def test_out_that_is_a_file_says_so(tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = runner.invoke(app, ["kernels", "--out", str(tmp_path / "taken"), "--force"])
    assert result.exit_code == 1
    assert "is a file, not a folder: choose another --out" in result.stderr
    assert "another cnnviz run" not in result.stderr
    assert (tmp_path / "taken").read_text() == "a file"


@pytest.mark.parametrize("args", [["kernels", "--force"], ["activations", "--force"],
                                  ["filters", "--resume"]])
def test_commands_refuse_a_hostile_manifest_and_delete_nothing(tmp_path, args):
    victims = _victims(tmp_path)
    out = tmp_path / "out"
    kind = args[0]
    _manifest(out, kind, {"../beside.txt": digest(victims[0]),
                          str(victims[1]): digest(victims[1])})
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "is not a manifest cnnviz wrote" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert all(v.read_text() == "the user's own words" for v in victims)


def test_an_edited_json_twin_is_refused(tmp_path):
    out = tmp_path / "f"
    assert runner.invoke(app, ["filters", "--filters", "0-1", "--steps", "2", "--no-reference",
                               "--out", str(out)]).exit_code == 0
    check_unit(out / "filters.npz", "filters")
    twin = out / "filters.json"
    meta = json.loads(twin.read_text())
    meta["meta"]["model_digest"] = ""
    twin.write_text(json.dumps(meta))
    with pytest.raises(CnnvizError, match="filters.json changed after the run that wrote it"):
        check_unit(out / "filters.npz", "filters")
    result = runner.invoke(app, ["report", "--from", str(out), "--steps", "2", "--out",
                                 str(tmp_path / "r.html")])
    assert result.exit_code == 1 and "filters.json changed after the run" in result.stderr


@pytest.mark.one_backend  # whole pages: the TensorFlow stage of CI runs it
def test_a_result_that_does_not_record_its_model_is_recomputed_and_said(tmp_path):
    out = tmp_path / "f"
    assert runner.invoke(app, ["filters", "--filters", "0-1", "--steps", "2", "--no-reference",
                               "--out", str(out)]).exit_code == 0
    (out / ".cnnviz-filters.json").unlink()  # results saved outside a unit (the Python API)
    twin = out / "filters.json"
    meta = json.loads(twin.read_text())
    meta["meta"]["model_digest"] = ""
    twin.write_text(json.dumps(meta))
    result = runner.invoke(app, ["report", "--from", str(out), "--steps", "2", "--out",
                                 str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "recomputed: filters.npz does not record the model that made it" in result.stderr
    assert "does not record the model that made it" in (tmp_path / "r.html").read_text()


def test_reports_are_units_of_one_page(tmp_path):
    from cnnviz.jobs.site import report_unit

    first = report_unit(tmp_path / "a.html")
    with first, first.writing() as written:
        written.append(write_text(tmp_path / "a.html", "<p>a</p>"))
    second = report_unit(tmp_path / "b.html")  # another page in the same folder is its own unit
    with second:
        with pytest.raises(CnnvizError, match="another cnnviz run .* is writing report-b.html"):
            report_unit(tmp_path / "b.html", force=True)
        with second.writing() as written:
            written.append(write_text(tmp_path / "b.html", "<p>b</p>"))
    with pytest.raises(CnnvizError, match="already holds an earlier report-a.html run"):
        report_unit(tmp_path / "a.html")
    replaced = report_unit(tmp_path / "a.html", force=True)
    with replaced, replaced.writing() as written:
        written.append(write_text(tmp_path / "a.html", "<p>again</p>"))
    assert (tmp_path / "b.html").read_text() == "<p>b</p>"
    (tmp_path / "dir.html").mkdir()
    with pytest.raises(CnnvizError, match="dir.html is a folder"):
        report_unit(tmp_path / "dir.html")


def test_a_saved_result_cut_short_is_one_line(tmp_path):
    import numpy as np

    out = tmp_path / "f"
    assert runner.invoke(app, ["filters", "--filters", "0-3", "--steps", "2", "--no-reference",
                               "--out", str(out)]).exit_code == 0
    with np.load(out / "filters.npz") as data:
        arrays = {key: data[key] for key in data.files}
    arrays["images"] = arrays["images"][:2]
    np.savez(tmp_path / "cut.npz", **arrays)
    (tmp_path / "cut.json").write_bytes((out / "filters.json").read_bytes())
    result = runner.invoke(app, ["filters", "--from", str(tmp_path / "cut.npz"), "--out",
                                 str(tmp_path / "views")])
    assert result.exit_code == 1 and "unexpected" not in result.stderr
    assert "cut.npz is damaged: its 'images' holds 2 rows, its 'filters' 4" in result.stderr


def test_a_two_input_model_is_one_line_for_every_command_that_runs_it(tmp_path, k):
    a, b = k.Input((8, 8, 1)), k.Input((8, 8, 1))
    joined = k.layers.Concatenate()([k.layers.Flatten()(k.layers.Conv2D(2, 3, name="c")(a)),
                                     k.layers.Flatten()(b)])
    k.Model([a, b], k.layers.Dense(3, activation="softmax")(joined)).save(tmp_path / "m.keras")
    for command in ("activations", "explain", "filters", "patterns"):
        result = runner.invoke(app, [command, str(tmp_path / "m.keras"), "--data",
                                     "bundled", "--out", str(tmp_path / command)])
        assert result.exit_code == 1 and "has 2 inputs; cnnviz runs models of one image input" \
            in result.stderr and "unexpected" not in result.stderr, command
    assert runner.invoke(app, ["kernels", str(tmp_path / "m.keras"), "--out",
                               str(tmp_path / "kernels")]).exit_code == 0


def test_a_killed_runs_files_and_temporaries_go_with_the_next_run(tmp_path):
    """A run that dies half-way leaves no manifest but a journal of what it wrote: the next
    run removes those files (only while they hold what was written) and every temporary file
    a killed writer left, unless another run is writing into the folder."""
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), OutputUnit(out, "demo").writing() as written:
        written.append(write_text(out / "old_a.png", "a"))
        written += [write_text(out / "old_b.png", "b"), write_text(out / "kept.png", "k")]
        (out / ".old_c.png.ab12cd34.tmp.png").write_text("half a picture")
        raise RuntimeError("killed")
    assert not (out / ".cnnviz-demo.json").exists() and (out / ".cnnviz-demo.journal").exists()
    (out / "kept.png").write_text("the user drew over it")
    (out / "notes.tmp").write_text("the user's, not named as cnnviz names temporaries")
    with OutputUnit(out, "demo", force=True).writing() as written:
        written.append(write_text(out / "old_b.png", "b again"))
    assert sorted(p.name for p in out.iterdir()) == [".cnnviz-demo.json", "kept.png",
                                                     "notes.tmp", "old_b.png"]
    with OutputUnit(out, "other"):
        (out / ".x.png.zz99yy88.tmp.png").write_text("another writer's, mid-write")
        with OutputUnit(out, "demo", force=True).writing() as written:
            written.append(write_text(out / "old_b.png", "b"))
    assert (out / ".x.png.zz99yy88.tmp.png").exists()  # "other" held its lock meanwhile


def test_links_planted_in_the_folder_are_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own words")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".cnnviz-demo.lock").symlink_to(victim)
    with pytest.raises(CnnvizError, match="cnnviz-demo.lock is a link: cnnviz never follows "
                                          "one there; remove it"):
        _unit_writes(out)
    (out / ".cnnviz-demo.lock").unlink()
    (out / ".cnnviz-demo.journal").symlink_to(victim)
    _unit_writes(out)
    assert victim.read_text() == "the user's own words"
    assert not (out / ".cnnviz-demo.journal").exists()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["lock:live", "lock:stale", "journal:junk", "journal:escape",
                                 "manifest:ok", "manifest:escape", "temp", "user"]),
                max_size=5, unique=True))
def test_any_left_over_state_ends_in_a_run_or_one_line(tmp_path, leftovers):
    """Fuzzed leftovers of earlier runs (locks, journals, manifests, temporaries): a forced run
    either completes or refuses in one line, and nothing outside the folder or of the user's
    changes."""
    import uuid

    base = tmp_path / uuid.uuid4().hex
    out = base / "out"
    out.mkdir(parents=True)
    (base / "victim.txt").write_text("v")
    (out / "mine.txt").write_text("the user's")
    held = None
    for item in leftovers:
        kind, _, how = item.partition(":")
        if kind == "lock" and how == "live":
            held = FolderLock(out / ".cnnviz-demo.lock")
            held.acquire("demo")
        elif kind == "lock":
            (out / ".cnnviz-demo.lock").write_text("1")
        elif kind == "journal":
            line = f"{digest(base / 'victim.txt')} ../victim.txt" if how == "escape" else "x y"
            (out / ".cnnviz-demo.journal").write_text(line + "\n")
        elif kind == "manifest":
            name = "../victim.txt" if how == "escape" else "mine.txt"
            _manifest(out, "demo", {name: SHA})
        elif kind == "temp":
            (out / ".a.png.q1w2e3r4.tmp.png").write_text("t")
    try:
        _unit_writes(out)
    except CnnvizError as exc:
        assert "\n" not in str(exc)
    finally:
        if held is not None:
            held.release()
    assert (base / "victim.txt").read_text() == "v" and (out / "mine.txt").read_text() == \
        "the user's"


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from(["images", "activation", "curves", "filters", "best_real", "post_max",
                        "example_indices", "example_images"]),
       st.sampled_from(["cut", "drop", "text", "nan", "empty", "transpose"]))
def test_any_damaged_saved_result_loads_or_is_one_line(tmp_path, saved_filters, key, damage):
    """Fuzzed damage to a saved result's arrays: it loads as a consistent result, or is
    refused in one line — never an unexpected error, never a half-drawn gallery."""
    import uuid

    import numpy as np

    from cnnviz.results import FilterResult

    with np.load(saved_filters) as data:
        arrays = {name: data[name] for name in data.files}
    value = arrays[key]
    arrays[key] = {"cut": value[:1], "drop": None, "text": np.array(["x"] * len(value)),
                   "nan": np.full(value.shape, np.nan), "empty": value[:0],
                   "transpose": value.T}[damage]
    if arrays[key] is None:
        del arrays[key]
    path = tmp_path / f"{uuid.uuid4().hex}.npz"
    np.savez(path, **arrays)
    path.with_suffix(".json").write_bytes(saved_filters.with_suffix(".json").read_bytes())
    try:
        result = FilterResult.load(path)
    except CnnvizError as exc:
        assert "\n" not in str(exc)
        return
    assert len(result.images) == len(result.filters) == len(result.activation)
    drawn = runner.invoke(app, ["filters", "--from", str(path), "--out", str(path.parent /
                                                                         path.stem)])
    assert drawn.exit_code in (0, 1) and "unexpected" not in drawn.stderr, drawn.stderr
