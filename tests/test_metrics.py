"""Deletion, insertion and randomization checks, on hand-made maps and models."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from cnnviz.attribution import ChannelTarget, metrics


def test_perturbation_frames_delete_and_insert_in_order():
    image = np.arange(1, 5, dtype=np.float32).reshape(2, 2, 1)
    order = np.array([3, 0, 2, 1])
    frames = metrics.perturbation_frames(image, order, np.zeros(1), steps=4)
    assert frames.shape == (5, 2, 2, 1)
    np.testing.assert_array_equal(frames[0], image)
    np.testing.assert_array_equal(frames[1, ..., 0], [[1, 2], [3, 0]])  # pixel 3 first
    np.testing.assert_array_equal(frames[2, ..., 0], [[0, 2], [3, 0]])
    np.testing.assert_array_equal(frames[4], 0)
    inserted = metrics.perturbation_frames(image, order, np.zeros(1), insert=True, steps=2)
    np.testing.assert_array_equal(inserted[1, ..., 0], [[1, 0], [0, 4]])


def test_ranking_ink_area_and_spearman():
    image = np.array([[[0.0], [5.0]], [[0.0], [7.0]]])
    ink = metrics.changeable(image, 0.0)
    assert ink.tolist() == [1, 3]
    shown = np.array([[9.0, 1.0], [9.0, 2.0]])  # the highest values lie off the ink
    assert metrics.ranked(shown, ink).tolist() == [3, 1]
    assert metrics.area(np.array([1.0, 0.0])) == 0.5
    assert metrics.area(np.array([1.0, 1.0, 0.0])) == 0.75
    rng = np.random.default_rng(0)
    a, b = rng.random(30), rng.random(30)
    assert metrics.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert metrics.spearman(a, np.ones(30)) == 0.0


def test_randomized_redraws_kernels_and_keeps_the_original(k, tiny_model):
    before = [w.copy() for w in tiny_model.get_weights()]
    shuffled = metrics.randomized(tiny_model, seed=3)
    for w, original in zip(tiny_model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, original)
    changed = [layer for layer in shuffled.layers if getattr(layer, "kernel", None) is not None]
    assert changed
    for layer in changed:
        kernel = np.asarray(layer.kernel)
        assert not np.allclose(kernel, np.asarray(tiny_model.get_layer(layer.name).kernel))
        if layer.bias is not None:
            assert not np.asarray(layer.bias).any()
    again = metrics.randomized(tiny_model, seed=3)
    for w1, w2 in zip(shuffled.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(w1, w2)


def test_perturbation_curve_follows_a_linear_score(k):
    """A linear model scores the sum of its pixels: deleting pixels in order removes them."""
    model = k.Sequential([k.Input((2, 2, 1)), k.layers.Flatten(),
                          k.layers.Dense(1, use_bias=False, name="sum")])
    model.get_layer("sum").set_weights([np.ones((4, 1), np.float32)])
    image = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(2, 2, 1)
    curve = metrics.perturbation_curve(model, image, np.array([3, 2, 1, 0]),
                                       ChannelTarget(np.array([0])), steps=4)
    np.testing.assert_allclose(curve, [10, 6, 3, 1, 0], rtol=1e-6)


def test_cascade_stages_go_from_the_top_down(k, tiny_model):
    names = metrics.weighted_layers(tiny_model)
    stages = metrics.cascade_stages(tiny_model)
    assert stages[0] == names[-1:] and stages[-1] == names[::-1]
    assert all(len(a) < len(b) for a, b in zip(stages, stages[1:], strict=False))
    two = metrics.cascade_stages(tiny_model, stages=2)
    assert two == [names[-1:], names[::-1]]
    top = metrics.randomized(tiny_model, seed=3, layers=names[-1:])
    for layer in top.layers:
        if getattr(layer, "kernel", None) is None:
            continue
        same = np.array_equal(np.asarray(layer.kernel),
                              np.asarray(tiny_model.get_layer(layer.name).kernel))
        assert same == (layer.name != names[-1])
    # each layer draws from its own stream: the top layer is the same in every stage
    everything = metrics.randomized(tiny_model, seed=3)
    np.testing.assert_array_equal(np.asarray(top.get_layer(names[-1]).kernel),
                                  np.asarray(everything.get_layer(names[-1]).kernel))


def test_scores_flag_what_fails():
    good = metrics.Scores(np.array([0.1]), np.array([0.9]), np.array([0.5]), np.array([0.5]),
                          np.array([0.1]), (("top", np.array([0.2])), ("all", np.array([0.1]))))
    assert good.flags() == [] and good.curve() == [("top", 0.2), ("all", 0.1)]
    bad = metrics.Scores(np.array([0.6]), np.array([0.4]), np.array([0.5]), np.array([0.5]),
                         np.array([0.9]), (("dense", np.array([0.8])),))
    assert bad.flags() == [
        "deleting its top pixels lowers the score no faster than random order",
        "inserting its top pixels raises the score no faster than random order",
        "barely changes when every weight is re-drawn (ρ 0.90)",
        "keeps ρ 0.80 when the top layer (dense) is re-drawn: it shows the input more than "
        "the class"]
    assert "NOT better" in bad.line("m") and "cascade from the top 0.80" in bad.line("m")
