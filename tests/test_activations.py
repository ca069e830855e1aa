from dataclasses import replace

import numpy as np
import pytest

from cnnviz.core.errors import CnnvizError
from cnnviz.data import images_to_model_input
from cnnviz.maps.activations import activations
from cnnviz.results import Activations


def _conv_reference(x: np.ndarray) -> np.ndarray:
    """The tiny model's conv layer in plain numpy: window sum, centre − 0.5, then relu."""
    out = np.zeros((4, 4, 2))
    for r in range(4):
        for c in range(4):
            out[r, c, 0] = x[r:r + 3, c:c + 3].sum()
            out[r, c, 1] = x[r + 1, c + 1] - 0.5
    return np.maximum(out, 0.0)


def test_tiny_model_maps_are_exact(tiny_model):
    x = np.zeros((1, 6, 6, 1), np.float32)
    x[0, 2, 2, 0] = 1.0  # one bright pixel
    acts = activations(tiny_model, x)
    assert acts.layers == ["conv", "pool"]
    conv = acts.maps["conv"][0]
    # Filter 0 sees the pixel in every window that covers (2, 2): rows and cols 0..2.
    expected_sum = np.zeros((4, 4))
    expected_sum[0:3, 0:3] = 1.0
    np.testing.assert_array_equal(conv[..., 0], expected_sum)
    # Filter 1 is the centre pixel − 0.5: 0.5 at (1, 1), relu zero elsewhere.
    expected_centre = np.zeros((4, 4))
    expected_centre[1, 1] = 0.5
    np.testing.assert_array_equal(conv[..., 1], expected_centre)
    np.testing.assert_array_equal(acts.maps["pool"][0, ..., 0], [[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(acts.maps["pool"][0, ..., 1], [[0.5, 0.0], [0.0, 0.0]])


def test_tiny_model_matches_numpy_reference_and_softmax(tiny_model):
    rng = np.random.default_rng(3)
    x = rng.random((4, 6, 6, 1)).astype(np.float32)
    acts = activations(tiny_model, x, ["conv", "pool", "out"])
    for i in range(4):
        conv = _conv_reference(x[i, ..., 0].astype(np.float64))
        np.testing.assert_allclose(acts.maps["conv"][i], conv, rtol=1e-5, atol=1e-6)
        pooled = conv.reshape(2, 2, 2, 2, 2).max(axis=(1, 3))
        np.testing.assert_allclose(acts.maps["pool"][i], pooled, rtol=1e-5, atol=1e-6)
        logits = pooled.reshape(-1) @ (np.arange(24).reshape(8, 3) / 100.0) + [0.1, 0.0, -0.1]
        softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(acts.probabilities[i], softmax, rtol=1e-5)
    np.testing.assert_array_equal(acts.maps["out"], acts.probabilities)


def test_reference_model_matches_hand_built_submodels(k, reference_model, mnist):
    x = images_to_model_input(mnist.x_test[:5], (28, 28, 1), (0.0, 255.0))
    names = ["conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2", "conv2d_3",
             "dense_1"]
    acts = activations(reference_model, x, names, labels=mnist.y_test[:5])
    for name in names:
        sub = k.Model(reference_model.inputs[0], reference_model.get_layer(name).output)
        np.testing.assert_allclose(acts.maps[name], np.asarray(sub(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acts.probabilities, np.asarray(reference_model(x)), atol=1e-6)
    assert acts.maps["conv2d_3"].shape == (5, 3, 3, 128)
    assert (acts.predictions == mnist.y_test[:5]).mean() >= 0.8


def test_default_layers_are_conv_and_pool(reference_model, mnist):
    x = images_to_model_input(mnist.x_test[:1], (28, 28, 1), (0.0, 255.0))
    acts = activations(reference_model, x)
    assert acts.layers == ["conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2",
                           "conv2d_3"]


def test_nested_layers_are_addressable(k, nested_model):
    rng = np.random.default_rng(0)
    x = rng.random((3, 6, 6, 1)).astype(np.float32)
    acts = activations(nested_model, x, ["double", "base/c1", "base/c2", "gap"])
    base = nested_model.get_layer("base")
    inner = k.Model(base.inputs[0], [base.get_layer("c1").output, base.get_layer("c2").output])
    c1, c2 = (np.asarray(t) for t in inner(2.0 * x))
    np.testing.assert_allclose(acts.maps["double"], 2.0 * x, rtol=1e-6)
    np.testing.assert_allclose(acts.maps["base/c1"], c1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts.maps["base/c2"], c2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts.maps["gap"], c2.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts.probabilities, np.asarray(nested_model(x)), atol=1e-6)
    # c1 of filter 0 is 2 × the window sum, relu'd; filter 1 is relu(1 − 2 × window sum).
    window = np.array([[x[0, r:r + 3, c:c + 3, 0].sum() for c in range(4)] for r in range(4)])
    np.testing.assert_allclose(acts.maps["base/c1"][0, ..., 0], 2 * window, rtol=1e-5)
    np.testing.assert_allclose(acts.maps["base/c1"][0, ..., 1],
                               np.maximum(1 - 2 * window, 0), atol=1e-5)


def test_save_and_load_round_trip(tmp_path, tiny_model):
    x = np.random.default_rng(1).random((2, 6, 6, 1)).astype(np.float32)
    acts = activations(tiny_model, x, labels=np.array([4, 7]))
    acts.meta = replace(acts.meta, data="test")
    npz, meta = acts.save(tmp_path / "run.npz")
    assert npz.exists() and meta.suffix == ".json"
    back = Activations.load(tmp_path / "run")
    assert back.layers == acts.layers and back.meta == acts.meta
    for name in acts.layers:
        np.testing.assert_array_equal(back.maps[name], acts.maps[name])
    np.testing.assert_array_equal(back.inputs, x)
    np.testing.assert_array_equal(back.labels, [4, 7])
    np.testing.assert_array_equal(back.probabilities, acts.probabilities)


def test_bad_inputs_raise_clear_errors(tiny_model):
    x = np.zeros((1, 6, 6, 1), np.float32)
    with pytest.raises(CnnvizError, match=r"unknown layer 'conf'; did you mean conv"):
        activations(tiny_model, x, ["conf"])
    with pytest.raises(CnnvizError, match="do not fit the model input"):
        activations(tiny_model, np.zeros((1, 5, 5, 1)))
    with pytest.raises(CnnvizError, match="no images"):
        activations(tiny_model, np.zeros((0, 6, 6, 1)))


def _deep_model(k, blocks=(4, 5, 6)):
    """Stages of residual blocks (conv → Add with the block's input → relu), a 2×2 pool
    between stages: a stem, 15 block convolutions and 2 pools, more than 16 such layers."""
    x = inputs = k.Input((32, 32, 3))
    x = k.layers.Conv2D(4, 3, padding="same", name="stem")(x)
    for s, count in enumerate(blocks, start=1):
        for b in range(1, count + 1):
            y = k.layers.Conv2D(4, 3, padding="same", name=f"s{s}b{b}_conv")(x)
            x = k.layers.ReLU(name=f"s{s}b{b}_out")(k.layers.Add(name=f"s{s}b{b}_add")([x, y]))
        if s < len(blocks):
            x = k.layers.MaxPooling2D(2, name=f"pool{s}")(x)
    outputs = k.layers.Dense(2)(k.layers.GlobalAveragePooling2D()(x))
    return k.Model(inputs, outputs, name="deep")


def test_a_big_model_draws_its_stage_ends_pools_and_merges(k):
    from cnnviz.model.graph import shown_map_layers

    small = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(2, 3, name="c")])
    assert shown_map_layers(small) == (["c"], None)
    deep = _deep_model(k)
    chosen, note = shown_map_layers(deep)
    # stage ends: the last layer before each pool (s1b3_out, s2b3_out) and the last (s3b3_out);
    # the pools; then merges that are not right before a chosen layer, spread evenly
    ends = {"s1b4_out", "pool1", "s2b5_out", "pool2", "s3b6_out"}
    assert ends <= set(chosen)
    assert len(chosen) <= 16 and all(n.endswith(("_out", "_add")) or n.startswith("pool")
                                     for n in chosen)
    assert "s1b4_add" not in chosen  # its ReLU, the stage end, is drawn
    assert note == ("model 'deep' has 18 convolution and pooling layers: drawing "
                    f"{len(chosen)} — 3 stage ends, its pooling layers, merges between "
                    "(--layers all for every one, or name them)")
    held = 4 * (32 * 32 + 16 * 16 + 16 * 16 + 8 * 8 + 8 * 8)  # the numbers those five hold
    assert set(shown_map_layers(deep, values=held)[0]) == ends  # no room for a merge
    assert set(shown_map_layers(deep, values=held + 8 * 8 * 4)[0]) == ends | {"s3b5_add"}
    capped, _ = shown_map_layers(deep, cap=3)
    assert len(capped) == 3 and capped[-1] == "s3b6_out"


def test_a_page_too_big_to_embed_shows_the_pngs_and_each_maps_numbers(tmp_path, monkeypatch,
                                                                      reference_model, mnist):
    from plotly_page import figures

    from cnnviz.maps.activations import activations
    from cnnviz.render import views

    x = images_to_model_input(mnist.x_test[:1], (28, 28, 1), (0.0, 255.0))
    result = activations(reference_model, x, ["conv2d_1", "conv2d_3"])
    monkeypatch.setattr(views, "EMBEDDED_VALUES", 1000)
    views.write_activation_views(result, tmp_path)
    page = (tmp_path / "activations.html").read_text()
    assert 'src="conv2d_1.png"' in page and 'data-src="conv2d_3.png"' in page
    bars = figures(page)[-1]["data"]
    assert [b["name"] for b in bars] == ["largest", "mean"] * 2
    assert [b["visible"] for b in bars] == [True, True, False, False]
    from plotly_page import array

    np.testing.assert_allclose(array(bars[1]["y"]), result.maps["conv2d_1"][0].mean(axis=(0, 1)),
                               rtol=1e-6)
    np.testing.assert_allclose(array(bars[2]["y"]), result.maps["conv2d_3"][0].max(axis=(0, 1)),
                               rtol=1e-6)
    assert (tmp_path / "activations.html").stat().st_size < 200_000  # no heatmap embedded


@pytest.mark.slow
def test_the_layer_menu_of_a_tiled_page_loads_the_chosen_grid(tmp_path, monkeypatch,
                                                              reference_model, mnist):
    """In headless Chromium: choosing a layer loads its PNG (only then) and shows its bars."""
    import shutil

    from playwright.sync_api import sync_playwright

    from cnnviz.maps.activations import activations
    from cnnviz.render import views

    x = images_to_model_input(mnist.x_test[:1], (28, 28, 1), (0.0, 255.0))
    result = activations(reference_model, x, ["conv2d_1", "conv2d_2", "conv2d_3"])
    monkeypatch.setattr(views, "EMBEDDED_VALUES", 1000)
    views.write_activation_views(result, tmp_path)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "activations.html").as_uri())
        page.wait_for_function("document.getElementById('maps-numbers').data !== undefined")
        shown = "[...document.querySelectorAll('img[id^=maps-img]')].map(i => " \
                "[i.style.display, !!i.getAttribute('src')])"
        assert page.evaluate(shown) == [["block", True], ["none", False], ["none", False]]
        page.select_option("#maps-layer", "2")
        page.wait_for_function("document.getElementById('maps-img-2').naturalWidth > 0")
        assert page.evaluate(shown) == [["none", True], ["none", False], ["block", True]]
        visible = page.evaluate("document.getElementById('maps-numbers').data.map(t => t.visible)")
        assert visible == [False, False, False, False, True, True] and not errors
        browser.close()
