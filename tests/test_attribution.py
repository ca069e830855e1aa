import numpy as np
import pytest

from cnnviz.attribution import (
    METHODS,
    GradCAM,
    GradCAMPlusPlus,
    IntegratedGradients,
    LayerCAM,
    Saliency,
    SmoothGrad,
    baselines,
    explain,
    make_method,
    metrics,
)
from cnnviz.core.errors import CnnvizError
from cnnviz.data import images_to_model_input
from cnnviz.model.facts import default_layer
from cnnviz.results import to_display


@pytest.fixture(scope="module")
def linear_model(k):
    """4×4×1 → flatten → dense 3 with softmax: logits x·W + b, so d logit_c / dx = W[:, c]."""
    model = k.Sequential([k.Input((4, 4, 1)), k.layers.Flatten(),
                          k.layers.Dense(3, activation="softmax", name="out")])
    weights = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    model.get_layer("out").set_weights([weights, np.array([0.1, -0.2, 0.3], np.float32)])
    return model, weights


def test_saliency_is_the_weights_of_a_linear_model(linear_model):
    model, weights = linear_model
    x = np.random.default_rng(1).random((2, 4, 4, 1)).astype(np.float32)
    grads = Saliency(model).attribute(x, target=np.array([2, 0]))
    np.testing.assert_allclose(grads[0, ..., 0], weights[:, 2].reshape(4, 4), rtol=1e-5)
    np.testing.assert_allclose(grads[1, ..., 0], weights[:, 0].reshape(4, 4), rtol=1e-5)
    # Default target: the predicted class.
    predicted = np.argmax(x.reshape(2, 16) @ weights + [0.1, -0.2, 0.3], axis=1)
    default = Saliency(model).attribute(x)
    for i, c in enumerate(predicted):
        np.testing.assert_allclose(default[i, ..., 0], weights[:, c].reshape(4, 4), rtol=1e-5)


def test_smoothgrad_and_integrated_gradients_closed_forms(linear_model):
    model, weights = linear_model
    x = np.random.default_rng(2).random((1, 4, 4, 1)).astype(np.float32)
    smooth = SmoothGrad(Saliency(model), samples=5, noise=0.3).attribute(x, target=1)
    np.testing.assert_allclose(smooth[0, ..., 0], weights[:, 1].reshape(4, 4), rtol=1e-5)
    ig = IntegratedGradients(model).attribute(x, target=1, baseline=0.25, steps=7)
    np.testing.assert_allclose(ig[0, ..., 0], (x[0, ..., 0] - 0.25) * weights[:, 1]
                               .reshape(4, 4), rtol=1e-5, atol=1e-6)
    # Completeness: the attributions add up to logit(x) − logit(baseline).
    logit = x.reshape(16) @ weights[:, 1] - np.full(16, 0.25) @ weights[:, 1]
    assert ig.sum() == pytest.approx(logit, rel=1e-4)


def test_integrated_gradients_completeness_on_a_nonlinear_model(tiny_model):
    x = np.random.default_rng(3).random((2, 6, 6, 1)).astype(np.float32)
    ig = IntegratedGradients(tiny_model).attribute(x, target=1, steps=200)
    saliency = Saliency(tiny_model)
    logits = saliency.scores(np.concatenate([x, np.zeros_like(x)]))[:, 1]
    np.testing.assert_allclose(ig.sum(axis=(1, 2, 3)), logits[:2] - logits[2:], rtol=2e-2)


@pytest.fixture(scope="module")
def cam_model(k):
    """conv (linear) → global average pool → dense: d logit_c / d A_k = W[k, c] / (h·w)."""
    model = k.Sequential([k.Input((5, 5, 1)), k.layers.Conv2D(3, 3, name="conv"),
                          k.layers.GlobalAveragePooling2D(), k.layers.Dense(2, name="out")])
    rng = np.random.default_rng(4)
    model.get_layer("conv").set_weights([rng.normal(size=(3, 3, 1, 3)).astype(np.float32),
                                         np.zeros(3, np.float32)])
    dense = rng.normal(size=(3, 2)).astype(np.float32)
    model.get_layer("out").set_weights([dense, np.zeros(2, np.float32)])
    x = rng.random((1, 5, 5, 1)).astype(np.float32)
    maps = np.asarray(k.Model(model.inputs[0], model.get_layer("conv").output)(x))[0]
    return model, dense, x, maps.astype(np.float64)


# A valid 3×3 conv: unit i sees pixels i..i+2, centred on pixel i+1; the border pixels beyond
# the outer centres take the nearest unit's value.
AT_CENTRES = [0, 0, 1, 2, 2]


def test_gradcam_closed_form(cam_model):
    model, dense, x, maps = cam_model
    cam = GradCAM(model)
    assert cam.layer == "conv" == default_layer(model, top_level=True)
    expected = np.maximum((maps * (dense[:, 0] / 9.0)).sum(axis=-1), 0.0)
    expected = expected[AT_CENTRES][:, AT_CENTRES]
    np.testing.assert_allclose(cam.attribute(x, target=0)[0], expected, rtol=1e-4, atol=1e-6)


def test_gradcam_plus_plus_and_layercam_closed_forms(cam_model):
    model, dense, x, maps = cam_model
    g = dense[:, 1].astype(np.float64) / 9.0  # the same gradient at every position of map k
    # Grad-CAM++: α = g² / (2g² + ΣA·g³) at each of the 9 positions, weight Σ α·ReLU(g).
    alpha = g**2 / (2 * g**2 + maps.sum(axis=(0, 1)) * g**3)
    weights = 9 * alpha * np.maximum(g, 0.0)
    plus = np.maximum((maps * weights).sum(axis=-1), 0.0)[AT_CENTRES][:, AT_CENTRES]
    np.testing.assert_allclose(GradCAMPlusPlus(model).attribute(x, target=1)[0], plus,
                               rtol=1e-4, atol=1e-7)
    # LayerCAM: each position weighted by its own positive gradient.
    layer = np.maximum((maps * np.maximum(g, 0.0)).sum(axis=-1), 0.0)[AT_CENTRES][:, AT_CENTRES]
    np.testing.assert_allclose(LayerCAM(model).attribute(x, target=1)[0], layer, rtol=1e-4,
                               atol=1e-7)


def test_baselines(reference_model):
    x = np.random.default_rng(6).uniform(0, 255, (2, 28, 28, 1)).astype(np.float32)
    assert baselines("black", x, (0.0, 255.0)).shape == (1, 2, 28, 28, 1)
    assert not baselines("black", x, (0.0, 255.0)).any()
    flat = np.full((1, 28, 28, 1), 100.0, np.float32)
    np.testing.assert_allclose(baselines("blur", flat, (0.0, 255.0)), 100.0, rtol=1e-5)
    noise = baselines("noise", x, (0.0, 255.0), samples=3)
    assert noise.shape == (3, 2, 28, 28, 1) and noise.min() >= 0 and noise.max() <= 255
    mean = baselines("mean", x, (0.0, 255.0), references=x)
    np.testing.assert_allclose(mean[0, 1], x.mean(axis=0), rtol=1e-5)
    with pytest.raises(CnnvizError, match="needs reference images"):
        baselines("mean", x, (0.0, 255.0))
    with pytest.raises(CnnvizError, match="unknown baseline 'white'"):
        baselines("white", x, (0.0, 255.0))


@pytest.mark.parametrize("baseline", ["blur", "noise", "mean"])
def test_integrated_gradients_completeness_from_every_baseline(tiny_model, baseline):
    x = np.random.default_rng(3).random((2, 6, 6, 1)).astype(np.float32)
    refs = np.random.default_rng(7).random((5, 6, 6, 1)).astype(np.float32)
    ig, delta = IntegratedGradients(tiny_model).attribute(
        x, target=1, baseline=baseline, steps=200, samples=3, references=refs,
        return_delta=True)
    change = ig.reshape(2, -1).sum(axis=1) - delta
    assert np.all(np.abs(delta) <= 0.02 * np.abs(change) + 1e-4)


def test_expected_gradients_of_a_linear_model(linear_model):
    model, weights = linear_model
    x = np.random.default_rng(8).random((2, 4, 4, 1)).astype(np.float32)
    reference = np.random.default_rng(9).random((1, 4, 4, 1)).astype(np.float32)
    eg = IntegratedGradients(model).attribute(x, target=2, baseline="expected", samples=4,
                                              references=reference)
    expected = (x - reference) * weights[:, 2].reshape(1, 4, 4, 1)
    np.testing.assert_allclose(eg, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(CnnvizError, match="expected gradients need reference images"):
        IntegratedGradients(model).attribute(x, baseline="expected")


def test_bad_targets_and_methods(linear_model):
    model, _ = linear_model
    x = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(CnnvizError, match=r"class 3 is not an output of the model \(0..2\)"):
        Saliency(model).attribute(x, target=3)
    with pytest.raises(CnnvizError, match="unknown attribution method 'lime'"):
        make_method("lime", model)
    with pytest.raises(CnnvizError, match="no convolution layer for Grad-CAM"):
        GradCAM(model)


def test_every_displayed_map_passes_its_checks_on_twenty_images(reference_model, mnist):
    """Adebayo et al. 2018 and Petsiuk et al. 2018, on what is shown, with the CAMs at the
    deepest conv layer (conv2d_3, 3×3): each method's displayed map must change when the weights
    are randomized (median Spearman < 0.5), and deleting the pixels it ranks first must lower
    the class probability faster than deleting the digit's ink in random order."""
    x = images_to_model_input(mnist.x_test[:20], (28, 28, 1), (0.0, 255.0))
    result = explain(reference_model, x, target=np.array(mnist.y_test[:20]), layer="conv2d_3")
    checks = metrics.evaluate(reference_model, result, stages=2)
    assert list(checks) == list(METHODS)
    for name, score in checks.items():
        assert np.median(score.randomization) < 0.5, score.line(name)
        assert np.median(score.deletion) < np.median(score.random_deletion), score.line(name)
        assert np.median(score.insertion) > np.median(score.deletion), score.line(name)
        assert [layer for layer, _ in score.curve()] == ["dense_2", "conv2d_1"]


def test_checks_flag_the_maps_that_show_the_input(reference_model, mnist):
    """At the default CAM layer (conv2d_2, 11×11) LayerCAM's map barely changes when the top
    layer is re-drawn: the cascade flags it; the perturbation references and the gradient
    methods pass every check."""
    x = images_to_model_input(mnist.x_test[:12], (28, 28, 1), (0.0, 255.0))
    result = explain(reference_model, x, ("integrated_gradients", "layercam", "occlusion",
                                          "rise"), target=np.array(mnist.y_test[:12]))
    assert result.meta.layers == ("conv2d_2",) and result.params["cam_layer"] == "default"
    checks = metrics.evaluate(reference_model, result, stages=3)
    layercam = checks["layercam"]
    assert layercam.top_kept > 0.5 and not layercam.changes
    assert any("when the top layer (dense_2) is re-drawn" in f for f in layercam.flags())
    assert [layer for layer, _ in layercam.curve()][0] == "dense_2"
    for name in ("integrated_gradients", "occlusion", "rise"):
        score = checks[name]
        assert score.flags() == [], score.line(name)
        assert score.summary()["flags"] == [] and len(score.summary()["cascade"]) == 3


def test_cam_layer_is_the_deepest_with_maps_of_seven_or_more(k, reference_model):
    from cnnviz.attribution import cam_layer

    assert cam_layer(reference_model) == "conv2d_2"  # 11×11; conv2d_3 is 3×3
    any_size = k.Sequential([k.Input((None, None, 3)),
                             k.layers.Conv2D(4, 3, padding="same", name="c1"),
                             k.layers.MaxPooling2D(2, name="p1"),
                             k.layers.Conv2D(4, 3, padding="same", name="c2"),
                             k.layers.MaxPooling2D(2, name="p2"),
                             k.layers.GlobalAveragePooling2D(), k.layers.Dense(2)])
    assert cam_layer(any_size, (28, 28)) == "p2"  # 7×7
    assert cam_layer(any_size, (24, 24)) == "c2"  # p2 is 6×6
    assert cam_layer(any_size, (8, 8)) == "c1"  # 8×8; c2 is 4×4
    assert cam_layer(any_size, (6, 6)) == "c2"  # nothing reaches 7: the deepest convolution
    result = explain(any_size, np.zeros((1, 24, 24, 3), np.float32), ("gradcam",))
    assert result.meta.layers == ("c2",) and result.params["cam_layer"] == "default"
    from cnnviz.attribution import ChannelTarget
    from cnnviz.render.attributions import cam_layer_line

    x = np.random.default_rng(0).random((1, 24, 24, 3)).astype(np.float32)
    channel = explain(any_size, x, ("gradcam",), target=ChannelTarget(0, "c1"))
    assert channel.meta.layers == ("c1",) and channel.params["cam_layer"] == "target"
    assert cam_layer_line(channel) == ("the class activation maps read layer c1 (the layer "
                                       "whose channel is explained)")
    given = explain(any_size, x, ("gradcam",), layer="p1")
    assert cam_layer_line(given) == "the class activation maps read layer p1 (as given)"


def test_occlusion_of_a_linear_score_is_the_patch_sum(k):
    """Score Σ w·x: hiding a patch (to 0) drops it by the patch's Σ w·x; with patches that do
    not overlap each pixel gets its own patch's sum; overlapping ones average."""
    from cnnviz.attribution import Occlusion

    model = k.Sequential([k.Input((4, 4, 1)), k.layers.Flatten(),
                          k.layers.Dense(1, use_bias=False, name="w")])
    w = np.arange(16, dtype=np.float32).reshape(16, 1) - 5
    model.get_layer("w").set_weights([w])
    x = np.random.default_rng(0).random((1, 4, 4, 1)).astype(np.float32)
    contribution = (w[:, 0] * x.reshape(16)).reshape(4, 4)
    found = Occlusion(model, window=2, stride=2).attribute(x, 0)[0]
    blocks = contribution.reshape(2, 2, 2, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(found, np.kron(blocks, np.ones((2, 2))), rtol=1e-5)
    single = Occlusion(model, window=1).attribute(x, 0)[0]
    np.testing.assert_allclose(single, contribution, rtol=1e-5, atol=1e-5)
    overlapping = Occlusion(model, window=3, stride=1).attribute(x, 0)[0]
    sums = [[contribution[t:t + 3, c:c + 3].sum() for c in range(2)] for t in range(2)]
    np.testing.assert_allclose(overlapping[0, 0], sums[0][0], rtol=1e-5)
    np.testing.assert_allclose(overlapping[1, 1], np.mean(sums), rtol=1e-5)
    with pytest.raises(CnnvizError, match="window and a stride of at least one pixel"):
        Occlusion(model, window=0)


def test_rise_of_a_linear_score_recovers_each_pixels_contribution(k):
    """With a grid as fine as the image the masks are independent coin flips per pixel, so the
    slope of Σ w·x·m on m_p is w_p·x_p (up to sampling error)."""
    from cnnviz.attribution import RISE

    model = k.Sequential([k.Input((4, 4, 1)), k.layers.Flatten(),
                          k.layers.Dense(1, use_bias=False, name="w")])
    w = (np.arange(16, dtype=np.float32).reshape(16, 1) - 5) / 4
    model.get_layer("w").set_weights([w])
    x = np.ones((1, 4, 4, 1), np.float32)
    rise = RISE(model, masks=6000, grid=4, seed=1)
    masks = rise.make_masks((4, 4), 500, np.random.default_rng(0))
    assert set(np.unique(masks)) == {0.0, 1.0} and abs(masks.mean() - 0.5) < 0.02
    found = rise.attribute(x, 0)[0]
    # the slope's standard error here is about 0.07 (Σ w² ≈ 27.5 of noise from the others)
    np.testing.assert_allclose(found, (w[:, 0]).reshape(4, 4), atol=0.25)
    assert np.corrcoef(found.ravel(), w[:, 0])[0, 1] > 0.99
    again = RISE(model, masks=6000, grid=4, seed=1).attribute(x, 0)[0]
    np.testing.assert_array_equal(found, again)  # seeded
    smooth = RISE(model, masks=64, grid=2).make_masks((8, 8), 64, np.random.default_rng(0))
    assert smooth.shape == (64, 8, 8) and 0 < smooth.mean() < 1
    assert len(np.unique(smooth)) > 2  # bilinear: soft edges between cells
    with pytest.raises(CnnvizError, match="at least 2 masks"):
        RISE(model, masks=1)


def test_displayed_maps_are_signed_sums_or_non_negative_maps(reference_model, mnist):
    x = images_to_model_input(mnist.x_test[:2], (28, 28, 1), (0.0, 255.0))
    result = explain(reference_model, x)
    shown = result.displayed()
    assert list(shown) == list(METHODS)
    for name, heat in shown.items():
        assert heat.shape == (2, 28, 28)
        assert result.signed(name) == (name not in ("gradcam", "gradcam++", "layercam"))
        assert heat.dtype == np.float32 or name not in ("occlusion", "rise")
        if not result.signed(name):
            assert heat.min() >= 0
    np.testing.assert_array_equal(shown["saliency"], result.maps["saliency"].sum(axis=-1))
    assert (shown["integrated_gradients"] < 0).any()  # evidence against the class, kept
    np.testing.assert_array_equal(to_display(np.array([[[[-2.0, 1.0]]]])), [[[-1.0]]])
    np.testing.assert_array_equal(to_display(np.array([[[[-2.0, 1.0]]]]), signed=False),
                                  [[[2.0]]])




RESIDUAL_SCRIPT = """
import json
import numpy as np
import keras
from cnnviz.attribution import GradCAM
inp = keras.Input((8, 8, 1))
a = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="first")(inp)
b = keras.layers.Conv2D(3, 3, padding="same", name="second")(a)
merged = keras.layers.Add()([a, b])  # a path around "second" reaches the output
out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(merged))
model = keras.Model(inp, out)
rng = np.random.default_rng(1)
model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
x = rng.random((2, 8, 8, 1)).astype("float32")
maps, grads, _ = GradCAM(model, "first").maps_and_gradients(x, 1)
print(json.dumps({"backend": keras.backend.backend(), "grads": grads.tolist()}))
"""


@pytest.mark.slow
def test_grad_cam_follows_residual_paths_under_jax_as_under_tensorflow():
    """The gradient with respect to a layer whose output also skips ahead: under JAX taken
    through a zero added to that output, equal to TensorFlow's tape."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    runs = {}
    for backend in ("tensorflow", "jax"):
        out = subprocess.run([sys.executable, "-c", RESIDUAL_SCRIPT], capture_output=True,
                             text=True, env={**os.environ, "KERAS_BACKEND": backend},
                             check=True).stdout
        runs[backend] = json.loads(out.strip().splitlines()[-1])
    assert runs["jax"]["backend"] == "jax"
    np.testing.assert_allclose(runs["jax"]["grads"], runs["tensorflow"]["grads"], rtol=1e-5,
                               atol=1e-6)
    assert np.abs(runs["jax"]["grads"]).sum() > 0
