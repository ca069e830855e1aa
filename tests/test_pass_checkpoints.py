"""Nothing a data pass computed is lost to Ctrl-C: class patterns keep the sums of the images
seen (a partial result that merges exactly with the rest), the parts engine joins them with the
parts finished, and ``patterns --resume`` continues to the uninterrupted run's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.core.errors import CnnvizError, Stopped
from cnnviz.core.units import OutputUnit
from cnnviz.data.readers import ArraySource
from cnnviz.data.sources import shard
from cnnviz.jobs import patterns_job
from cnnviz.maps.patterns import class_patterns
from cnnviz.parts.engine import Tally
from cnnviz.parts.kinds import PatternWork, patterns_in_parts
from cnnviz.results import ClassPatterns


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(6)
    return ArraySource(rng.integers(0, 256, (50, 8, 8), np.uint8), rng.integers(0, 3, 50),
                       class_names=("x", "y", "z"), name="noise")


def _stop_after(seen: int):
    """A progress callback that presses Ctrl-C once ``seen`` images were counted."""
    def progress(done: int, total: int | None) -> None:
        if done >= seen:
            raise KeyboardInterrupt
    return progress


def _same(a: ClassPatterns, b: ClassPatterns) -> None:
    np.testing.assert_array_equal(a.counts, b.counts)
    for layer in b.layers:
        np.testing.assert_allclose(a.means[layer], b.means[layer], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(a.stds[layer], b.stds[layer], rtol=1e-5, atol=1e-7)


def test_tally_joins_ranges_and_names_what_is_missing():
    class Count:
        def __init__(self, n):
            self.n = n

        def merged(self, other):
            return Count(self.n + other.n)

    tally = Tally().plus(10, 20, Count(10)).plus(0, 5, Count(5)).plus(20, 25, Count(5))
    assert tally.covered == ((0, 5), (10, 25)) and tally.count == 20 and tally.value.n == 20
    assert tally.missing(0, 30) == [(5, 10), (25, 30)]
    assert tally.missing(12, 18) == [] and tally.missing(3, 12) == [(5, 10)]
    assert Tally().missing(0, 7) == [(0, 7)] and tally.plus(3, 3, Count(0)) is tally


def test_ctrl_c_hands_over_the_patterns_of_the_images_seen(convs, images):
    with pytest.raises(Stopped) as stop:
        class_patterns(convs, images, None, ["b", "out"], batch_size=8, map_images=True,
                       on_progress=_stop_after(20))
    assert stop.value.done == 24  # three whole batches of 8
    _same(stop.value.state, class_patterns(convs, shard(images, 0, 24), None, ["b", "out"],
                                           batch_size=8, map_images=True))
    np.testing.assert_allclose(stop.value.state.images["b"], class_patterns(
        convs, shard(images, 0, 24), None, ["b"], batch_size=8, map_images=True).images["b"])


def test_an_interrupted_pass_resumes_to_the_uninterrupted_result(convs, images):
    whole = class_patterns(convs, images, None, ["b", "out"], batch_size=8)
    for shards, stop_at in ((50, 30), (16, 40)):  # one part, and parts of 16 (stopped in the 3rd)
        work = PatternWork(convs, images, ["b", "out"], shards, batch_size=8)
        with pytest.raises(Stopped) as stop:
            patterns_in_parts(work, on_progress=_stop_after(stop_at))
        kept = stop.value.state
        assert kept.covered == ((0, 32 if shards == 50 else 40),)
        _same(patterns_in_parts(work, tally=kept), whole)


def test_periodic_checkpoints_hold_what_was_covered(convs, images):
    seen: list[Tally] = []
    work = PatternWork(convs, images, ["out"], 50, batch_size=8)
    patterns_in_parts(work, on_checkpoint=seen.append, checkpoint_every=1e-9)
    assert [t.count for t in seen] == [8, 16, 24, 32, 40, 48, 50]  # each batch, once
    _same(patterns_in_parts(work, tally=seen[2]), class_patterns(convs, images, None, ["out"],
                                                                batch_size=8))


def test_patterns_job_keeps_its_sums_and_resumes(convs, images, tmp_path):
    out, fresh = tmp_path / "p", tmp_path / "fresh"
    options = {"layer": "b", "data": images, "batch": 8}
    stopped = patterns_job(convs, out, progress=_stop_after(20), **options)
    assert "kept the sums of 24 of 50 images" in stopped.interrupted
    assert OutputUnit(out, "patterns", True).checkpoint.exists()
    assert not (out / "patterns.npz").exists()
    with pytest.raises(CnnvizError, match="interrupted patterns run: --resume continues"):
        patterns_job(convs, out, **options)
    other = ArraySource(images.images[::-1].copy(), images.labels()[::-1].copy(),
                        class_names=("x", "y", "z"), name="noise")
    with pytest.raises(CnnvizError, match="made from another data"):
        patterns_job(convs, out, resume=True, **{**options, "data": other})
    with pytest.raises(CnnvizError, match="made from another settings"):
        patterns_job(convs, out, resume=True, dense=False, **options)
    patterns_job(convs, out, resume=True, **options)
    patterns_job(convs, fresh, **options)
    _same(ClassPatterns.load(out / "patterns.npz"), ClassPatterns.load(fresh / "patterns.npz"))
    assert not OutputUnit(out, "patterns", True).checkpoint.exists()
    with pytest.raises(CnnvizError, match="nothing to resume"):
        patterns_job(convs, out, resume=True, **options)


def test_a_crash_leaves_the_last_checkpoint_to_resume_from(convs, images, tmp_path):
    def crash(done: int, total: int | None) -> None:
        if done >= 40:
            raise RuntimeError("the machine went away")

    out = tmp_path / "p"
    with pytest.raises(RuntimeError):
        patterns_job(convs, out, data=images, batch=8, checkpoint=1e-9, progress=crash)
    done = patterns_job(convs, out, data=images, batch=8, resume=True)
    assert done.interrupted is None
    _same(ClassPatterns.load(out / "patterns.npz"),
          class_patterns(convs, images, None, ["b", "out"], batch_size=8))
