"""Any Keras CNN: Sequential, Functional, nested (transfer learning), residual (ResNet v2 with Add
and pre-activation BatchNorm) and Keras Applications models, RGB and grey, odd input sizes — each
through activations, filters and explain (small sizes, weights=None: no download)."""

import numpy as np
import pytest

from cnnviz.attribution import GradCAM, Saliency
from cnnviz.maps.activations import activations
from cnnviz.model.facts import get_layer, input_shape, list_layers, resolve_map_layers
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.settings import Settings


def _functional(k):
    inputs = k.Input((20, 24, 1))
    x = k.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = k.layers.MaxPooling2D(name="p1")(x)
    x = k.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    x = k.layers.Flatten()(x)
    return k.Model(inputs, k.layers.Dense(3, activation="softmax")(x), name="functional")


def _resnet_v2(k):
    inputs = k.Input((16, 16, 3))
    x = k.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    for i in range(2):
        y = k.layers.BatchNormalization(name=f"b{i}_bn1")(x)
        y = k.layers.Activation("relu", name=f"b{i}_relu1")(y)
        y = k.layers.Conv2D(8, 3, padding="same", name=f"b{i}_conv1")(y)
        y = k.layers.BatchNormalization(name=f"b{i}_bn2")(y)
        y = k.layers.Activation("relu", name=f"b{i}_relu2")(y)
        y = k.layers.Conv2D(8, 3, padding="same", name=f"b{i}_conv2")(y)
        x = k.layers.Add(name=f"b{i}_add")([x, y])
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, k.layers.Dense(4, activation="softmax")(x), name="resnet_v2")


def _transfer(k):
    base = k.Sequential([k.Input((24, 24, 3)), k.layers.Conv2D(6, 3, activation="relu",
                                                                  name="block1_conv1"),
                         k.layers.MaxPooling2D(name="block1_pool"),
                         k.layers.Conv2D(8, 3, activation="relu", name="block2_conv1")],
                        name="base")
    inputs = k.Input((24, 24, 3))
    x = k.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(inputs)
    x = base(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, k.layers.Dense(2, activation="softmax")(x), name="transfer")


BUILDERS = {
    "functional-grey-odd-size": _functional,
    "resnet-v2": _resnet_v2,
    "nested-transfer": _transfer,
    "vgg16": lambda k: k.applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=4),
    "mobilenetv2": lambda k: k.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3),
                                                        classes=4, alpha=0.35),
    "resnet50v2": lambda k: k.applications.ResNet50V2(weights=None, input_shape=(32, 32, 3),
                                                      classes=4),
}


@pytest.mark.parametrize("kind", [pytest.param(kind, marks=pytest.mark.slow)
                                  if kind in ("mobilenetv2", "resnet50v2") else kind
                                  for kind in BUILDERS])
def test_model_kind_runs_activations_filters_and_explain(k, kind):
    k.utils.set_random_seed(0)
    model = BUILDERS[kind](k)
    shape = input_shape(model)
    x = np.random.default_rng(0).random((2, *shape)).astype(np.float32)
    acts = activations(model, x)
    assert acts.layers == resolve_map_layers(model, None)
    for name in acts.layers:
        assert acts.maps[name].shape[1:] == tuple(get_layer(model, name).output.shape[1:])
    np.testing.assert_allclose(acts.probabilities, np.asarray(model(x)), atol=1e-5)
    convs = [i.name for i in list_layers(model) if i.type in ("Conv2D", "DepthwiseConv2D")]
    deepest = convs[-1]
    result = visualize_filters(model, deepest, [0, 1], Settings(steps=3))
    assert result.images.shape == (2, *shape) and np.isfinite(result.activation).all()
    assert result.curves.shape == (2, 3)
    saliency = Saliency(model).attribute(x[:1])
    assert saliency.shape == (1, *shape) and np.abs(saliency).sum() > 0
    cam = GradCAM(model)
    assert cam.attribute(x[:1]).shape == (1, *shape[:2])
    if kind == "nested-transfer":
        assert deepest == "base/block2_conv1" and cam.layer == "base"


def test_a_512_channel_layer_of_a_224_model_is_chunked_to_the_budget(k):
    from cnnviz.oip.settings import bytes_per_image, chunk_size

    model = k.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    per_image = bytes_per_image(model, "block5_conv3")
    # Every layer's float32 output up to block5_conv3, ×3 for the backward pass.
    outputs = sum(int(np.prod(layer.output.shape[1:])) for layer in model.layers[1:18])
    assert per_image == 4 * 3 * (224 * 224 * 3 + outputs)
    budget = 512 * 2**20
    size = chunk_size(model, "block5_conv3", 512, budget=budget)
    assert size * per_image <= budget < (size + 1) * per_image
