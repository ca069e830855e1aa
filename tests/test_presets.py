"""OIP presets, colour bases, objectives chosen from receptive fields, image starts, and the
quality measures of benchmarks/oip_quality.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cnnviz.core.errors import CnnvizError
from cnnviz.jobs import start_input
from cnnviz.oip import quality
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.param import IMAGENET_COLOUR, FourierParam, colour_basis
from cnnviz.oip.presets import objective_kind, preset
from cnnviz.oip.settings import Settings
from cnnviz.oip.transforms import Transforms


@pytest.fixture(scope="module")
def rgb_model(k):
    """A tiny colour model: 16×16×3 → conv "c" (4 filters 3×3) → conv "d" (2 filters 5×5,
    stride 2) → global mean → dense."""
    model = k.Sequential([k.Input((16, 16, 3)), k.layers.Conv2D(4, 3, activation="relu", name="c"),
                          k.layers.Conv2D(2, 5, strides=2, activation="relu", name="d"),
                          k.layers.GlobalAveragePooling2D(), k.layers.Dense(2, name="out")],
                         name="rgb_tiny")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.3
                       for w in model.get_weights()])
    return model


def test_imagenet_basis_is_normalized_and_flips_for_bgr():
    basis = colour_basis()
    assert np.linalg.norm(basis, axis=0).max() == pytest.approx(1.0)
    np.testing.assert_allclose(basis * np.linalg.norm(IMAGENET_COLOUR, axis=0).max(),
                               IMAGENET_COLOUR, rtol=1e-6)
    np.testing.assert_array_equal(colour_basis(bgr=True), basis[::-1])


def test_measured_basis_is_the_square_root_of_the_colour_covariance():
    rng = np.random.default_rng(1)
    mix = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.4], [0.2, 0.4, 1.0]])
    pixels = rng.normal(size=(20000, 3)) @ mix.T
    basis = colour_basis(pixels).astype(np.float64)
    covariance = np.cov(pixels, rowvar=False)
    np.testing.assert_allclose(basis, basis.T, atol=1e-6)  # the symmetric root
    square = basis @ basis  # = covariance / c², c the normalizing constant
    np.testing.assert_allclose(square / square[0, 0], covariance / covariance[0, 0], rtol=1e-5)
    with pytest.raises(CnnvizError, match="do not span three dimensions"):
        colour_basis(np.repeat(rng.random((100, 1)), 3, axis=1))


def test_colour_fourier_round_trips_and_mixes_channels():
    basis = tuple(colour_basis().reshape(-1).tolist())
    lo, hi = np.array([-1.0, 0.0, 2.0], np.float32), np.array([1.0, 5.0, 3.0], np.float32)
    param = FourierParam((lo, hi), (6, 5, 3), colour=basis)
    start = lo + (hi - lo) * np.random.default_rng(2).uniform(0.1, 0.9, (2, 6, 5, 3))
    back = np.asarray(param.to_image(param.init(start.astype(np.float32))))
    np.testing.assert_allclose(back, start, rtol=1e-4, atol=1e-4)
    # One raw coefficient of the brightness direction moves all three channels the same way.
    raw = np.zeros((1, 6, 5, 3), np.float32)
    raw[0, 0, 0, 0] = 1.0
    image = (np.asarray(param.to_image(raw)) - lo) / (hi - lo)
    assert np.all(image > 0.5)
    with pytest.raises(CnnvizError, match="3-channel images and 9 numbers"):
        FourierParam((0.0, 1.0), (6, 5, 1), colour=basis)


def test_default_preset_follows_the_layer_and_the_model(reference_model, rgb_model):
    shape = (28, 28, 1)
    deep = preset("default", reference_model, "conv2d_3", shape)
    assert (deep.param, deep.lr, deep.settle, deep.colour) == ("fourier", 1.0, 0.25, ())
    assert deep.transforms == Transforms(2, (0.9, 1.1), 10.0)  # an 18-pixel field: ±2 px
    assert preset("default", reference_model, "conv2d_1", shape).transforms.jitter == 0
    assert preset("classic", reference_model, "conv2d_3", shape) == Settings()
    tuned = preset("default", reference_model, "conv2d_3", shape, jitter=5, steps=7,
                   scale=(1.0, 1.0))
    assert (tuned.transforms.jitter, tuned.steps, tuned.transforms.scale) == (5, 7, (1.0, 1.0))
    colour = preset("default", rgb_model, "d", (16, 16, 3))
    np.testing.assert_allclose(colour.colour, colour_basis().reshape(-1), rtol=1e-6)
    assert preset("default", rgb_model, "d", (16, 16, 3), colour="none").colour == ()
    pixels = np.random.default_rng(3).random((50, 3))
    measured = preset("default", rgb_model, "d", (16, 16, 3), colour="data", data_pixels=pixels)
    np.testing.assert_allclose(measured.colour, colour_basis(pixels).reshape(-1), rtol=1e-6)
    assert preset("default", rgb_model, "d", (16, 16, 3), param="pixel").colour == ()


def test_the_default_adds_precursors_and_prices_colour(reference_model, rgb_model, k):
    from cnnviz.model.facts import as_facts
    from cnnviz.oip.pieces import PHOTO_COLOURFULNESS, Colourfulness
    from cnnviz.oip.presets import COLOUR_PENALTY, DEFAULT_PRECURSORS

    grey = preset("default", reference_model, "conv2d_3", (28, 28, 1))
    assert (grey.precursors, grey.precursor_steps, grey.penalties) == (DEFAULT_PRECURSORS, 20, ())
    # a fifth of the ascent, at most 20 steps, unless asked for
    assert [preset("default", reference_model, "conv2d_3", (28, 28, 1), steps=n).precursor_steps
            for n in (3, 10, 99, 100, 400)] == [1, 2, 19, 20, 20]
    assert preset("default", reference_model, "conv2d_3", (28, 28, 1), steps=10,
                  precursor_steps=7).precursor_steps == 7
    # one real start: precursors would all begin alike; asked for, they stay
    assert preset("default", reference_model, "conv2d_3", (28, 28, 1),
                  start="image").precursors == 0
    assert preset("default", reference_model, "conv2d_3", (28, 28, 1), start="image",
                  precursors=3).precursors == 3
    assert preset("classic", reference_model, "conv2d_3", (28, 28, 1)).precursors == 0
    colour = preset("default", rgb_model, "d", (16, 16, 3))
    assert colour.penalties == (Colourfulness(COLOUR_PENALTY, PHOTO_COLOURFULNESS, False),)
    caffe = as_facts(rgb_model, "caffe")  # a BGR model's penalty reads its channels so
    assert preset("default", caffe, "d", (16, 16, 3)).penalties[0].bgr is True
    assert preset("default", rgb_model, "d", (16, 16, 3), colourfulness=0).penalties == ()
    assert preset("default", rgb_model, "d", (16, 16, 3),
                  colourfulness=2.0).penalties[0].weight == 2.0
    assert preset("classic", rgb_model, "d", (16, 16, 3),
                  colourfulness=1.0).penalties == (Colourfulness(1.0),)
    # --colour data: the target is the data images' own colourfulness
    images = np.random.default_rng(1).random((2, 16, 16, 3))
    images[1, :, :8, :2] = 0.0  # one image bluer on its left half
    data = preset("default", rgb_model, "d", (16, 16, 3), colour="data", data_pixels=images)
    np.testing.assert_allclose(data.penalties[0].target, quality.colourfulness(images).mean())
    assert data.penalties[0].target != pytest.approx(41.8, abs=5)  # not photos' default
    grey = np.repeat(np.random.default_rng(0).random((2, 16, 16, 1)), 3, axis=-1)
    with pytest.raises(CnnvizError, match="do not span three dimensions"):
        preset("default", rgb_model, "d", (16, 16, 3), colour="data", data_pixels=grey)
    with pytest.raises(CnnvizError, match="needs a colour model"):
        preset("default", reference_model, "conv2d_3", (28, 28, 1), colourfulness=1.0)
    # a centre unit's colour is priced in its receptive field, the part the gallery shows
    run = visualize_filters(rgb_model, "c", [0], preset("default", rgb_model, "c", (16, 16, 3),
                                                        steps=2))
    assert run.params["objective_kind"] == "neuron"
    assert tuple(run.params["penalties"][0]["window"]) == tuple(run.params["crop"]) == \
        (7, 10, 7, 10)
    again = Settings.from_params(run.params)
    assert again.penalties[0].window == (7, 10, 7, 10)


def test_the_maco_preset_is_the_default_with_a_fixed_spectrum(rgb_model, tmp_path):
    maco = preset("maco", rgb_model, "d", (16, 16, 3))
    default = preset("default", rgb_model, "d", (16, 16, 3))
    assert (maco.param, maco.lr, maco.decay) == ("maco", 0.1, 1.3)
    assert (maco.transforms, maco.settle, maco.colour) == \
        (default.transforms, default.settle, default.colour)
    assert preset("maco", rgb_model, "d", (16, 16, 3), decay=1.1).decay == 1.1
    # the command line keeps the preset's decay unless --decay is given
    from typer.testing import CliRunner

    from cnnviz.cli import app
    from cnnviz.results import FilterResult

    done = CliRunner().invoke(app, ["filters", "--preset", "maco", "--filters", "0-1",
                                    "--steps", "2", "--no-reference",
                                    "--out", str(tmp_path / "maco")])
    assert done.exit_code == 0, done.output
    params = FilterResult.load(tmp_path / "maco" / "filters.npz").params
    assert (params["param"], params["decay"], params["lr"]) == ("maco", 1.3, 0.1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "lucid"}, "unknown preset 'lucid'"),
    ({"colour": "sepia"}, "unknown colour basis 'sepia'"),
    ({"colour": "data"}, "--colour data needs images"),
    ({"colour": "imagenet", "param": "pixel"}, "a colour basis needs --param fourier"),
])
def test_preset_refusals(rgb_model, kwargs, message):
    name = kwargs.pop("name", "default")
    with pytest.raises(CnnvizError, match=message):
        preset(name, rgb_model, "d", (16, 16, 3), **kwargs)


def test_colour_basis_on_a_grey_model_is_refused(reference_model):
    with pytest.raises(CnnvizError, match="needs a colour model"):
        preset("default", reference_model, "conv2d_3", (28, 28, 1), colour="imagenet")


def test_auto_objective_is_the_centre_neuron_for_small_fields(reference_model):
    kinds = [objective_kind(reference_model, layer, (28, 28, 1))
             for layer in ("conv2d_1", "conv2d_2", "conv2d_3")]
    assert kinds == ["neuron", "neuron", "channel"]  # fields 3, 8 and 18 px of 28
    assert objective_kind(reference_model, "conv2d_1", (28, 28, 1), "layer") == "layer"
    with pytest.raises(CnnvizError, match="unknown objective 'mean'"):
        objective_kind(reference_model, "conv2d_1", (28, 28, 1), "mean")


def test_a_colour_model_starts_grey_unless_a_unit_gets_several_images(reference_model,
                                                                     rgb_model):
    # the default: flat grey for colour models (the seed then draws only the moves), noise for
    # grey ones and for MACO (a flat image has no phase); several images a unit start from noise
    assert preset("default", rgb_model, "d", (16, 16, 3)).start == "grey"
    assert preset("default", reference_model, "conv2d_3", (28, 28, 1)).start == "noise"
    assert preset("maco", rgb_model, "d", (16, 16, 3)).start == "noise"
    assert preset("default", rgb_model, "d", (16, 16, 3), diversity=3).start == "noise"
    assert preset("default", rgb_model, "d", (16, 16, 3), start="grey",
                  diversity=3).start == "grey"  # asked for: kept, and refused below
    settings = preset("default", rgb_model, "d", (16, 16, 3), steps=4)
    one = visualize_filters(rgb_model, "d", [0, 1], settings)
    other = visualize_filters(rgb_model, "d", [0, 1], replace(settings, seed=5))
    assert one.params["start"] == "grey"
    # from one flat start the precursors climb alike for every seed: only the moves differ
    noisy = [visualize_filters(rgb_model, "d", [0, 1], replace(settings, start="noise", seed=s))
             for s in (0, 5)]
    agree = np.corrcoef(one.images.ravel(), other.images.ravel())[0, 1]
    assert agree > 0.9 and agree > np.corrcoef(noisy[0].images.ravel(),
                                               noisy[1].images.ravel())[0, 1] + 0.2
    several = visualize_filters(rgb_model, "d", [0], replace(settings, steps=2, start="noise"),
                                diversity=2)
    assert several.params["start"] == "noise"
    assert visualize_filters(rgb_model, "d", [0], None, diversity=2).params["start"] == "noise"
    with pytest.raises(CnnvizError, match="a flat grey start gives every image of a unit the"):
        visualize_filters(rgb_model, "d", [0], settings, diversity=2)


def test_an_image_start_begins_at_that_image(rgb_model):
    from cnnviz.maps.activations import channel_means

    start = np.random.default_rng(4).random((16, 16, 3)).astype(np.float32)
    settings = Settings(steps=2, start="image", lr=1e-6)
    result = visualize_filters(rgb_model, "d", [0, 1], settings, objective="channel",
                               start_image=start)
    first = channel_means(rgb_model, "d", start[None], preactivation=True)[0]
    np.testing.assert_allclose(result.curves[:, 0], first[[0, 1]], rtol=1e-4)
    np.testing.assert_allclose(result.images, np.stack([start, start]), atol=1e-4)
    dream = visualize_filters(rgb_model, "d", None, Settings(steps=3, start="image"),
                              objective="layer", start_image=start)
    assert dream.filters.tolist() == [0] and dream.params["objective_kind"] == "layer"
    assert "one image for all maps" in dream.summary()
    with pytest.raises(CnnvizError, match="an image start needs one model-ready image"):
        visualize_filters(rgb_model, "d", [0], Settings(steps=1, start="image"))


def test_start_specs():
    assert start_input("noise") == ("noise", None)
    kind, spec = start_input("index:12")
    assert kind == "image" and spec.index == 12
    assert start_input("digit:3")[1].digit == 3
    assert str(start_input("image:a/b.png")[1].image) == "a/b.png"
    for bad in ("index:x", "image:", "photo:1", "grey:1"):
        with pytest.raises(CnnvizError, match="bad start"):
            start_input(bad)


def test_quality_measures_on_known_images():
    ones = np.ones((1, 4, 4, 1))
    half = np.full((1, 4, 4, 1), 0.5)
    assert quality.clipped_share(np.concatenate([ones, half]), (0.0, 1.0)).tolist() == [1.0, 0.0]
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(float)[None, :, :, None]
    slow = np.cos(2 * np.pi * np.arange(8) / 8)[None, :, None, None] * np.ones((1, 8, 8, 1))
    np.testing.assert_allclose(quality.high_frequency_share(np.concatenate([checker, slow])),
                               [1.0, 0.0], atol=1e-12)
    a = np.random.default_rng(5).random((3, 5, 5, 1))
    np.testing.assert_allclose(quality.seed_correlation(a, 2 * a + 1), 1.0)
    # colourfulness: grey is 0; half the pixels pure red, half pure green: rg is ±255 around
    # 0 (spread 255), yb is 127.5 everywhere (mean 127.5): 255 + 0.3 · 127.5
    grey = np.full((1, 2, 2, 3), 0.4)
    red_green = np.zeros((1, 2, 2, 3))
    red_green[0, 0, :, 0] = red_green[0, 1, :, 1] = 1.0
    np.testing.assert_allclose(quality.colourfulness(np.concatenate([grey, red_green])),
                               [0.0, 255 + 0.3 * 127.5])
    np.testing.assert_allclose(quality.seed_correlation(a, -a), -1.0)
    # two images that share only a colour cast: alike as wholes, unrelated once each channel's
    # mean is removed
    rng = np.random.default_rng(6)
    cast = np.array([0.2, 0.5, 0.9])
    first, second = (cast + 0.05 * rng.standard_normal((2, 16, 16, 3)) for _ in range(2))
    assert (quality.seed_correlation(first, second) > 0.9).all()
    assert (np.abs(quality.seed_correlation(first, second, per_channel=True)) < 0.2).all()
    np.testing.assert_allclose(quality.seed_correlation(first, first + cast, per_channel=True),
                               1.0)
    # a texture moved by (2, -3) px: unrelated pixel for pixel, the same within 3 px of shift
    moved = np.roll(first, (2, -3), axis=(1, 2)) + cast
    assert (np.abs(quality.seed_correlation(first, moved, per_channel=True)) < 0.2).all()
    np.testing.assert_allclose(quality.shifted_correlation(first, moved, 3), 1.0)
    assert (quality.shifted_correlation(first, moved, 2) < 0.3).all()
    # as a layer sees them: two seeds' images of filters 0 and 1 answered by maps (m0, m1, m2);
    # m2 answers every image alike (7) and map 1 on its own scale: after standardizing each
    # map over the four images, image 0 is (1, -1, 0) and image 1 (-1, 1, 0) for both seeds
    seen = np.array([[2.0, 0.0, 7.0], [0.0, 30.0, 7.0]])
    np.testing.assert_allclose(quality.seen_agreement(seen, seen), [1.0, 1.0])
    np.testing.assert_allclose(quality.seen_agreement(seen, seen, others=True), [-1.0, -1.0])
    np.testing.assert_allclose(quality.seen_agreement(seen, seen[::-1]), [-1.0, -1.0])
    values = np.array([[3.0, 0.0, 1.0], [1.0, 2.0, 5.0], [0.0, 1.0, 4.0]])
    # image 0 is filter 0's best, image 1 filter 1's; filter 2 prefers image 1 to its own
    assert quality.specificity(values, np.array([0, 1, 2])).tolist() == [True, True, False]


def test_robustness_of_a_flat_image_is_complete(k):
    model = k.Sequential([k.Input((10, 10, 1)), k.layers.Conv2D(1, 1, use_bias=False,
                                                                 name="id")])
    model.get_layer("id").set_weights([np.ones((1, 1, 1, 1), np.float32)])
    flat = np.full((1, 10, 10, 1), 0.7, np.float32)
    np.testing.assert_allclose(quality.robustness(model, "id", flat, np.array([0])), 1.0,
                               rtol=1e-5)
    dark = np.zeros((1, 10, 10, 1), np.float32)
    assert quality.robustness(model, "id", dark, np.array([0])).tolist() == [0.0]
