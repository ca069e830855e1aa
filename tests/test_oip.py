import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.transform import resize

from cnnviz.core.errors import CnnvizError
from cnnviz.oip import objectives as obj
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.optimize import ascend
from cnnviz.oip.param import (
    FourierParam,
    MacoParam,
    PixelParam,
    colour_basis,
    dct_matrix,
    make_param,
    start_images,
)
from cnnviz.oip.pieces import TotalVariation
from cnnviz.oip.settings import Settings, chunk_size
from cnnviz.oip.transforms import (
    Transforms,
    affine_params,
    apply_affine,
    blur,
    gaussian_kernel,
)
from cnnviz.results import FilterResult


@pytest.fixture(scope="module")
def oip_model(k):
    """8×8×1 in 0..1 → conv "c1" (3 filters 3×3, relu) → conv "c2" (4 filters, relu) → dense
    "logits" (2, softmax). Filter 2 of c1 is dead: zero weights, bias −5."""
    rng = np.random.default_rng(7)
    model = k.Sequential([
        k.Input((8, 8, 1)),
        k.layers.Conv2D(3, 3, activation="relu", name="c1"),
        k.layers.Conv2D(4, 3, activation="relu", name="c2"),
        k.layers.Flatten(name="flat"),
        k.layers.Dense(2, activation="softmax", name="logits"),
    ], name="oip_tiny")
    kernel = rng.normal(size=(3, 3, 1, 3))
    kernel[..., 0] = np.abs(kernel[..., 0])  # both live filters respond to mid-grey
    kernel[..., 1] += 0.4
    kernel[..., 2] = 0.0
    model.get_layer("c1").set_weights([kernel.astype(np.float32),
                                       np.array([0.0, -0.2, -5.0], np.float32)])
    model.get_layer("c2").set_weights([rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
                                       np.zeros(4, np.float32)])
    model.get_layer("logits").set_weights([rng.normal(size=(64, 2)).astype(np.float32) * 0.1,
                                           np.zeros(2, np.float32)])
    return model


# --- objectives -------------------------------------------------------------------------------

def test_objective_values_and_operators(k):
    ops = k.ops
    maps = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 2)
    acts = {"a": ops.convert_to_tensor(maps), "d": ops.convert_to_tensor(
        np.array([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]], np.float32))}
    channels = ops.convert_to_tensor(np.array([1, 0], np.int32))

    def value(o):
        return np.asarray(o(acts, channels))

    np.testing.assert_allclose(value(obj.channel("a")), [maps[0, ..., 1].mean(),
                                                         maps[1, ..., 0].mean()])
    np.testing.assert_allclose(value(obj.channel("a", 0)), maps[..., 0].mean(axis=(1, 2)))
    np.testing.assert_allclose(value(obj.neuron("a")), [maps[0, 1, 1, 1], maps[1, 1, 1, 0]])
    np.testing.assert_allclose(value(obj.neuron("a", y=0, x=2)), [maps[0, 0, 2, 1],
                                                                 maps[1, 0, 2, 0]])
    np.testing.assert_allclose(value(obj.layer("a")), (maps**2).mean(axis=(1, 2, 3)),
                               rtol=1e-6)
    np.testing.assert_allclose(value(obj.class_logit("d", 2)), [2.0, 4.0])
    np.testing.assert_allclose(value(obj.class_logit("d")), [5.0, 3.0])
    combined = obj.channel("a") + 2 * obj.neuron("a") - 1.5
    np.testing.assert_allclose(value(combined),
                               value(obj.channel("a")) + 2 * value(obj.neuron("a")) - 1.5)
    assert combined.layers == ("a",)
    assert value(-obj.class_logit("d")).tolist() == [-5.0, -3.0]
    assert (obj.channel("a") - obj.class_logit("d")).layers == ("a", "d")
    # Two images with proportional maps have identical Gram directions: similarity 1.
    np.testing.assert_allclose(value(obj.diversity("a")), [-1.0, -1.0], atol=0.05)


@pytest.mark.parametrize("objective", [
    obj.channel("c2"), obj.neuron("c2"), obj.layer("c2"), obj.class_logit("logits"),
    obj.channel("c2") + 0.1 * obj.diversity("c1")])
def test_each_objective_increases(oip_model, objective):
    run = ascend(oip_model, objective, np.array([0, 1]), Settings(steps=8, lr=0.05))
    curves = run.curves
    assert curves.shape == (2, 8)
    assert (curves[:, -1] > curves[:, 0]).all()
    assert run.images.min() >= 0.0 and run.images.max() <= 1.0


# --- parameterizations and starts --------------------------------------------------------------

def test_dct_is_orthonormal():
    d = dct_matrix(7)
    np.testing.assert_allclose(d @ d.T, np.eye(7), atol=1e-12)
    signal = np.cos(np.pi * (2 * np.arange(7) + 1) * 2 / 14)  # frequency 2 alone
    coeffs = d @ signal
    assert np.argmax(np.abs(coeffs)) == 2 and np.abs(np.delete(coeffs, 2)).max() < 1e-12


def test_fourier_parameterization_round_trips_and_stays_in_range():
    starts = start_images([(0, 0), (1, 0)], (6, 5, 1), (0.0, 255.0))
    param = FourierParam((0.0, 255.0), (6, 5, 1), decay=1.0)
    image = np.asarray(param.to_image(param.init(starts)))
    np.testing.assert_allclose(image, np.clip(starts, 0.255, 254.745), atol=1e-2)
    wild = np.random.default_rng(0).normal(scale=100.0, size=(2, 6, 5, 1)).astype(np.float32)
    out = np.asarray(param.to_image(wild))
    assert out.min() >= 0.0 and out.max() <= 255.0
    pixel = make_param("pixel", (0.0, 1.0), (6, 5, 1))
    assert isinstance(pixel, PixelParam)
    np.testing.assert_array_equal(np.asarray(pixel.project(np.array([-1.0, 0.5, 2.0]))),
                                  [0.0, 0.5, 1.0])
    with pytest.raises(CnnvizError, match="unknown parameterization 'cppn'"):
        make_param("cppn", (0.0, 1.0), (6, 5, 1))


def test_maco_moves_the_phase_and_keeps_a_natural_spectrum():
    """A start's phase in, the fixed 1/f^decay magnitude out: the image's decorrelated logits
    have exactly that spectrum (up to one scale per image), whatever the start."""
    basis = tuple(colour_basis().reshape(-1).tolist())
    param = make_param("maco", (0.0, 1.0), (12, 10, 3), decay=1.3, colour=basis)
    assert isinstance(param, MacoParam)
    starts = np.random.default_rng(4).random((2, 12, 10, 3)).astype(np.float32)
    raw = param.init(starts)
    assert raw.shape == (2, 3, 12, 10) and np.abs(raw).max() <= np.pi + 1e-6
    image = np.asarray(param.to_image(raw), np.float64)
    assert image.min() > 0.0 and image.max() < 1.0
    logits = np.log(image / (1 - image))
    unmixed = np.einsum("khwd,cd->khwc", logits, np.linalg.inv(colour_basis()))
    spectrum = np.abs(np.fft.fft2(np.moveaxis(unmixed, -1, 1)))
    freq = np.sqrt(np.fft.fftfreq(12)[:, None] ** 2 + np.fft.fftfreq(10)[None] ** 2)
    expected = np.where(freq > 0, np.maximum(freq, 1 / 12), np.inf) ** -1.3
    ratio = spectrum[:, :, freq > 0] / expected[freq > 0]
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1, :1], ratio.shape), rtol=2e-3)
    np.testing.assert_allclose(spectrum[:, :, 0, 0], 0.0, atol=1e-3)  # no mean term
    np.testing.assert_allclose(unmixed.std(axis=(1, 2, 3)), 1.0, rtol=1e-3)  # standardized
    # the phase is the start's: a start shifted by a pixel shifts the image by a pixel
    shifted = np.asarray(param.to_image(param.init(np.roll(starts, 1, axis=2))))
    np.testing.assert_allclose(shifted, np.roll(image, 1, axis=2), atol=1e-4)


def test_a_maco_ascent_raises_its_filters(oip_model):
    run = ascend(oip_model, obj.channel("c2"), np.array([0, 1]),
                 Settings(steps=10, param="maco", lr=0.1, decay=1.3))
    assert (run.curves[:, -1] > run.curves[:, 0]).all()
    assert run.images.min() >= 0.0 and run.images.max() <= 1.0


def test_start_images_are_long_range_noise_from_scikit_image_resize():
    shape, wavelengths = (20, 16, 1), (10.0, 4.0)
    got = start_images([(3, 1)], shape, (0.0, 1.0), seed=9, wavelengths=wavelengths,
                       amplitude=0.1, noise=0.01)[0]
    rng = np.random.default_rng([9, 3, 1])
    field = np.zeros(shape)
    for wl in wavelengths:
        coarse = rng.standard_normal((int(np.ceil(20 / wl)) + 1, int(np.ceil(16 / wl)) + 1, 1))
        field += resize(coarse, shape, order=3, mode="reflect", anti_aliasing=False, clip=False)
    field /= np.sqrt(len(wavelengths))
    expected = np.clip(0.5 + 0.1 * field + 0.01 * rng.standard_normal(shape), 0, 1)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # An image does not depend on the others in the batch; grey is flat mid-grey.
    both = start_images([(0, 0), (3, 1)], shape, (0.0, 1.0), seed=9, wavelengths=wavelengths,
                        amplitude=0.1, noise=0.01)
    np.testing.assert_array_equal(both[1], got)
    np.testing.assert_array_equal(start_images([(0, 0)], shape, (0, 2), kind="grey"), 1.0)


# --- transforms -------------------------------------------------------------------------------

def _scipy_affine(image: np.ndarray, params: np.ndarray, mode: str) -> np.ndarray:
    a0, a1, a2, b0, b1, b2 = params[:6]
    matrix = np.array([[b1, b0], [a1, a0]])  # scipy works in (row, col)
    return ndi.affine_transform(image, matrix, offset=(b2, a2), order=1, mode=mode, cval=0.0)


def test_affine_transforms_match_numpy_references():
    image = np.random.default_rng(0).random((1, 7, 9, 1)).astype(np.float32)
    shifted = np.asarray(apply_affine(image, affine_params((7, 9), shift=(1, 2))[None],
                                      "constant"))[0, ..., 0]
    expected = np.zeros((7, 9))
    expected[1:, 2:] = image[0, :-1, :-2, 0]
    np.testing.assert_allclose(shifted, expected, atol=1e-6)
    square = np.zeros((1, 5, 5, 1), np.float32)
    square[0, 0, 2, 0] = 1.0  # top middle
    turned = np.asarray(apply_affine(square, affine_params((5, 5), angle=90)[None], "constant"))
    np.testing.assert_allclose(turned[0, ..., 0], np.rot90(square[0, ..., 0]), atol=1e-6)
    params = affine_params((7, 9), shift=(0.5, -1.0), scale=1.3, angle=20)
    for mode, scipy_mode in [("constant", "grid-constant"), ("reflect", "reflect"),
                             ("nearest", "nearest")]:
        got = np.asarray(apply_affine(image, params[None], mode))[0, ..., 0]
        np.testing.assert_allclose(got, _scipy_affine(image[0, ..., 0], params, scipy_mode),
                                   atol=1e-5, err_msg=mode)


def test_transform_sampling_and_validation():
    plan = Transforms(jitter=2, scale=(0.9, 1.1), rotate=10).sample(
        np.random.default_rng(0), 50, (8, 8))
    assert plan.shape == (50, 8) and np.abs(plan[:, :2]).max() < 1.25
    assert not Transforms().active and Transforms(jitter=1).active
    with pytest.raises(CnnvizError, match="unknown pad 'zero'"):
        Transforms(pad="zero")
    with pytest.raises(CnnvizError, match="≥ 0"):
        Transforms(jitter=-1)


def test_blur_and_total_variation_match_numpy():
    image = np.random.default_rng(1).random((2, 9, 8, 1)).astype(np.float32)
    k1 = gaussian_kernel(1.0)
    radius = len(k1) // 2
    padded = np.pad(image[..., 0], [(0, 0), (radius, radius), (radius, radius)], mode="reflect")
    expected = np.stack([ndi.correlate(p, np.outer(k1, k1), mode="constant")[
        radius:-radius, radius:-radius] for p in padded])
    np.testing.assert_allclose(np.asarray(blur(image, 1.0))[..., 0], expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(blur(np.ones((1, 6, 6, 1), np.float32), 0.7)), 1.0,
                               rtol=1e-6)
    tv = np.abs(np.diff(image, axis=1)).mean(axis=(1, 2, 3)) + \
        np.abs(np.diff(image, axis=2)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(np.asarray(TotalVariation(1.0)(image, 0.0, 1.0)), tv, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(TotalVariation(1.0)(image * 4 + 2, 2.0, 4.0)), tv,
                               rtol=1e-5)  # centred and scaled by the input's range


# --- the engine -------------------------------------------------------------------------------

@pytest.mark.parametrize("settings", [
    Settings(steps=6),
    Settings(steps=6, update="adam", lr=0.02, param="fourier",
             transforms=Transforms(jitter=1, rotate=5, scale=(0.95, 1.05)), tv=0.1),
    Settings(steps=4, precursors=3, precursor_steps=3, blur_every=2, l2=0.1)])
def test_batched_equals_one_at_a_time(oip_model, settings):
    together = visualize_filters(oip_model, "c2", [0, 1, 2, 3], settings)
    for i, f in enumerate([0, 1, 2, 3]):
        alone = visualize_filters(oip_model, "c2", [f], settings, batch=1)
        np.testing.assert_allclose(alone.images[0], together.images[i], atol=2e-5)
        np.testing.assert_allclose(alone.curves[0], together.curves[i], rtol=1e-4, atol=1e-5)


def test_settling_steps_skip_the_moves_exactly(oip_model):
    # an ascent whose steps all settle (0.95 of 6 steps rounds to 6) draws the same images as
    # one without moves, to the last bit; with half of them moving the images differ
    moves = Transforms(jitter=2, rotate=10, scale=(0.9, 1.1))
    base = Settings(steps=6, param="fourier", lr=0.5)
    still = visualize_filters(oip_model, "c2", [0, 1], replace(base, transforms=moves,
                                                               settle=0.95))
    plain = visualize_filters(oip_model, "c2", [0, 1], base)
    half = visualize_filters(oip_model, "c2", [0, 1], replace(base, transforms=moves,
                                                              settle=0.5))
    np.testing.assert_array_equal(still.images, plain.images)
    assert np.abs(half.images - plain.images).max() > 1e-3


def test_precursors_climb_without_the_moves(oip_model):
    # the precursors' short runs are untransformed: with every main step settling too (0.95
    # of 4 steps rounds to 4) the moves change nothing; with the main steps moving they do
    moves = Transforms(jitter=2, rotate=10, scale=(0.9, 1.1))
    base = Settings(steps=4, param="fourier", lr=0.5, precursors=3, precursor_steps=3)
    plain = visualize_filters(oip_model, "c2", [0, 1, 2], base)
    still = visualize_filters(oip_model, "c2", [0, 1, 2], replace(base, transforms=moves,
                                                                  settle=0.95))
    moving = visualize_filters(oip_model, "c2", [0, 1, 2], replace(base, transforms=moves))
    np.testing.assert_array_equal(still.images, plain.images)
    assert np.abs(moving.images - plain.images).max() > 1e-3


def test_runs_that_differ_only_in_steps_seed_or_start_share_one_compiled_step(oip_model,
                                                                              monkeypatch):
    import importlib

    from cnnviz.core.backend import ModelCache

    optimize = importlib.import_module("cnnviz.oip.optimize")
    built = []
    real = optimize._Stepper
    monkeypatch.setattr(optimize, "_STEPPERS", ModelCache())
    monkeypatch.setattr(optimize, "_Stepper", lambda *a: built.append(a[2]) or real(*a))
    first = visualize_filters(oip_model, "c2", [0, 1], Settings(steps=3, seed=0))
    other = Settings(steps=5, seed=1, start="grey", precursors=2, precursor_steps=2)
    shared = visualize_filters(oip_model, "c2", [0, 1], other)
    assert len(built) == 1 and first.images.shape == shared.images.shape
    visualize_filters(oip_model, "c2", [0, 1], Settings(steps=3, lr=0.01))  # another step
    assert len(built) == 2
    monkeypatch.setattr(optimize, "_STEPPERS", ModelCache())  # the same run, traced anew
    np.testing.assert_array_equal(visualize_filters(oip_model, "c2", [0, 1], other).images,
                                  shared.images)


def test_filter_result_values_dead_filters_and_round_trip(tmp_path, oip_model):
    reference = np.random.default_rng(3).random((20, 8, 8, 1)).astype(np.float32)
    result = visualize_filters(oip_model, "c1", None, Settings(steps=15), objective="channel",
                               reference_images=reference)
    assert result.filters.tolist() == [0, 1, 2]
    assert result.dead.tolist() == [False, False, True]
    assert "dead" in result.notes[2]
    assert result.params["chunk"] == 3 and result.params["preactivation"] is True
    # The optimized score is the pre-activation mean of the filter's map for its image ...
    from cnnviz.maps.activations import channel_means

    means = channel_means(oip_model, "c1", result.images, preactivation=True)
    np.testing.assert_allclose(result.activation, means[np.arange(3), [0, 1, 2]], rtol=1e-5)
    np.testing.assert_allclose(result.activation[2], -5.0, rtol=1e-6)
    # ... but the comparison with real images is made on what the filter outputs: after ReLU.
    after = channel_means(oip_model, "c1", result.images)
    np.testing.assert_allclose(result.output, after[np.arange(3), [0, 1, 2]], rtol=1e-5)
    best = channel_means(oip_model, "c1", reference).max(axis=0)
    np.testing.assert_allclose(result.best_real, best, rtol=1e-6)
    assert result.beats_real[:2].all()
    summary = result.summary()
    assert "1 dead filter(s)" in summary and "2 of 2 live filters (100%) beat" in summary
    result.save(tmp_path / "r.npz")
    back = FilterResult.load(tmp_path / "r.npz")
    for name in ("filters", "images", "activation", "post_max", "curves", "best_real",
                 "post_value"):
        np.testing.assert_array_equal(getattr(back, name), getattr(result, name))
    assert back.notes == result.notes and back.params == json.loads(json.dumps(result.params))


def test_neuron_objective_compares_the_centre_unit_with_the_strongest_real_unit(oip_model):
    reference = np.random.default_rng(4).random((20, 8, 8, 1)).astype(np.float32)
    result = visualize_filters(oip_model, "c1", [0, 1], Settings(steps=15),
                               reference_images=reference)
    assert result.params["objective_kind"] == "neuron"  # a 3×3 field on an 8×8 input: auto
    from cnnviz.maps.activations import activations

    maps = activations(oip_model, result.images, ["c1"]).maps["c1"]  # after the ReLU, (2,6,6,3)
    np.testing.assert_allclose(result.output, maps[[0, 1], 3, 3, [0, 1]], rtol=1e-5)
    real = activations(oip_model, reference, ["c1"]).maps["c1"].max(axis=(0, 1, 2))
    np.testing.assert_allclose(result.best_real, real[:2], rtol=1e-6)
    # The gallery shows the centre unit (3, 3)'s 3×3 field, rows and columns 3..5, enlarged.
    assert result.params["crop"] == [3, 6, 3, 6]
    shown = result.patterns()
    assert shown.shape == result.images.shape
    np.testing.assert_array_equal(shown[:, ::3, ::3][:, :3, :3], result.images[:, 3:6, 3:6])


def test_post_activation_objective_leaves_flat_filters_unmoved(oip_model):
    grey = Settings(steps=5, start="grey", preactivation=False)
    result = visualize_filters(oip_model, "c1", [2], grey)
    np.testing.assert_array_equal(result.images, 0.5)  # zero gradient: never moves
    assert result.params["preactivation"] is False and result.dead.all()


def test_nan_stops_only_that_filter(k, oip_model):
    ops = k.ops
    base = obj.channel("c2")
    # Image 1's score is infinite, so its step turns NaN; image 0 is scored normally.
    blow_up = obj.Objective(
        lambda a, c: base(a, c) * ops.take(ops.convert_to_tensor([1.0, np.inf]),
                                           ops.cast(c > 1, "int32")), ("c2",), "blow-up")
    result = visualize_filters(oip_model, "c2", [0, 2], Settings(steps=4), objective=blow_up)
    assert "NaN" in result.notes[2] and "NaN" not in result.notes.get(0, "")
    assert result.curves[0, -1] > result.curves[0, 0]
    assert np.isfinite(result.images).all()  # the last finite image is kept


def test_model_with_nan_weights_is_refused(k):
    model = k.Sequential([k.Input((5, 5, 1)), k.layers.Conv2D(2, 3, name="c")])
    kernel = np.ones((3, 3, 1, 2), np.float32)
    kernel[1, 1, 0, 1] = np.nan
    model.get_layer("c").set_weights([kernel, np.zeros(2, np.float32)])
    with pytest.raises(CnnvizError, match="weights of layer 'c' contain NaN or Inf"):
        visualize_filters(model, "c", None, Settings(steps=4))


def test_interrupt_keeps_finished_chunks(oip_model):
    calls = []

    def progress(done, total):
        calls.append(done)
        if done == 3:  # the first chunk of 2 filters took steps 1..2, the second starts
            raise KeyboardInterrupt

    result = visualize_filters(oip_model, "c2", None, Settings(steps=2), batch=2,
                               on_progress=progress)
    assert result.interrupted and result.filters.tolist() == [0, 1]
    assert result.images.shape == (2, 8, 8, 1)
    assert result.pending.filters.tolist() == [2, 3] and result.pending.step == 1


def test_chunking_follows_the_budget(oip_model):
    assert chunk_size(oip_model, "c2", 100, batch=7) == 7
    assert chunk_size(oip_model, "c2", 3) == 3
    small = chunk_size(oip_model, "c2", 100, budget=4 * 3 * (64 + 108 + 64) * 10)
    assert small == 10
    with pytest.raises(CnnvizError, match="batch must be positive"):
        chunk_size(oip_model, "c2", 10, batch=0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layer": "logits", "filters": [2]},
     r"filter 2 is out of range: layer 'logits' has 2 filters \(0..1\)"),
    ({"filters": [4]}, r"filter 4 is out of range: layer 'c2' has 4 filters \(0..3\)"),
    ({"filters": [-1]}, "filter -1 is out of range"),
    ({"filters": []}, "no filters chosen"),
])
def test_engine_bad_input(oip_model, kwargs, message):
    args = {"layer": "c2", "filters": None, **kwargs}
    with pytest.raises(CnnvizError, match=message):
        visualize_filters(oip_model, args["layer"], args["filters"], Settings(steps=1))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": 0}, "steps must be positive"), ({"update": "sgd"}, "unknown method 'sgd'"),
    ({"lr": 0}, "learning rate must be positive"), ({"precursors": -1}, "precursors"),
    ({"tv": -1}, "must be ≥ 0")])
def test_settings_validation(kwargs, message):
    with pytest.raises(CnnvizError, match=message):
        Settings(**kwargs)


JAX_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    from cnnviz.oip.filters import visualize_filters
    from cnnviz.oip.settings import Settings
    model = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Conv2D(3, 3, activation="relu", name="c")])
    rng = np.random.default_rng(0)
    model.get_layer("c").set_weights([rng.normal(size=(3, 3, 1, 3)).astype("float32"),
                                      np.zeros(3, "float32")])
    r = visualize_filters(model, "c", None, Settings(steps=5, update=sys.argv[1]))
    print(json.dumps({"backend": keras.backend.backend(), "images": r.images.tolist()}))
""")


@pytest.mark.slow
@pytest.mark.parametrize("update", ["rms", "adam"])
def test_jax_backend_matches_tensorflow(update):
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")  # (the JAX-only virtualenv of CI has none)
    runs = {}
    for backend in ("tensorflow", "jax"):
        out = subprocess.run([sys.executable, "-c", JAX_SCRIPT, update], capture_output=True,
                             text=True, env={**os.environ, "KERAS_BACKEND": backend},
                             check=True).stdout
        runs[backend] = json.loads(out.strip().splitlines()[-1])
    assert runs["jax"]["backend"] == "jax"
    np.testing.assert_allclose(runs["jax"]["images"], runs["tensorflow"]["images"], atol=1e-4)


def test_same_seed_same_images_other_seed_other_images(tmp_path, oip_model):
    settings = Settings(steps=4, transforms=Transforms(jitter=1))
    first = visualize_filters(oip_model, "c2", [1, 3], settings)
    second = visualize_filters(oip_model, "c2", [1, 3], settings)
    np.testing.assert_array_equal(first.images, second.images)
    first.save(tmp_path / "a.npz")
    second.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    other = visualize_filters(oip_model, "c2", [1, 3], Settings(steps=4, seed=1,
                                                                 transforms=Transforms(jitter=1)))
    assert not np.allclose(other.images, first.images)


def test_one_channel_convolutions_get_the_same_gradient_cheaper():
    """The ascent's cheaper input gradient for one-channel convolutions (valid and same
    padding, with bias and activation) equals Keras's own, and leaves other layers alone."""
    from cnnviz.core.backend import backend_name, keras
    from cnnviz.oip.fastgrad import ascent_forward, grey_conv_layer

    k = keras()
    if backend_name() != "tensorflow":
        pytest.skip("the cheaper gradient is TensorFlow's")
    import tensorflow as tf

    inputs = k.Input((9, 8, 1))
    same = k.layers.Conv2D(4, 3, padding="same", activation="relu", name="same")(inputs)
    valid = k.layers.Conv2D(3, (2, 3), name="valid", use_bias=False)(inputs)
    pooled = k.layers.MaxPooling2D()(same)
    deeper = k.layers.Conv2D(5, 3, activation="tanh", name="deeper")(pooled)
    model = k.Model(inputs, [valid, deeper])
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.standard_normal(w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    assert [grey_conv_layer(model.get_layer(n)) for n in ("same", "valid", "deeper")] == \
        [True, True, False]
    forward = ascent_forward(model)
    assert forward is not model
    x = tf.constant(rng.standard_normal((2, 9, 8, 1)).astype(np.float32))

    @tf.function(autograph=False)
    def values_and_gradient(x, run_through):
        with tf.GradientTape() as tape:
            tape.watch(x)
            a, b = (forward if run_through else model)(x)
            score = tf.reduce_sum(a * a) + tf.reduce_sum(tf.sin(b))
        return a, b, tape.gradient(score, x)

    cheap, keras_own = values_and_gradient(x, True), values_and_gradient(x, False)

    def backprops(run_through):
        graph = values_and_gradient.get_concrete_function(x, run_through).graph
        return sum(op.type == "Conv2DBackpropInput" for op in graph.get_operations())

    assert (backprops(True), backprops(False)) == (1, 3)  # only "deeper" keeps TensorFlow's
    for ours, theirs in zip(cheap, keras_own, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
    rgb = k.Sequential([k.Input((6, 6, 3)), k.layers.Conv2D(2, 3)])
    assert ascent_forward(rgb) is rgb  # nothing to swap


def test_same_named_objectives_that_differ_get_their_own_steps(k, oip_model):
    """The compiled step is keyed by what an objective computes, never by its display name."""
    ops = k.ops
    up = obj.Objective(lambda a, c: ops.mean(a["c2"][..., 0], axis=(1, 2)), ("c2",), "mine")
    down = obj.Objective(lambda a, c: -ops.mean(a["c2"][..., 0], axis=(1, 2)), ("c2",), "mine")
    raised = visualize_filters(oip_model, "c2", [0], Settings(steps=6), objective=up)
    lowered = visualize_filters(oip_model, "c2", [0], Settings(steps=6), objective=down)
    # the same start scored with opposite signs; each ascent raises its own score
    np.testing.assert_allclose(lowered.curves[0, 0], -raised.curves[0, 0], rtol=1e-6)
    assert raised.curves[0, -1] > raised.curves[0, 0] and lowered.curves[0, -1] > \
        lowered.curves[0, 0]
    assert not np.allclose(raised.images, lowered.images)
    # cnnviz's own objectives are keyed by their parameters: built twice, one step
    assert obj.channel("c2").key == obj.channel("c2").key != obj.channel("c2", 1).key
    assert (obj.channel("c2") - 0.5 * obj.layer("c2")).key \
        == (obj.channel("c2") - 0.5 * obj.layer("c2")).key
    assert (-obj.channel("c2")).key != obj.channel("c2").key
    assert up.key != down.key


def test_the_reference_pass_fits_its_batches_to_the_budget():
    """A real image costs its conversion to the model's input too: 28×28 digits for a 2048²
    model go two at a time within 512 MiB (they went ten at a time, 4.3 GB, 274 s)."""
    from cnnviz.oip import real as oip_real

    per_image = int(143.8 * 2**20)  # one 2048×2048×1 image's activations in a step
    assert oip_real.reference_batch(per_image, (2048, 2048, 1), 512 * 2**20) == 2
    assert oip_real.reference_batch(per_image, (2048, 2048, 1), 2**20) == 1
    assert oip_real.reference_batch(400_000, (28, 28, 1), 512 * 2**20) == 256

