"""A composable ascent: penalties and update rules are objects keyed by what they compute,
the compiled step is shared exactly when the keys are equal, and settings round-trip through
a result's params (custom pieces are refused by name, never rebuilt wrongly)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from cnnviz.core.backend import keras
from cnnviz.core.errors import CnnvizError
from cnnviz.core.tables import PENALTIES, UPDATES
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.pieces import L1, L2, RMS, Adam, Penalty, TotalVariation, Update
from cnnviz.oip.settings import Settings


@dataclass(frozen=True)
class Bright(Penalty):
    """Penalizes (weight > 0) or rewards (``sign`` −1) the mean brightness of the image."""

    sign: float = 1.0

    def __call__(self, image, mid, span):
        return self.sign * keras().ops.mean(image, axis=(1, 2, 3)) / span


@dataclass(frozen=True)
class Plain(Update):
    """Plain gradient ascent: the step is lr times the gradient."""

    def __call__(self, lr, grad, m, v, t):
        return lr * grad, m, v


def _images(model, settings):
    return visualize_filters(model, "conv", [0, 1], settings).images


def test_keys_are_class_and_parameters():
    assert TotalVariation(0.1).key == TotalVariation(0.1).key
    assert TotalVariation(0.1).key != TotalVariation(0.2).key != L1(0.1).key
    assert L1(0.1).key != L2(0.1).key  # same fields, other computation
    assert Bright(0.1, 1.0).key != Bright(0.1, -1.0).key
    assert Adam().key != Adam(beta1=0.5).key and RMS().key != Plain().key


def test_tables_name_the_shipped_pieces():
    assert [PENALTIES[n].load().name for n in PENALTIES.names()] == ["tv", "l1", "l2", "ink",
                                                                    "colourfulness"]
    assert [UPDATES[n].load()().name for n in UPDATES.names()] == ["rms", "adam"]
    assert Settings(tv=0.1, l2=0.2).all_penalties == (TotalVariation(0.1), L2(0.2))
    assert Settings(update="adam").updater == Adam()


def test_same_named_pieces_that_differ_give_their_own_images(tiny_model):
    base = Settings(steps=6, lr=0.05, seed=1)
    darker = _images(tiny_model, replace(base, penalties=(Bright(5.0, 1.0),)))
    brighter = _images(tiny_model, replace(base, penalties=(Bright(5.0, -1.0),)))
    assert darker.mean() < brighter.mean() - 0.05  # one step per key, not per class name
    plain = _images(tiny_model, replace(base, update=Plain()))
    assert not np.allclose(plain, _images(tiny_model, base))


def test_a_weight_and_its_object_are_one_step(tiny_model):
    base = Settings(steps=5, lr=0.05, seed=2)
    assert replace(base, tv=0.3).step_key() == \
        replace(base, penalties=(TotalVariation(0.3),)).step_key()
    np.testing.assert_array_equal(_images(tiny_model, replace(base, tv=0.3)),
                                  _images(tiny_model, replace(base,
                                                              penalties=(TotalVariation(0.3),))))
    assert replace(base, update="adam").step_key() == replace(base, update=Adam()).step_key()
    assert replace(base, steps=50, seed=9).step_key() == base.step_key()  # shared trace


def test_settings_round_trip_through_params():
    settings = Settings(update=Adam(beta1=0.5), penalties=(L1(0.2), TotalVariation(0.1)),
                        tv=0.05)
    again = Settings.from_params(settings.to_params())
    assert again == settings and again.step_key() == settings.step_key()
    custom = Settings(penalties=(Bright(1.0),)).to_params()
    with pytest.raises(CnnvizError, match="penalty .*Bright, which is not one of cnnviz's"):
        Settings.from_params(custom)


def test_bad_pieces_are_one_line():
    with pytest.raises(CnnvizError, match="penalty weights must be ≥ 0"):
        L2(-1.0)
    with pytest.raises(CnnvizError, match="must be a finite number"):
        TotalVariation(float("nan"))
    with pytest.raises(CnnvizError, match="penalties must be Penalty objects"):
        Settings(penalties=("tv",))
    with pytest.raises(CnnvizError, match="update must be one of rms, adam or an Update"):
        Settings(update=3)


def test_ink_is_the_distance_from_black(k):
    from cnnviz.oip.pieces import Ink

    images = np.zeros((2, 2, 2, 1), np.float32)
    images[1] = [[[255.0], [0.0]], [[0.0], [0.0]]]  # one white pixel of four, range 0..255
    np.testing.assert_allclose(np.asarray(Ink(1.0)(images, 127.5, 255.0)), [0.0, 0.25])


def test_a_grey_models_class_images_pay_for_ink(tiny_model, k):
    from cnnviz.oip.presets import CLASS_INK, preset

    assert preset("default", tiny_model, "out", (6, 6, 1)).ink == CLASS_INK
    assert preset("default", tiny_model, "conv", (6, 6, 1)).ink == 0.0  # maps: no ink
    assert preset("default", tiny_model, "out", (6, 6, 1), ink=0.0).ink == 0.0
    assert preset("classic", tiny_model, "out", (6, 6, 1)).ink == 0.0
    colour = k.Sequential([k.Input((6, 6, 3)), k.layers.Flatten(), k.layers.Dense(2)])
    assert preset("default", colour, colour.layers[-1].name, (6, 6, 3)).ink == 0.0


def test_colourfulness_is_hasler_and_suesstrunks(k):
    from cnnviz.oip import quality
    from cnnviz.oip.pieces import Colourfulness, colourfulness

    images = np.zeros((3, 2, 2, 3), np.float32)
    images[0] = 0.5  # grey: no colour
    images[1, :, 0] = (1.0, 0.0, 0.0)  # half red, half green
    images[1, :, 1] = (0.0, 1.0, 0.0)
    images[2] = np.random.default_rng(0).uniform(size=(2, 2, 3))
    found = np.asarray(colourfulness(images))
    # red-green opponent ±255 (spread 255), yellow-blue 127.5 everywhere (mean 127.5)
    np.testing.assert_allclose(found[:2], [0.0, 255.0 + 0.3 * 127.5], atol=0.01)
    np.testing.assert_allclose(found, quality.colourfulness(images), rtol=1e-4, atol=0.01)
    np.testing.assert_allclose(np.asarray(colourfulness(images[..., ::-1].copy(), bgr=True)),
                               found, rtol=1e-5, atol=0.01)
    # the penalty: the excess over the target as a share of it, none below it; caffe-like
    # inputs (0..255 around a per-channel mid) give the same as display values
    penalty = Colourfulness(1.0, target=found[1] / 2)
    np.testing.assert_allclose(np.asarray(penalty(images[:2], 0.0, 1.0)), [0.0, 1.0], atol=1e-4)
    mid = np.array([20.0, -5.0, 7.0], np.float32)
    np.testing.assert_allclose(np.asarray(penalty(255 * (images[:2] - 0.5) + mid, mid, 255.0)),
                               [0.0, 1.0], atol=1e-4)
    with pytest.raises(CnnvizError, match="target must be positive"):
        Colourfulness(1.0, target=0.0)
    # a window prices the colour there only: red and green outside it are free
    framed = np.full((1, 6, 6, 3), 0.5, np.float32)
    framed[0, :, :2] = (1.0, 0.0, 0.0)
    framed[0, :, 4:] = (0.0, 1.0, 0.0)
    assert np.asarray(Colourfulness(1.0, target=10.0)(framed, 0.0, 1.0))[0] > 1.0
    inside = Colourfulness(1.0, target=10.0, window=[1, 5, 2, 4])  # as JSON gives it back
    assert inside.window == (1, 5, 2, 4) and hash(inside.key)
    np.testing.assert_allclose(np.asarray(inside(framed, 0.0, 1.0)), [0.0], atol=1e-6)
    with pytest.raises(CnnvizError, match="window"):
        Colourfulness(1.0, window=(3, 1, 0, 2))


def test_the_colourfulness_penalty_mutes_a_colour_ascent(k):
    from cnnviz.oip.pieces import Colourfulness, colourfulness

    # one filter that answers red minus green: its images grow as colourful as they may
    weights = np.zeros((1, 1, 3, 1), np.float32)
    weights[0, 0, :, 0] = (1.0, -1.0, 0.0)
    model = k.Sequential([k.Input((8, 8, 3)), k.layers.Conv2D(1, 1, name="conv")])
    model.layers[-1].set_weights([weights, np.zeros(1, np.float32)])
    base = Settings(steps=40, param="fourier", lr=0.3, seed=0)
    free = visualize_filters(model, "conv", [0], base, objective="channel").images
    muted = visualize_filters(model, "conv", [0], replace(
        base, penalties=(Colourfulness(4.0, target=60.0),)), objective="channel").images
    loud, calm = (float(np.asarray(colourfulness(x))[0]) for x in (free, muted))
    assert loud > 85.0 and 50.0 < calm < 75.0, (loud, calm)  # held near its target, not at 0
