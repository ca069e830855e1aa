"""MACO's transparency: each image's evidence map — where its unit's score depends on the image —
measured exactly on models that look at part of the image, kept with the result, and drawn."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.objectives import channel
from cnnviz.oip.settings import Settings
from cnnviz.oip.transforms import Transforms
from cnnviz.oip.transparency import evidence
from cnnviz.render.views import filter_gallery_picture
from cnnviz.results import FilterResult


@pytest.fixture(scope="module")
def left_half(k):
    """8×8×1 → keep the left 4 columns → 2 filters 1×1: filter 0 the pixel, filter 1 twice
    it. Their map means depend on the left half only, each of its pixels alike."""
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Cropping2D(((0, 0), (0, 4))),
                          k.layers.Conv2D(2, 1, use_bias=False, name="conv")], name="left")
    model.get_layer("conv").set_weights([np.array([[[[1.0, 2.0]]]], np.float32)])
    return model


def test_the_evidence_lies_where_the_unit_looks(left_half):
    images = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    alpha = evidence(left_half, channel("conv"), images, np.array([0, 1, 0]))
    assert alpha.shape == (3, 8, 8) and alpha.dtype == np.float32
    # a shift of one pixel at most (the settings have none): columns 5–7 never reach the map
    assert (alpha[:, :, 5:] == 0).all()
    # each kept pixel counts 1/32 of the mean (2/32 for filter 1): alike after scaling inside
    # (at the image's edges a shift reflects a row or column, counted twice or not at all), less
    # near the cut, which some shifts move out of view
    inside = alpha[:, 1:7, 1:3].reshape(3, -1)
    assert inside.min() > 0.5 and np.ptp(inside, axis=1).max() < 0.05 and alpha.max() == 1.0
    assert (alpha[:, 1:7, 4] < 0.75 * inside.min(axis=1)[:, None]).all()
    assert (alpha[:, :, 4] > 0).all()


def test_an_image_keeps_its_evidence_in_any_company(left_half):
    images = np.random.default_rng(1).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    moves = Settings(transforms=Transforms(2, (0.9, 1.1), 10.0))
    together = evidence(left_half, channel("conv"), images, np.array([0, 1, 1, 0]), moves)
    alone = evidence(left_half, channel("conv"), images[2:3], np.array([1]), moves)
    # the third image is its filter's second: its draws are that copy's, wherever it stands
    second = evidence(left_half, channel("conv"), images[1:3], np.array([1, 1]), moves)
    np.testing.assert_allclose(second[1], together[2], rtol=1e-6)
    assert not np.allclose(alone[0], together[2])  # a first copy draws other moves


def test_a_run_keeps_and_draws_its_transparency(left_half, tmp_path):
    settings = Settings(steps=5, lr=0.05)
    plain = visualize_filters(left_half, "conv", [0, 1], settings)
    faded = visualize_filters(left_half, "conv", [0, 1], settings, transparency=True)
    assert plain.alpha is None and faded.alpha.shape == (2, 8, 8)
    np.testing.assert_array_equal(plain.images, faded.images)  # the images are the same
    assert (faded.alpha[:, :, 5:] == 0).all() and faded.params["transparency"] is True
    faded.save(tmp_path / "f.npz")
    again = FilterResult.load(tmp_path / "f.npz")
    np.testing.assert_array_equal(again.alpha, faded.alpha)
    shown = np.asarray(filter_gallery_picture(again).convert("L"), np.float64)
    assert not np.array_equal(shown, np.asarray(filter_gallery_picture(plain).convert("L")))
    merged = visualize_filters(left_half, "conv", [0], settings, transparency=True).merged(
        visualize_filters(left_half, "conv", [1], settings, transparency=True))
    np.testing.assert_allclose(merged.alpha, faded.alpha, rtol=1e-6)


def test_the_command_line_fades_its_gallery(tmp_path):
    out = tmp_path / "f"
    result = CliRunner().invoke(app, ["filters", "--layer", "conv2d_1", "--filters", "0-3",
                                      "--steps", "3", "--transparency", "--out", str(out),
                                      "--no-reference"])
    assert result.exit_code == 0, result.output
    saved = FilterResult.load(out / "filters.npz")
    assert saved.alpha.shape == (4, 28, 28) and 0.0 <= saved.alpha.min() < saved.alpha.max() <= 1
