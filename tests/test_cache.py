"""The pass cache: a second pass over the same model, data and layer is read back, and any
change of model, data or measure computes again."""

import importlib

import numpy as np

from cnnviz.core.cache import cache_dir
from cnnviz.maps.activations import top_examples

acts = importlib.import_module("cnnviz.maps.activations")  # the module (cnnviz.activations is the
# function of that name)


def test_a_second_pass_is_read_back_and_any_change_computes_again(tiny_model, monkeypatch,
                                                                   tmp_path):
    monkeypatch.setenv("CNNVIZ_CACHE", str(tmp_path))
    images = np.random.default_rng(0).integers(0, 256, (20, 4, 4), np.uint8)
    passes = []
    real = acts._top_examples
    monkeypatch.setattr(acts, "_top_examples", lambda *a: passes.append(1) or real(*a))
    first = top_examples(tiny_model, "conv", images, 3)
    again = top_examples(tiny_model, "conv", images, 3)
    assert len(passes) == 1 and list(tmp_path.glob("top_examples/*.npz"))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    top_examples(tiny_model, "conv", images[::-1].copy(), 3)  # other data
    top_examples(tiny_model, "conv", images, 3, reduce="max")  # another measure
    assert len(passes) == 3
    twin = tiny_model.__class__.from_config(tiny_model.get_config())
    twin.set_weights([w + 1 for w in tiny_model.get_weights()])
    top_examples(twin, "conv", images, 3)  # other weights, same name and layers
    assert len(passes) == 4
    for entry in tmp_path.glob("top_examples/*.npz"):
        entry.write_bytes(b"damaged")
    np.testing.assert_array_equal(top_examples(tiny_model, "conv", images, 3)[1], first[1])
    assert len(passes) == 5  # a damaged entry is computed again


def test_the_cache_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("CNNVIZ_CACHE", "off")
    assert cache_dir() is None
    monkeypatch.delenv("CNNVIZ_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert str(cache_dir()) == "/somewhere/cnnviz"
