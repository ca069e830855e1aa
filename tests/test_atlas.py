"""The atlas: statistics of every map from one pass, merged exactly across shards."""

import numpy as np
import pytest

from cnnviz.activations import class_patterns, top_examples
from cnnviz.atlas import MapStatistics, map_statistics, top_k
from cnnviz.errors import CnnvizError
from cnnviz.models import as_facts
from cnnviz.readers import ArraySource


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (50, 6, 6), np.uint8)
    images[7] = images[3]  # a tie: the lower index must come first, merged or not
    return ArraySource(images, rng.integers(0, 3, 50), name="random")


def test_one_pass_gives_the_class_patterns_and_top_examples(tiny_model, data):
    facts = as_facts(tiny_model)
    stats = map_statistics(facts, data, ["conv", "pool"], k=4, batch_size=16)
    assert stats.counts.tolist() == np.bincount(data.labels(), minlength=3).tolist()
    patterns = class_patterns(facts, data, None, ["conv"])
    np.testing.assert_allclose(stats.mean("conv"), patterns.means["conv"], rtol=1e-6)
    index, values = top_examples(facts, "pool", data, 4)
    np.testing.assert_array_equal(stats.top_index["pool"], index)
    np.testing.assert_allclose(stats.top_values["pool"], values, rtol=1e-6)
    x = np.asarray(data.images, np.float64) / 255.0  # filter 1 of conv: centre pixel - 0.5
    centre = np.maximum(x[:, 1:5, 1:5] - 0.5, 0).mean(axis=(1, 2))
    spread = [centre[data.labels() == c].std() for c in range(3)]
    np.testing.assert_allclose(stats.std("conv")[:, 1], spread, atol=1e-6)


def test_shards_merge_to_one_pass(tiny_model, data, tmp_path):
    facts = as_facts(tiny_model)
    whole = map_statistics(facts, data, ["conv", "pool"], k=5)
    parts = [map_statistics(facts, data, ["conv", "pool"], k=5, start=a, stop=b)
             for a, b in ((0, 5), (5, 32), (32, 50))]
    parts[1].save(tmp_path / "part.npz")
    parts[1] = MapStatistics.load(tmp_path / "part.npz")  # read back as a resumed run does
    merged = parts[2].merged(parts[0]).merged(parts[1])  # in any order
    assert (merged.start, merged.stop) == (0, 50)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    for layer in ("conv", "pool"):
        np.testing.assert_allclose(merged.sums[layer], whole.sums[layer], rtol=1e-12)
        np.testing.assert_allclose(merged.squares[layer], whole.squares[layer], rtol=1e-12)
        np.testing.assert_array_equal(merged.top_index[layer], whole.top_index[layer])
        np.testing.assert_array_equal(merged.top_values[layer], whole.top_values[layer])
    with pytest.raises(CnnvizError, match="other layers"):
        whole.merged(map_statistics(facts, data, ["conv"], k=5))
    with pytest.raises(CnnvizError, match="outside random"):
        map_statistics(facts, data, ["conv"], start=40, stop=60)


def test_top_k_keeps_the_lower_index_among_equals():
    values, index = top_k(np.array([[1.0, 3.0, 3.0, 2.0]]), np.array([[0, 9, 4, 2]]), 3)
    assert values.tolist() == [[3.0, 3.0, 2.0]] and index.tolist() == [[4, 9, 2]]
