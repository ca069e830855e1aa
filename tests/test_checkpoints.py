"""Checkpoints inside a chunk: Ctrl-C and the periodic checkpoint keep the running filters'
variables, optimizer moments and step; resuming equals an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cnnviz.core.errors import CnnvizError
from cnnviz.core.units import OutputUnit
from cnnviz.oip.filters import resume_filters, visualize_filters
from cnnviz.oip.settings import Settings
from cnnviz.oip.transforms import Transforms
from cnnviz.results import FilterResult


@pytest.fixture(scope="module")
def model(k):
    """10×10×1 → conv "c1" (3 filters, relu) → conv "c2" (5 filters, relu), random weights."""
    rng = np.random.default_rng(3)
    net = k.Sequential([k.Input((10, 10, 1)), k.layers.Conv2D(3, 3, activation="relu", name="c1"),
                        k.layers.Conv2D(5, 3, activation="relu", name="c2")], name="ckpt_tiny")
    net.get_layer("c1").set_weights([rng.normal(size=(3, 3, 1, 3)).astype(np.float32) + 0.2,
                                     np.zeros(3, np.float32)])
    net.get_layer("c2").set_weights([rng.normal(size=(3, 3, 3, 5)).astype(np.float32),
                                     np.zeros(5, np.float32)])
    return net


REFERENCE = np.random.default_rng(5).uniform(0, 1, (12, 10, 10, 1)).astype(np.float32)


def _stop_at(step):
    """A progress callback that presses Ctrl-C after ``step`` steps of the whole run."""
    def progress(done, total):
        if done == step:
            raise KeyboardInterrupt
    return progress


def _same(resumed, whole):
    assert not resumed.interrupted and resumed.pending is None
    assert resumed.filters.tolist() == whole.filters.tolist()
    np.testing.assert_allclose(resumed.images, whole.images, rtol=0, atol=1e-6)
    np.testing.assert_allclose(resumed.curves, whole.curves, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resumed.activation, whole.activation, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(resumed.best_real, whole.best_real)
    np.testing.assert_array_equal(resumed.example_indices, whole.example_indices)


@pytest.mark.parametrize("rule", ["adam", "rms"])
def test_ctrl_c_inside_a_chunk_keeps_its_state_and_resumes_to_the_same_result(model, rule,
                                                                               tmp_path):
    settings = Settings(steps=8, update=rule, lr=0.05, seed=4)
    run = dict(reference_images=REFERENCE, examples=2, batch=2)
    whole = visualize_filters(model, "c2", None, settings, objective="channel", **run)
    cut = visualize_filters(model, "c2", None, settings, objective="channel", **run,
                            on_progress=_stop_at(8 + 5))  # 5 steps into the second chunk
    assert cut.interrupted and cut.filters.tolist() == [0, 1]
    state = cut.pending
    assert state.filters.tolist() == [2, 3] and state.phase == "main" and state.step == 5
    assert state.curves.shape == (2, 5) and state.raw.shape[0] == 2
    np.testing.assert_allclose(state.curves, whole.curves[2:4, :5], rtol=1e-5, atol=1e-6)
    assert (state.m is not None) == (rule == "adam")  # RMS steps keep no moments
    cut.save(tmp_path / "cut.npz")  # what Ctrl-C writes, read back in a new session
    back = FilterResult.load(tmp_path / "cut.npz")
    np.testing.assert_array_equal(back.pending.raw, state.raw)
    if rule == "adam":
        np.testing.assert_array_equal(back.pending.v, state.v)
    _same(resume_filters(model, back, reference_images=REFERENCE), whole)


def test_a_stop_among_the_precursors_resumes_there(model):
    settings = Settings(steps=4, precursors=3, precursor_steps=3, lr=0.05)
    whole = visualize_filters(model, "c2", [0, 1, 2], settings, objective="channel", batch=2)
    cut = visualize_filters(model, "c2", [0, 1, 2], settings, objective="channel", batch=2,
                            on_progress=_stop_at(2))
    assert cut.interrupted and len(cut.filters) == 0
    state = cut.pending
    assert state.phase == "precursors" and state.step == 2 and state.raw.shape[0] == 2 * 3
    _same(resume_filters(model, cut), whole)


def test_periodic_checkpoints_resume_to_the_same_result(model, tmp_path):
    settings = Settings(steps=6, update="adam", lr=0.05)
    whole = visualize_filters(model, "c2", None, settings, objective="channel", batch=3,
                              reference_images=REFERENCE)
    saved = []

    def keep(part):  # every step (interval 0 s would mean "only at Ctrl-C")
        path = tmp_path / f"ckpt{len(saved)}.npz"
        assert part.save(path, twin=False) == (path,)  # one file: arrays and metadata
        saved.append(path)

    visualize_filters(model, "c2", None, settings, objective="channel", batch=3,
                      reference_images=REFERENCE, on_checkpoint=keep, checkpoint_every=1e-9)
    assert len(saved) == 12  # two chunks of six steps
    middle = FilterResult.load(saved[8])  # as a crash leaves it: the second chunk at step 3
    assert middle.filters.tolist() == [0, 1, 2] and middle.best_real is None
    assert middle.pending.filters.tolist() == [3, 4] and middle.pending.step == 3
    _same(resume_filters(model, middle, reference_images=REFERENCE), whole)
    with pytest.raises(CnnvizError, match="compared with real images: pass them again"):
        resume_filters(model, middle)


def test_a_resume_interrupted_again_still_resumes(model):
    settings = Settings(steps=5, update="adam", lr=0.05)
    whole = visualize_filters(model, "c2", None, settings, objective="channel", batch=2)
    first = visualize_filters(model, "c2", None, settings, objective="channel", batch=2,
                              on_progress=_stop_at(3))
    second = resume_filters(model, first, batch=2, on_progress=_stop_at(5 + 5 + 2))
    assert second.interrupted and second.filters.tolist() == [0, 1, 2, 3]
    assert second.pending.filters.tolist() == [4] and second.pending.step == 2
    _same(resume_filters(model, second), whole)


def test_a_state_that_does_not_fit_is_refused(model):
    settings = Settings(steps=5, lr=0.05)
    cut = visualize_filters(model, "c2", None, settings, objective="channel", batch=2,
                            on_progress=_stop_at(3))
    cut.pending.raw = cut.pending.raw[:, :5]
    with pytest.raises(CnnvizError, match="stopped chunk does not fit the run's settings"):
        resume_filters(model, cut)


def test_one_writer_for_the_whole_run_and_the_checkpoint_blocks_a_fresh_start(tmp_path):
    unit = OutputUnit(tmp_path, "demo")
    with unit:
        with pytest.raises(CnnvizError, match="another cnnviz run"):
            OutputUnit(tmp_path, "demo", force=True)
        unit.checkpoint.write_text("state")
        (tmp_path / f".{unit.checkpoint.name}.x1.tmp.npz").write_text("killed mid-write")
    with pytest.raises(CnnvizError, match="holds an interrupted demo run: --resume continues"):
        OutputUnit(tmp_path, "demo")
    again = OutputUnit(tmp_path, "demo", force=True)
    with again, again.writing() as written:
        assert not (tmp_path / f".{unit.checkpoint.name}.x1.tmp.npz").exists()
        written.append(tmp_path / "demo.npz")
        (tmp_path / "demo.npz").write_text("done")
    assert not unit.checkpoint.exists() and not unit.lock.exists()  # the unit supersedes it


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    """SIGKILL in the middle of the bundled model's ascent: --resume continues from the last
    checkpoint and ends where an uninterrupted run ends."""
    from typer.testing import CliRunner

    from cnnviz.cli import app

    args = ["filters", "--layer", "conv2d_1", "--filters", "0-5", "--steps", "600",
            "--no-reference", "--batch", "3"]
    proc = subprocess.Popen([sys.executable, "-c", "from cnnviz.cli import main; main()", *args,
                             "--checkpoint", "0.2", "--out", str(tmp_path / "killed")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "killed" / ".cnnviz-filters.checkpoint.npz"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if checkpoint.exists() and FilterResult.load(checkpoint).filters.size:
                break  # past the first chunk: a finished part and a running one
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    kept = FilterResult.load(checkpoint)
    assert kept.interrupted and kept.pending is not None and kept.pending.filters.size
    runner = CliRunner()
    fresh = runner.invoke(app, [*args, "--out", str(tmp_path / "killed")])
    assert fresh.exit_code == 1 and "--resume continues it" in fresh.stderr
    resumed = runner.invoke(app, ["filters", "--resume", "--out", str(tmp_path / "killed")])
    assert resumed.exit_code == 0, resumed.output
    assert not checkpoint.exists()
    whole = runner.invoke(app, [*args, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    done = FilterResult.load(tmp_path / "killed" / "filters.npz")
    uncut = FilterResult.load(tmp_path / "whole" / "filters.npz")
    assert done.filters.tolist() == list(range(6)) and not done.interrupted
    np.testing.assert_allclose(done.images, uncut.images, rtol=0, atol=1e-5)


def test_a_long_ascent_keeps_a_bounded_record(model, monkeypatch):
    """Past the record's length the transforms are drawn block by block and a curve keeps one
    point per span of steps: memory does not grow with the steps, Ctrl-C and --resume still
    continue to the uninterrupted result."""
    from cnnviz.oip import record

    monkeypatch.setattr(record, "MAX_CURVE", 8)
    monkeypatch.setattr(record, "PLAN_BLOCK", 8)
    settings = Settings(steps=20, lr=0.05, transforms=Transforms(jitter=1))
    whole = visualize_filters(model, "c2", [0, 1], settings)
    assert whole.curves.shape == (2, 8)
    per_step = Settings(steps=20, lr=0.05, transforms=Transforms(jitter=1))
    monkeypatch.setattr(record, "MAX_CURVE", 4096)
    full = visualize_filters(model, "c2", [0, 1], per_step).curves  # one point a step
    monkeypatch.setattr(record, "MAX_CURVE", 8)
    last = [((p + 1) * 20 + 7) // 8 - 1 for p in range(8)]  # each span's last step, 0-based
    assert last[-1] == 19
    np.testing.assert_allclose(whole.curves, full[:, last], rtol=1e-5, atol=1e-6)
    cut = visualize_filters(model, "c2", [0, 1], settings, on_progress=_stop_at(13))
    assert cut.interrupted and cut.pending.step == 13 and cut.pending.curves.shape == (2, 5)
    resumed = resume_filters(model, cut)
    np.testing.assert_allclose(resumed.images, whole.images, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resumed.curves, whole.curves, rtol=1e-5, atol=1e-6)
