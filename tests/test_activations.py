from dataclasses import replace

import numpy as np
import pytest

from cnnviz.core.errors import CnnvizError
from cnnviz.data import images_to_model_input
from cnnviz.maps.activations import activations
from cnnviz.results import Activations


def _conv_reference(x: np.ndarray) -> np.ndarray:
    """The tiny model's conv layer in plain numpy: window sum, centre − 0.5, then relu."""
    out = np.zeros((4, 4, 2))
    for r in range(4):
        for c in range(4):
            out[r, c, 0] = x[r:r + 3, c:c + 3].sum()
            out[r, c, 1] = x[r + 1, c + 1] - 0.5
    return np.maximum(out, 0.0)


def test_tiny_model_maps_are_exact(tiny_model):
    x = np.zeros((1, 6, 6, 1), np.float32)
    x[0, 2, 2, 0] = 1.0  # one bright pixel
    acts = activations(tiny_model, x)
    assert acts.layers == ["conv", "pool"]
    conv = acts.maps["conv"][0]
    # Filter 0 sees the pixel in every window that covers (2, 2): rows and cols 0..2.
    expected_sum = np.zeros((4, 4))
    expected_sum[0:3, 0:3] = 1.0
    np.testing.assert_array_equal(conv[..., 0], expected_sum)
    # Filter 1 is the centre pixel − 0.5: 0.5 at (1, 1), relu zero elsewhere.
    expected_centre = np.zeros((4, 4))
    expected_centre[1, 1] = 0.5
    np.testing.assert_array_equal(conv[..., 1], expected_centre)
    np.testing.assert_array_equal(acts.maps["pool"][0, ..., 0], [[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(acts.maps["pool"][0, ..., 1], [[0.5, 0.0], [0.0, 0.0]])


def test_tiny_model_matches_numpy_reference_and_softmax(tiny_model):
    rng = np.random.default_rng(3)
    x = rng.random((4, 6, 6, 1)).astype(np.float32)
    acts = activations(tiny_model, x, ["conv", "pool", "out"])
    for i in range(4):
        conv = _conv_reference(x[i, ..., 0].astype(np.float64))
        np.testing.assert_allclose(acts.maps["conv"][i], conv, rtol=1e-5, atol=1e-6)
        pooled = conv.reshape(2, 2, 2, 2, 2).max(axis=(1, 3))
        np.testing.assert_allclose(acts.maps["pool"][i], pooled, rtol=1e-5, atol=1e-6)
        logits = pooled.reshape(-1) @ (np.arange(24).reshape(8, 3) / 100.0) + [0.1, 0.0, -0.1]
        softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(acts.probabilities[i], softmax, rtol=1e-5)
    np.testing.assert_array_equal(acts.maps["out"], acts.probabilities)


def test_reference_model_matches_hand_built_submodels(k, reference_model, mnist):
    x = images_to_model_input(mnist.x_test[:5], (28, 28, 1), (0.0, 255.0))
    names = ["conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2", "conv2d_3",
             "dense_1"]
    acts = activations(reference_model, x, names, labels=mnist.y_test[:5])
    for name in names:
        sub = k.Model(reference_model.inputs[0], reference_model.get_layer(name).output)
        np.testing.assert_allclose(acts.maps[name], np.asarray(sub(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acts.probabilities, np.asarray(reference_model(x)), atol=1e-6)
    assert acts.maps["conv2d_3"].shape == (5, 3, 3, 128)
    assert (acts.predictions == mnist.y_test[:5]).mean() >= 0.8


def test_default_layers_are_conv_and_pool(reference_model, mnist):
    x = images_to_model_input(mnist.x_test[:1], (28, 28, 1), (0.0, 255.0))
    acts = activations(reference_model, x)
    assert acts.layers == ["conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2",
                           "conv2d_3"]


def test_nested_layers_are_addressable(k, nested_model):
    rng = np.random.default_rng(0)
    x = rng.random((3, 6, 6, 1)).astype(np.float32)
    acts = activations(nested_model, x, ["double", "base/c1", "base/c2", "gap"])
    base = nested_model.get_layer("base")
    inner = k.Model(base.inputs[0], [base.get_layer("c1").output, base.get_layer("c2").output])
    c1, c2 = (np.asarray(t) for t in inner(2.0 * x))
    np.testing.assert_allclose(acts.maps["double"], 2.0 * x, rtol=1e-6)
    np.testing.assert_allclose(acts.maps["base/c1"], c1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts.maps["base/c2"], c2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts.maps["gap"], c2.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts.probabilities, np.asarray(nested_model(x)), atol=1e-6)
    # c1 of filter 0 is 2 × the window sum, relu'd; filter 1 is relu(1 − 2 × window sum).
    window = np.array([[x[0, r:r + 3, c:c + 3, 0].sum() for c in range(4)] for r in range(4)])
    np.testing.assert_allclose(acts.maps["base/c1"][0, ..., 0], 2 * window, rtol=1e-5)
    np.testing.assert_allclose(acts.maps["base/c1"][0, ..., 1],
                               np.maximum(1 - 2 * window, 0), atol=1e-5)


def test_save_and_load_round_trip(tmp_path, tiny_model):
    x = np.random.default_rng(1).random((2, 6, 6, 1)).astype(np.float32)
    acts = activations(tiny_model, x, labels=np.array([4, 7]))
    acts.meta = replace(acts.meta, data="test")
    npz, meta = acts.save(tmp_path / "run.npz")
    assert npz.exists() and meta.suffix == ".json"
    back = Activations.load(tmp_path / "run")
    assert back.layers == acts.layers and back.meta == acts.meta
    for name in acts.layers:
        np.testing.assert_array_equal(back.maps[name], acts.maps[name])
    np.testing.assert_array_equal(back.inputs, x)
    np.testing.assert_array_equal(back.labels, [4, 7])
    np.testing.assert_array_equal(back.probabilities, acts.probabilities)


def test_bad_inputs_raise_clear_errors(tiny_model):
    x = np.zeros((1, 6, 6, 1), np.float32)
    with pytest.raises(CnnvizError, match=r"unknown layer 'conf'; did you mean conv"):
        activations(tiny_model, x, ["conf"])
    with pytest.raises(CnnvizError, match="do not fit the model input"):
        activations(tiny_model, np.zeros((1, 5, 5, 1)))
    with pytest.raises(CnnvizError, match="no images"):
        activations(tiny_model, np.zeros((0, 6, 6, 1)))
