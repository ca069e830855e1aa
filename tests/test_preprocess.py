import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.errors import CnnvizError
from cnnviz.core.preprocess import (
    CAFFE_MEAN_RGB,
    IMAGENET_MEAN,
    IMAGENET_STD,
    for_model,
    named,
)
from cnnviz.model.facts import as_facts, input_range
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.settings import Settings
from cnnviz.results import Activations


@pytest.fixture()
def rgb_model(k):
    model = k.Sequential([k.Input((8, 8, 3)), k.layers.Conv2D(4, 3, activation="relu", name="c"),
                          k.layers.GlobalAveragePooling2D(), k.layers.Dense(2, name="out")])
    rng = np.random.default_rng(0)
    model.get_layer("c").set_weights([rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
                                      np.zeros(4, np.float32)])
    return model


def test_modes_exact_values_and_round_trips():
    red = np.array([[[1.0, 0.0, 0.0]]])
    np.testing.assert_allclose(named("caffe").to_model(red)[0, 0],
                               [-CAFFE_MEAN_RGB[2], -CAFFE_MEAN_RGB[1], 255 - CAFFE_MEAN_RGB[0]],
                               rtol=1e-6)
    grey = np.full((1, 1, 3), 0.5)
    np.testing.assert_allclose(named("torch").to_model(grey)[0, 0],
                               (0.5 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD),
                               rtol=1e-6)
    np.testing.assert_allclose(named("symmetric").to_model(np.array([[0.0], [1.0]])),
                               [[-1.0], [1.0]])
    np.testing.assert_allclose(named("raw").to_model(np.array([[0.2]])), [[51.0]], rtol=1e-6)
    picture = np.random.default_rng(1).random((4, 5, 3))
    for mode in ("unit", "symmetric", "raw", "caffe", "torch"):
        np.testing.assert_allclose(named(mode).to_unit(named(mode).to_model(picture)), picture,
                                   atol=1e-5, err_msg=mode)
    lo, hi = named("caffe").bounds(3)
    np.testing.assert_allclose(lo, [-103.939, -116.779, -123.68])
    np.testing.assert_allclose(hi - lo, 255.0)
    with pytest.raises(CnnvizError, match="unknown preprocessing 'tf'"):
        named("tf")


def test_model_preprocessing_is_read_or_set(rgb_model, reference_model):
    assert for_model(reference_model).name == "raw"  # leading Rescaling
    assert input_range(rgb_model) == (0.0, 1.0)
    torch = as_facts(rgb_model, "torch")
    lo, hi = input_range(torch)
    np.testing.assert_allclose(lo, -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD), rtol=1e-6)
    np.testing.assert_allclose(lo, -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD), rtol=1e-6)
    # Handed down, not hidden: the Keras model itself is unchanged.
    assert input_range(rgb_model) == (0.0, 1.0)
    assert not [name for name in vars(rgb_model) if "cnnviz" in name]


def test_filters_stay_inside_per_channel_bounds_and_display_in_unit_range(rgb_model):
    result = visualize_filters(as_facts(rgb_model, "caffe"), "c", None, Settings(steps=6, lr=0.2))
    lo, hi = named("caffe").bounds(3)
    assert (result.images >= lo - 1e-3).all() and (result.images <= hi + 1e-3).all()
    assert result.meta.preprocess.name == "caffe"
    shown = result.meta.display(result.images)
    assert shown.min() >= 0 and shown.max() <= 1
    np.testing.assert_allclose(named("caffe").to_model(shown), result.images, atol=1e-3)
    # Some pixels sit on their channel's own bound: the clipping is per channel.
    assert np.isclose(result.images[..., 0], lo[0], atol=1e-3).any() or \
        np.isclose(result.images[..., 0], hi[0], atol=1e-3).any()


def test_cli_preprocess_option(tmp_path, rgb_model):
    from cnnviz.training.train import save_model

    path = save_model(rgb_model, tmp_path / "rgb.keras")
    picture = np.zeros((8, 8, 3), np.uint8)
    picture[..., 0] = 255
    Image.fromarray(picture).save(tmp_path / "red.png")
    runner = CliRunner()
    result = runner.invoke(app, ["activations", str(path), "--image", str(tmp_path / "red.png"),
                                 "--preprocess", "caffe", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    saved = Activations.load(tmp_path / "a" / "activations")
    np.testing.assert_allclose(saved.inputs[0, 0, 0], named("caffe").to_model(
        np.array([1.0, 0.0, 0.0])), rtol=1e-5)
    assert saved.meta.preprocess.name == "caffe"
    filters = runner.invoke(app, ["filters", str(path), "--preprocess", "torch", "--steps", "3",
                                  "--no-reference", "--out", str(tmp_path / "f")])
    assert filters.exit_code == 0, filters.output
    bad = runner.invoke(app, ["explain", str(path), "--preprocess", "tf", "--out",
                              str(tmp_path / "e")])
    assert bad.exit_code == 1 and "unknown preprocessing 'tf'" in bad.stderr


def test_resume_restores_the_runs_own_preprocessing(rgb_model):
    from cnnviz.oip import objectives
    from cnnviz.oip.filters import resume_filters

    caffe = as_facts(rgb_model, "caffe")
    whole = visualize_filters(caffe, "c", None, Settings(steps=3), batch=2)

    def stop_in_second_chunk(done, total):
        if done == 4:
            raise KeyboardInterrupt

    cut = visualize_filters(caffe, "c", None, Settings(steps=3), batch=2,
                            on_progress=stop_in_second_chunk)
    assert cut.interrupted and cut.filters.tolist() == [0, 1]
    done = resume_filters(rgb_model, cut)  # a fresh session loads the model plain (auto)
    assert done.meta.preprocess.name == "caffe" and not done.interrupted
    np.testing.assert_array_equal(done.images, whole.images)
    custom = visualize_filters(rgb_model, "c", [0], Settings(steps=2),
                               objective=objectives.neuron("c"))
    custom.interrupted = True
    with pytest.raises(CnnvizError, match="used objective neuron"):
        resume_filters(rgb_model, custom)


def test_bytes_fast_path_matches_the_general_conversion():
    pixels = np.random.default_rng(2).integers(0, 256, (3, 5, 4, 3), dtype=np.uint8)
    for mode in ("unit", "symmetric", "raw", "caffe", "torch"):
        fast = named(mode).from_bytes(pixels)
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, named(mode).to_model(pixels / 255.0), rtol=1e-6,
                                   atol=1e-4, err_msg=mode)
    np.testing.assert_array_equal(named("raw").from_bytes(pixels), pixels.astype(np.float32))


def test_keras_applications_preprocessing_is_recognised(k, tmp_path):
    """By the model's name (or a nested model's): caffe for VGG and ResNet, symmetric for
    MobileNet, Inception and ResNetV2, torch for DenseNet, raw for the models that preprocess
    inside; a first Rescaling layer and an explicit --preprocess win."""
    from cnnviz.core.preprocess import recognized
    from cnnviz.model.facts import load

    def named(name, first=None):
        layers = [first] if first is not None else []
        return k.Sequential([k.Input((8, 8, 3)), *layers, k.layers.Conv2D(2, 3)], name=name)

    for name, mode in (("vgg16", "caffe"), ("resnet152", "caffe"), ("resnet50v2", "symmetric"),
                       ("mobilenetv2_1.00_224", "symmetric"), ("inception_v3", "symmetric"),
                       ("densenet121", "torch"), ("convnext_tiny", "raw"),
                       ("efficientnetv2-b0", "raw"), ("my_vgg16_variant", "unit"),
                       ("cnn", "unit")):
        assert recognized(named(name))[0] == mode, name
    assert recognized(named("resnet50", k.layers.Rescaling(1.0))) == ("raw", None)
    base = named("resnet50")
    inputs = k.Input((8, 8, 3))
    outer = k.Model(inputs, k.layers.Flatten()(base(inputs)), name="mine")
    mode, why = recognized(outer)
    assert mode == "caffe" and why == (
        "model 'mine' (its nested model 'resnet50') is Keras Applications' ResNet50/101/152: "
        "using its 'caffe' preprocessing (--preprocess to choose another)")
    outer.save(tmp_path / "mine.keras")
    facts = load(tmp_path / "mine.keras")
    assert facts.preprocess.name == "caffe" and why in facts.notes
    chosen = load(tmp_path / "mine.keras", preprocess="unit")
    assert chosen.preprocess.name == "unit" and why not in chosen.notes
