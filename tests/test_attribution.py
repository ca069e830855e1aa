import numpy as np
import pytest
from scipy.stats import spearmanr

from cnnviz.attribution import (
    METHODS,
    GradCAM,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    explain,
    make_method,
)
from cnnviz.data import images_to_model_input
from cnnviz.errors import CnnvizError
from cnnviz.models import default_layer
from cnnviz.results import to_heatmap


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


def test_gradcam_closed_form(k):
    """conv (linear) → global average pool → dense: d logit_c / d A_k = W[k, c] / (h·w)."""
    model = k.Sequential([k.Input((5, 5, 1)), k.layers.Conv2D(3, 3, name="conv"),
                          k.layers.GlobalAveragePooling2D(), k.layers.Dense(2, name="out")])
    rng = np.random.default_rng(4)
    model.get_layer("conv").set_weights([rng.normal(size=(3, 3, 1, 3)).astype(np.float32),
                                         np.zeros(3, np.float32)])
    dense = rng.normal(size=(3, 2)).astype(np.float32)
    model.get_layer("out").set_weights([dense, np.zeros(2, np.float32)])
    x = rng.random((1, 5, 5, 1)).astype(np.float32)
    cam = GradCAM(model)
    assert cam.layer == "conv" == default_layer(model, top_level=True)
    sub = k.Model(model.inputs[0], model.get_layer("conv").output)
    maps = np.asarray(sub(x))[0]
    expected = np.maximum((maps * (dense[:, 0] / 9.0)).sum(axis=-1), 0.0)
    # A valid 3×3 conv: unit i sees pixels i..i+2, centred on pixel i+1; the border pixels
    # beyond the outer centres take the nearest unit's value.
    at_centres = [0, 0, 1, 2, 2]
    expected = expected[at_centres][:, at_centres]
    np.testing.assert_allclose(cam.attribute(x, target=0)[0], expected, rtol=1e-4, atol=1e-6)


def test_bad_targets_and_methods(linear_model):
    model, _ = linear_model
    x = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(CnnvizError, match=r"class 3 is not an output of the model \(0..2\)"):
        Saliency(model).attribute(x, target=3)
    with pytest.raises(CnnvizError, match="unknown attribution method 'lime'"):
        make_method("lime", model)
    with pytest.raises(CnnvizError, match="no convolution layer for Grad-CAM"):
        GradCAM(model)


def _randomized(k, model):
    clone = k.models.clone_model(model)
    rng = np.random.default_rng(0)
    clone.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return clone


def test_model_parameter_randomization_changes_every_map(k, reference_model, mnist):
    """Adebayo et al. 2018: with the weights re-initialized, each method's map must change.

    Compared are the maps the methods return (signed for the gradient methods): their absolute
    values share a structure that is the network's geometry, not its weights — pixels near the
    border lie in fewer conv windows, so |gradient| is small there in any such network.
    Test images 1..3: on image 0 (a 9) no map of the 3×3 conv2d_3 pushes the class up
    anywhere, so its Grad-CAM is legitimately flat before randomization too."""
    x = images_to_model_input(mnist.x_test[1:4], (28, 28, 1), (0.0, 255.0))
    targets = np.array(mnist.y_test[1:4])
    random = _randomized(k, reference_model)
    for name in METHODS:
        before = make_method(name, reference_model).attribute(x, targets)
        after = make_method(name, random).attribute(x, targets)
        for i in range(3):
            assert np.ptp(before[i]) > 0, f"{name} gave a flat map for the trained model"
            if np.ptp(after[i]) == 0:  # flattened to a constant (Grad-CAM all ReLU'd): changed
                continue
            rho = spearmanr(before[i].ravel(), after[i].ravel()).statistic
            assert rho < 0.5, f"{name} barely changed (Spearman {rho:.2f}) on image {i}"


def test_heatmaps_shapes(reference_model, mnist):
    x = images_to_model_input(mnist.x_test[:2], (28, 28, 1), (0.0, 255.0))
    maps = explain(reference_model, x).heatmaps()
    assert list(maps) == list(METHODS)
    for heat in maps.values():
        assert heat.shape == (2, 28, 28) and heat.min() >= 0
    np.testing.assert_array_equal(to_heatmap(np.array([[[[-2.0, 1.0]]]])), [[[2.0]]])
