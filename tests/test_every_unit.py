"""Every unit is drawable: the units of a Dense layer and, for the output layer, the class
logits before the softmax, labelled with the classes' names."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.errors import CnnvizError
from cnnviz.data.readers import ArraySource
from cnnviz.model.facts import as_facts
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.presets import objective_kind
from cnnviz.oip.settings import Settings
from cnnviz.render.views import filter_gallery_figure


@pytest.fixture(scope="module")
def digits_model(k, mnist):
    """28×28×1 → flatten → dense "out" (2 classes, softmax) whose weights are a 3 and a 7
    (each centred on its mean): class c's logit is the image's match with digit c."""
    three = mnist.x_test[mnist.y_test == 3][0].astype(np.float64) / 255
    seven = mnist.x_test[mnist.y_test == 7][0].astype(np.float64) / 255
    model = k.Sequential([k.Input((28, 28, 1)), k.layers.Flatten(name="flat"),
                          k.layers.Dense(2, activation="softmax", name="out")], name="digits")
    weights = np.stack([(d - d.mean()).reshape(-1) for d in (three, seven)], axis=1)
    model.get_layer("out").set_weights([weights.astype(np.float32), np.zeros(2, np.float32)])
    return as_facts(model), three, seven


def test_a_class_image_is_the_digit_its_logit_weighs(digits_model):
    facts, three, seven = digits_model
    result = visualize_filters(facts, "out", None, Settings(steps=60, lr=0.05, seed=0))
    assert result.params["objective_kind"] == "unit" and result.classes
    assert result.params["objective"] == "unit(out)" and result.params["classes"] == "probability"
    images = result.images[..., 0].reshape(2, -1)

    def r(a, b):
        return float(np.corrcoef(a, b.reshape(-1))[0, 1])

    assert r(images[0], three) > 0.8 and r(images[1], seven) > 0.8
    assert r(images[0], seven) < 0.5 and r(images[1], three) < 0.5
    np.testing.assert_allclose(result.output, 1.0, atol=1e-3)  # each image is its class, surely


def test_class_images_are_named_by_the_data_classes(digits_model):
    facts = digits_model[0]
    data = ArraySource(np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 0, 1]),
                       class_names=("three", "seven"), name="two digits")
    result = visualize_filters(facts, "out", None, Settings(steps=5, lr=0.05),
                               reference_images=data, examples=1)
    assert [result.unit_name(f) for f in result.filters] == ["three", "seven"]
    figure = filter_gallery_figure(result)
    titles = [a.text for a in figure.layout.annotations]
    assert any(t.startswith("three: ") for t in titles) and any(t.startswith("seven: ")
                                                                for t in titles)
    assert "2 classes (the class logit before the softmax" in figure.layout.title.text
    assert result.summary().startswith("out: 2 classes in chunks of 2; objective "
                                       "unit(out)")


def test_hidden_dense_units_and_the_objectives_that_fit_them(k):
    model = k.Sequential([k.Input((6, 6, 1)), k.layers.Conv2D(2, 3, name="conv"),
                          k.layers.Flatten(name="flat"),
                          k.layers.Dense(4, activation="relu", name="hidden"),
                          k.layers.Reshape((2, 2), name="square"),
                          k.layers.Flatten(name="again"), k.layers.Dense(3, name="out")])
    facts = as_facts(model)
    assert objective_kind(facts, "hidden", (6, 6, 1)) == "unit"
    result = visualize_filters(facts, "hidden", [1, 3], Settings(steps=4, lr=0.05))
    assert not result.classes and result.units == "units"
    assert [result.unit_name(f) for f in result.filters] == ["1", "3"]
    with pytest.raises(CnnvizError, match="objective 'neuron' needs a layer with maps; "
                                          "'hidden' has units: use unit"):
        visualize_filters(facts, "hidden", [0], objective="neuron")
    with pytest.raises(CnnvizError, match="objective 'unit' needs a layer with units"):
        visualize_filters(facts, "conv", [0], objective="unit")
    with pytest.raises(CnnvizError, match="layer 'square' has neither maps nor units"):
        visualize_filters(facts, "square", [0])
    with pytest.raises(CnnvizError, match="filter 4 is out of range: layer 'hidden' has 4"):
        visualize_filters(facts, "hidden", [4])


def test_the_command_draws_the_bundled_models_classes(tmp_path):
    result = CliRunner().invoke(app, ["filters", "--layer", "dense_2", "--steps", "8",
                                      "--out", str(tmp_path / "classes")])
    assert result.exit_code == 0, result.output
    assert "dense_2: 10 classes" in result.output
    assert (tmp_path / "classes" / "filters.png").exists()


def test_deepdream_reads_the_maps_after_their_activation_unless_asked(tiny_model):
    """lucid's DeepDream: the squares of the maps after the ReLU (negative pre-activations,
    which the ReLU zeroes, earn nothing); ``layer_pre`` keeps the maps before it."""
    post = visualize_filters(tiny_model, "conv", None, Settings(steps=3, lr=0.05),
                             objective="layer")
    pre = visualize_filters(tiny_model, "conv", None, Settings(steps=3, lr=0.05),
                            objective="layer_pre")
    assert post.params["preactivation"] is False and pre.params["preactivation"] is True
    assert post.dream and pre.dream and len(post.filters) == len(pre.filters) == 1
    assert "after their activation" in filter_gallery_figure(post).layout.title.text


def test_deepdream_from_an_image_says_what_the_model_reads(mnist):
    from cnnviz.model.facts import load

    facts = load()
    six = facts.preprocess.from_bytes(mnist.x_test[mnist.y_test == 6][:1, ..., None])[0]
    dream = visualize_filters(facts, "conv2d_2", None, Settings(steps=5, lr=0.01),
                              objective="layer", start_image=six)
    before, after = dream.params["prediction"]
    assert before == 6
    said = dream.summary()
    assert ("prediction stayed 6" in said) if after == 6 else \
        (f"prediction changed from 6 to {after}" in said)


def test_only_a_classifiers_output_layer_is_drawn_as_classes(k):
    from cnnviz.model.heads import class_output, output_layer

    def head(layer, pooled=False):
        body = [k.Input((8, 8, 1)), k.layers.Conv2D(2, 3, name="conv")]
        body += [k.layers.GlobalAveragePooling2D(name="gap")] if pooled else \
            [k.layers.Flatten(name="flat"), layer]
        return k.Sequential(body)

    assert class_output(head(k.layers.Dense(3, activation="softmax", name="o")), "o") \
        == "probability"
    assert class_output(head(k.layers.Dense(1, activation="sigmoid", name="o")), "o") \
        == "probability"
    assert class_output(head(k.layers.Dense(3, name="o")), "o") == "logit"
    regression = head(k.layers.Dense(1, name="o"))
    assert class_output(regression, "o") is None and output_layer(regression) is None
    features = head(None, pooled=True)  # VGG16(include_top=False, pooling="avg")
    assert class_output(features, "gap") is None and output_layer(features) is None
    assert class_output(head(k.layers.Dense(3, name="o")), "flat") is None


def test_diverse_images_of_one_filter_are_pushed_apart(tiny_model):
    """--diversity N: N images a filter, in a row, each from its own random streams; the
    diversity term lowers their similarity against the same run without it."""
    from cnnviz.oip import objectives

    settings = Settings(steps=12, lr=0.05, seed=3)
    plain = visualize_filters(tiny_model, "conv", [0, 1], settings, diversity=3,
                              diversity_weight=0.0)
    assert plain.filters.tolist() == [0, 0, 0, 1, 1, 1] and plain.params["diversity"] == 3
    assert not np.allclose(plain.images[0], plain.images[1])  # streams of their own
    one = visualize_filters(tiny_model, "conv", [0, 1], settings)
    np.testing.assert_array_equal(plain.images[[0, 3]], one.images)  # copy 0: the plain run
    pushed = visualize_filters(tiny_model, "conv", [0, 1], settings, diversity=3,
                               diversity_weight=5.0)
    assert pushed.params["objective"] == "diverse(neuron(conv, centre), 5, conv)"

    def similarity(result):
        images = result.images.reshape(2, 3, -1)
        return np.mean([np.corrcoef(images[f])[np.triu_indices(3, 1)] for f in range(2)])

    assert similarity(pushed) < similarity(plain)
    assert "2 filters × 3 diverse images" in pushed.summary()
    figure = filter_gallery_figure(pushed)
    assert "2 filters × 3 images" in figure.layout.title.text
    with pytest.raises(CnnvizError, match="--diversity must be a whole number from 1 to 64"):
        visualize_filters(tiny_model, "conv", [0], settings, diversity=0)
    with pytest.raises(CnnvizError, match="DeepDream makes one image"):
        visualize_filters(tiny_model, "conv", None, settings, objective="layer", diversity=2)
    assert objectives.diverse(objectives.channel("conv"), 0.5).key != \
        objectives.diverse(objectives.channel("conv"), 0.6).key


def test_examples_are_cut_where_the_filter_answers_and_named_by_file(tiny_model, tmp_path):
    """Filter 1 of the tiny model is its window's centre pixel: the crop of a real image is
    the 3×3 window around that image's brightest pixel, enlarged; folder images are named by
    their file."""
    from PIL import Image

    from cnnviz.data.readers import FolderSource
    from cnnviz.model.receptive import crops_where_answered, receptive_field

    image = np.zeros((1, 6, 6, 1), np.float32)
    image[0, 2, 3, 0] = 1.0
    maps = np.zeros((1, 4, 4))
    maps[0, 1, 2] = 1.0  # unit (1, 2) sees rows 1..3, columns 2..4
    crop = crops_where_answered(image, maps, receptive_field(tiny_model, "conv"))[0, ..., 0]
    expected = image[0, 1:4, 2:5, 0][np.arange(6) * 3 // 6][:, np.arange(6) * 3 // 6]
    np.testing.assert_array_equal(crop, expected)
    for c, (y, x) in enumerate(((1, 1), (4, 4))):
        (tmp_path / f"c{c}").mkdir()
        pixels = np.zeros((6, 6), np.uint8)
        pixels[y, x] = 255
        Image.fromarray(pixels).save(tmp_path / f"c{c}" / f"dot{c}.png")
    data = FolderSource(tmp_path)
    assert [data.item_name(i) for i in range(2)] == ["c0/dot0.png", "c1/dot1.png"]
    result = visualize_filters(tiny_model, "conv", [1], Settings(steps=3, lr=0.05),
                               reference_images=data, examples=2)
    assert result.params["example_crops"] is True
    assert sorted(result.params["example_names"][0]) == ["c0/dot0.png", "c1/dot1.png"]
    best = result.example_images[0, 0, ..., 0]
    assert best.max() > 0 and (best > 0).mean() >= 4 / 36  # the dot, enlarged in its window
    texts = [str(trace.text) for trace in filter_gallery_figure(result).data]
    assert any("real images (each cut to where the filter answers most): c" in text
               for text in texts)


def test_feature_accentuation_stays_near_its_real_start(tiny_model):
    """--closeness keeps the image near the real image it started from (in the first
    convolution's maps) while it raises the filter: the farther from the start, the more it
    costs."""
    start = np.random.default_rng(2).random((6, 6, 1)).astype(np.float32)
    settings = Settings(steps=30, lr=0.1, start="image")

    def drift(closeness):
        result = visualize_filters(tiny_model, "conv", [0], settings, objective="channel",
                                   start_image=start, closeness=closeness)
        return float(np.abs(result.images[0] - start).mean()), result

    free, plain = drift(0.0)
    near, kept = drift(20.0)
    assert near < 0.5 * free and kept.params["closeness"] == 20.0
    assert kept.params["objective"] == "close_to(channel(conv), 20, conv)"
    assert kept.output[0] > 0  # it still answers
    with pytest.raises(CnnvizError, match="needs a real start image"):
        visualize_filters(tiny_model, "conv", [0], Settings(steps=2), closeness=1.0)
