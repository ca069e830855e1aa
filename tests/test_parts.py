"""One parts engine: filters, class patterns and the atlas are planned as parts, computed by
the same function wherever they run, and merged into the arrays of one run; parts kept on disk
are stamped with the digests they came from, and another run's part is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.errors import CnnvizError
from cnnviz.data.readers import ArraySource
from cnnviz.maps.patterns import class_patterns
from cnnviz.model.facts import as_facts
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.settings import Settings
from cnnviz.parts.engine import Part, Work, run_parts
from cnnviz.parts.kinds import FilterWork, PatternWork, filters_in_parts, patterns_in_parts


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(4)
    return ArraySource(rng.integers(0, 256, (30, 8, 8), np.uint8), rng.integers(0, 3, 30),
                       class_names=("x", "y", "z"), name="noise")


def test_filters_in_parts_equal_one_run(convs, images):
    settings = Settings(steps=5, lr=0.05)
    whole = visualize_filters(convs, "b", [6, 0, 3, 2, 5], settings, reference_images=images,
                              examples=2)
    work = FilterWork(convs, "b", [6, 0, 3, 2, 5], settings, 2, reference_images=images,
                      examples=2)
    assert [(p.first, p.last) for p in work.plan()] == [(0, 2), (2, 4), (4, 5)]
    parts = filters_in_parts(work)
    for name in ("filters", "example_indices"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name), name)
    for name in ("images", "activation", "curves", "best_real", "example_images"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-6,
                                   atol=1e-7, err_msg=name)  # chunks of 2, 2, 1 against 5
    assert parts.requested == [6, 0, 3, 2, 5] and parts.meta == whole.meta


def test_patterns_in_shards_equal_one_pass(convs, images):
    whole = class_patterns(convs, images, None, ["a", "out"], map_images=True)
    work = PatternWork(convs, images, ["a", "out"], 7, map_images=True)
    assert [(p.first, p.last, p.units) for p in work.plan()][-1] == (28, 30, 2)
    parts = patterns_in_parts(work)
    np.testing.assert_array_equal(parts.counts, whole.counts)
    for layer in ("a", "out"):  # batches end elsewhere: float32 sums in another order
        np.testing.assert_allclose(parts.means[layer], whole.means[layer], rtol=1e-6,
                                   atol=1e-7)  # a mean near 0 keeps the others' rounding
        np.testing.assert_allclose(parts.stds[layer], whole.stds[layer], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(parts.images["a"], whole.images["a"], rtol=1e-6, atol=1e-7)
    assert parts.meta == whole.meta  # the whole data's digest, not a shard's


class _Squares(Work):
    """Parts that square numbers: small enough to watch every file the engine writes."""

    def __init__(self, model: str = "m1", upto: int = 6) -> None:
        self.model, self.upto = model, upto
        self.computed: list[int] = []

    def plan(self):
        return [Part("", a, min(a + 2, self.upto), 2) for a in range(0, self.upto, 2)]

    def compute(self, part, on_progress=None):
        self.computed.append(part.first)
        return np.arange(part.first, part.last) ** 2

    def stamp(self):
        return {"model": self.model, "data": "d", "settings": {"upto": self.upto}}

    def path(self, part, folder):
        return folder / f"part-{part.first}.npy"

    def save(self, part, value, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, value)

    def load(self, part, path):
        return np.load(path)


def test_parts_on_disk_are_stamped_reused_and_refused_from_another_run(tmp_path):
    seen = []
    first = run_parts(_Squares(), folder=tmp_path, on_progress=lambda d, t: seen.append((d, t)))
    assert first.computed == 3 and seen[-1] == (6, 6)
    assert np.concatenate(first.of("")).tolist() == [0, 1, 4, 9, 16, 25]
    stamp = json.loads((tmp_path / "part-2.npy.stamp.json").read_text())
    assert stamp["model"] == "m1" and len(stamp["sha256"]) == 64
    again = _Squares()
    done = run_parts(again, folder=tmp_path)
    assert (done.reused, done.computed, again.computed) == (3, 0, [])
    (tmp_path / "part-4.npy").write_bytes(b"damaged")  # its digest no longer matches
    (tmp_path / "part-0.npy.stamp.json").unlink()  # written before its stamp: unfinished
    again = _Squares()
    done = run_parts(again, folder=tmp_path)
    assert sorted(again.computed) == [0, 4] and done.reused == 1
    assert np.concatenate(done.of("")).tolist() == [0, 1, 4, 9, 16, 25]
    with pytest.raises(CnnvizError, match="part-0.npy was made from another model: pass "
                                          "--force"):
        run_parts(_Squares(model="m2"), folder=tmp_path)


def test_an_atlas_refuses_a_shard_of_a_model_with_other_weights(k, convs, images, tmp_path):
    from cnnviz.atlas.build import AtlasSpec, compute_parts

    spec = AtlasSpec(k=2, steps=3, chunk=4, shard=16)
    compute_parts(convs, tmp_path / "mine", images, spec)
    other = k.models.clone_model(convs.model)
    other.set_weights([w + 0.01 for w in convs.model.get_weights()])
    compute_parts(as_facts(other), tmp_path / "theirs", images, spec)
    shard = "statistics/shard-00000000-00000016.npz"
    for name in (shard, shard + ".stamp.json"):
        shutil.copy(tmp_path / "theirs" / name, tmp_path / "mine" / name)
    with pytest.raises(CnnvizError, match="shard-00000000-00000016.npz was made from another "
                                          "model: pass --force to start again"):
        compute_parts(convs, tmp_path / "mine", images, spec)


def test_shard_must_be_positive(tmp_path):
    result = CliRunner().invoke(app, ["patterns", "--ray", "local", "--shard", "0", "--out",
                                      str(tmp_path / "p")])
    assert result.exit_code == 1 and "--shard must be a positive number of images, got 0" \
        in result.stderr


@pytest.mark.slow
@pytest.mark.one_backend  # Ray under JAX: test_atlas's cluster test runs in both stages
def test_filters_and_patterns_on_ray_equal_the_run_in_this_process(tmp_path):
    pytest.importorskip("ray")
    runner = CliRunner()
    for command, extra in (("filters", ["--layer", "conv2d_2", "--filters", "0-5", "--steps",
                                        "6", "--batch", "4", "--examples", "2"]),
                           ("patterns", ["--shard", "300"])):
        for where, ray in (("here", []), ("there", ["--ray", "local"])):
            result = runner.invoke(app, [command, *extra, *ray, "--out",
                                         str(tmp_path / f"{command}-{where}")])
            assert result.exit_code == 0, result.output
    here = np.load(tmp_path / "filters-here" / "filters.npz")
    there = np.load(tmp_path / "filters-there" / "filters.npz")
    for key in ("filters", "example_indices"):
        np.testing.assert_array_equal(there[key], here[key], key)
    for key in ("images", "activation", "best_real"):
        np.testing.assert_allclose(there[key], here[key], rtol=1e-6, atol=1e-7, err_msg=key)
    here = np.load(tmp_path / "patterns-here" / "patterns.npz")
    there = np.load(tmp_path / "patterns-there" / "patterns.npz")
    assert sorted(here.files) == sorted(there.files)
    for key in here.files:
        np.testing.assert_allclose(there[key], here[key], rtol=1e-6, atol=1e-7, err_msg=key)
