import numpy as np
import pytest

from cnnviz.core.errors import CnnvizError
from cnnviz.data import load_npz_dataset
from cnnviz.maps.activations import activations, top_examples
from cnnviz.maps.patterns import class_patterns
from cnnviz.results import ClassPatterns, Meta


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(5)
    return rng.random((23, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 23)


def test_class_means_match_numpy(tiny_model, small_data):
    images, labels = small_data
    got = class_patterns(tiny_model, images, labels, ["conv", "out"], batch_size=4)
    acts = activations(tiny_model, images, ["conv", "out"])
    conv = acts.maps["conv"].mean(axis=(1, 2))
    for c in range(3):
        rows = labels == c
        np.testing.assert_allclose(got.means["conv"][c], conv[rows].mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(got.stds["conv"][c], conv[rows].std(axis=0), rtol=1e-4,
                                   atol=1e-6)
        np.testing.assert_allclose(got.means["out"][c], acts.maps["out"][rows].mean(axis=0),
                                   rtol=1e-5)
    assert got.counts.tolist() == np.bincount(labels, minlength=3).tolist()
    assert got.class_names == ("0", "1", "2") and got.layers == ["conv", "out"]
    top = got.top_maps("out", 2, values="means")
    assert top["1"] == np.argsort(-got.means["out"][1], kind="stable")[:2].tolist()
    contrast = got.means["conv"] - got.means["conv"].mean(axis=0)  # every class has images
    np.testing.assert_allclose(got.contrast("conv"), contrast, rtol=1e-12)
    assert got.top_maps("conv", 3)["2"] == np.argsort(-contrast[2], kind="stable")[:3].tolist()
    assert got.preferred_class("conv").tolist() == np.argmax(got.means["conv"], 0).tolist()


def test_mean_map_images_per_class(tiny_model, small_data, tmp_path):
    images, labels = small_data
    got = class_patterns(tiny_model, images, labels, ["conv", "out"], batch_size=4,
                         map_images=True)
    maps = activations(tiny_model, images, ["conv"]).maps["conv"]
    means, differences = got.map_images("conv")
    assert list(got.images) == ["conv"] and means.shape == (3, 4, 4, 2)
    for c in range(3):
        np.testing.assert_allclose(means[c], maps[labels == c].mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(differences[c], maps[labels == c].mean(axis=0)
                                   - maps.mean(axis=0), rtol=1e-5, atol=1e-6)
        # the map means of the same pass are the images' spatial means
        np.testing.assert_allclose(got.means["conv"][c], means[c].mean(axis=(0, 1)), rtol=1e-6)
    got.save(tmp_path / "p.npz")
    back = ClassPatterns.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.images["conv"], got.images["conv"])
    halves = [class_patterns(tiny_model, images[s], labels[s], ["conv"], map_images=True)
              for s in (slice(0, 10), slice(10, None))]
    np.testing.assert_allclose(halves[0].merged(halves[1]).images["conv"], means, rtol=1e-5)
    with pytest.raises(CnnvizError, match="--maps"):
        class_patterns(tiny_model, images, labels, ["conv"]).map_images("conv")


def test_selectivity_and_round_trip(tmp_path):
    means = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    patterns = ClassPatterns({"d": means}, {"d": np.zeros_like(means)}, np.array([4, 5, 6]),
                             ("a", "b", "c"), Meta(model="m"))
    np.testing.assert_allclose(patterns.selectivity("d"), [1.0, 0.0])
    patterns.save(tmp_path / "p.npz")
    back = ClassPatterns.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.means["d"], means)
    assert back.class_names == ("a", "b", "c") and back.counts.tolist() == [4, 5, 6]


def test_patterns_bad_input(tiny_model, small_data):
    images, labels = small_data
    with pytest.raises(CnnvizError, match="has no labels"):
        class_patterns(tiny_model, images, None, "conv")
    with pytest.raises(CnnvizError, match="no images \\(an empty folder, file or split\\)"):
        class_patterns(tiny_model, images[:0], labels[:0], "conv")
    with pytest.raises(CnnvizError, match="23 images but 2 labels"):
        class_patterns(tiny_model, images, labels[:2], "conv")


def test_top_examples_match_a_brute_force_sort(tiny_model, small_data):
    images, _ = small_data
    index, values = top_examples(tiny_model, "conv", images, k=5, batch_size=4)
    means = activations(tiny_model, images, ["conv"]).maps["conv"].mean(axis=(1, 2))
    for f in range(2):
        order = np.argsort(-means[:, f], kind="stable")[:5]
        assert index[f].tolist() == order.tolist()
        np.testing.assert_allclose(values[f], means[order, f], rtol=1e-5)
    index_all, _ = top_examples(tiny_model, "conv", images, k=50)
    assert index_all.shape == (2, 23)  # k larger than the data set: all images, sorted
    with pytest.raises(CnnvizError, match="must be positive"):
        top_examples(tiny_model, "conv", images, k=0)


def test_npz_datasets(tmp_path):
    x = np.zeros((4, 5, 5), np.uint8)
    np.savez(tmp_path / "xy.npz", x=x, y=np.array([0, 1, 2, 1]))
    np.savez(tmp_path / "only.npz", images=x)
    np.savez(tmp_path / "none.npz", other=x)
    data = load_npz_dataset(tmp_path / "xy.npz")
    assert data.x_test.shape == (4, 5, 5) and data.class_names == ("0", "1", "2")
    assert load_npz_dataset(tmp_path / "only.npz").y_test is None
    with pytest.raises(CnnvizError, match="has no images"):
        load_npz_dataset(tmp_path / "none.npz")
