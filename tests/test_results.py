"""Results: one metadata layout, save and load, and merging parts of one run into the whole."""

import json
from dataclasses import replace

import numpy as np
import pytest

from cnnviz.attribution import explain
from cnnviz.core.errors import CnnvizError
from cnnviz.core.preprocess import named
from cnnviz.maps.activations import activations
from cnnviz.maps.patterns import class_patterns
from cnnviz.model.facts import as_facts
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.settings import Settings
from cnnviz.results import (
    Activations,
    Attributions,
    ClassPatterns,
    Meta,
    merge,
)
from cnnviz.version import __version__


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return (rng.integers(0, 256, (30, 6, 6), dtype=np.uint8), np.arange(30) % 3)


def test_every_result_records_the_same_metadata(tmp_path, tiny_model, data):
    facts = as_facts(tiny_model, "symmetric")
    x = np.full((2, 6, 6, 1), 0.25, np.float32)
    results = [
        activations(facts, x, data="two grey squares"),
        class_patterns(facts, *data, ["conv", "out"], data="noise"),
        visualize_filters(facts, "conv", None, Settings(steps=2, seed=4)),
        explain(facts, x, ("saliency", "gradcam"), seed=4, data="two grey squares"),
    ]
    for result in results:
        npz, meta_file = result.save(tmp_path / f"{type(result).__name__}.npz")
        saved = json.loads(meta_file.read_text())["meta"]
        assert sorted(saved) == ["classes", "data", "data_digest", "layers", "model",
                                 "model_digest", "preprocess", "seed", "version"]
        assert saved["model_digest"] == facts.digest
        assert saved["model"] == "tiny" and saved["version"] == __version__
        assert saved["preprocess"]["name"] == "symmetric"
        back = type(result).load(npz)
        assert back.meta == result.meta
    assert results[2].meta.layers == ("conv",) and results[2].meta.seed == 4
    assert results[3].meta.layers == ("conv",)  # the Grad-CAM layer


def test_attributions_round_trip(tmp_path, tiny_model):
    x = np.random.default_rng(3).random((2, 6, 6, 1)).astype(np.float32)
    result = explain(tiny_model, x, target=1)
    assert result.methods == ["saliency", "smoothgrad", "integrated_gradients", "gradcam",
                              "gradcam++", "layercam", "occlusion", "rise"]
    assert result.targets.tolist() == [1, 1] and result.maps["gradcam"].shape == (2, 6, 6)
    result.save(tmp_path / "a.npz")
    back = Attributions.load(tmp_path / "a")
    for name in result.methods:
        np.testing.assert_array_equal(back.maps[name], result.maps[name])
    np.testing.assert_array_equal(back.probabilities, result.probabilities)
    heat = back.displayed()["saliency"]
    np.testing.assert_array_equal(heat, result.maps["saliency"].sum(axis=-1))
    assert back.signed("saliency") and not back.signed("gradcam")


def test_two_filter_ranges_merge_into_the_whole_run(tiny_model):
    settings = Settings(steps=3, seed=1)
    whole = visualize_filters(tiny_model, "conv", [0, 1], settings)
    first = visualize_filters(tiny_model, "conv", [1], settings)
    second = visualize_filters(tiny_model, "conv", [0], settings)
    merged = merge(first, second)
    assert merged.filters.tolist() == [1, 0]  # the first part's filters, then the others
    assert not merged.interrupted
    np.testing.assert_array_equal(merged.images, whole.images[[1, 0]])
    np.testing.assert_allclose(merged.activation, whole.activation[[1, 0]], rtol=1e-6)
    with pytest.raises(CnnvizError, match="cannot merge filter results of different runs"):
        merge(first, visualize_filters(tiny_model, "pool", [0], settings))


def test_class_patterns_of_two_shards_merge_to_the_whole(tiny_model, data):
    images, labels = data
    whole = class_patterns(tiny_model, images, labels, ["conv", "out"], data="all")
    parts = [class_patterns(tiny_model, images[s], labels[s], ["conv", "out"], data="all")
             for s in (slice(0, 11), slice(11, None))]
    merged = merge(*parts)
    assert merged.counts.tolist() == whole.counts.tolist()
    assert merged.params["images"] == 30
    for name in whole.layers:
        # float32 forward passes of other batch sizes: equal to float32 precision
        np.testing.assert_allclose(merged.means[name], whole.means[name], rtol=1e-6)
        np.testing.assert_allclose(merged.stds[name], whole.stds[name], rtol=1e-5, atol=1e-7)


def test_activations_merge_and_refuse_other_runs(tiny_model):
    x = np.random.default_rng(2).random((3, 6, 6, 1)).astype(np.float32)
    whole = activations(tiny_model, x)
    merged = merge(activations(tiny_model, x[:1]), activations(tiny_model, x[1:]))
    for name in whole.layers:
        np.testing.assert_allclose(merged.maps[name], whole.maps[name], rtol=1e-6, atol=1e-6)
    other = activations(as_facts(tiny_model, "raw"), x)
    with pytest.raises(CnnvizError, match="cannot merge activations of different runs"):
        merge(whole, other)
    with pytest.raises(CnnvizError, match="cannot merge ClassPatterns into Activations"):
        merge(whole, ClassPatterns({}, {}, np.zeros(0), ()))


def test_results_of_an_older_layout_are_refused(tmp_path):
    np.savez(tmp_path / "old.npz", counts=np.zeros(2))
    (tmp_path / "old.json").write_text(json.dumps({"kind": "class patterns", "layers": [],
                                                   "class_names": [], "meta": {"model": "m"}}))
    with pytest.raises(CnnvizError, match="saved by an older cnnviz: compute it again"):
        ClassPatterns.load(tmp_path / "old.npz")
    with pytest.raises(CnnvizError, match="does not hold saved activations"):
        Activations.load(tmp_path / "old.npz")


def test_meta_display_uses_the_recorded_preprocessing():
    meta = replace(Meta(), preprocess=named("raw"))
    np.testing.assert_allclose(meta.display(np.array([[[255.0]], [[51.0]]])), [[[1.0]], [[0.2]]])
