"""The live explorer apart from the browser: strokes to MNIST digits, uploads refused safely,
the explorer's answers equal to the model's, page events to figures."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from cnnviz.core.errors import CnnvizError
from cnnviz.data.readers import ArraySource
from cnnviz.model.facts import as_facts
from cnnviz.serve import raster
from cnnviz.serve.uploads import MAX_BYTES, decode_image, decode_upload

pytest.importorskip("dash")


def _path(points) -> str:
    return "M" + "L".join(f"{x:.3f},{y:.3f}" for x, y in points)


# --- strokes → digits ----------------------------------------------------------------------------

def test_a_stroke_becomes_a_digit_normalized_as_mnist():
    one = raster.rasterize(raster.strokes_from_shapes(
        [{"path": _path([(20, 2), (20, 12)])}]))  # small, off-centre: scaled and centred
    rows, cols = np.nonzero(one > 0)
    assert one.shape == (28, 28) and one.max() == pytest.approx(1.0)
    assert rows.max() - rows.min() + 1 == 20  # the larger side fills the 20-pixel box
    centre = np.array([(np.arange(28)[:, None] * one).sum(), (np.arange(28) * one).sum()])
    assert np.all(np.abs(centre / one.sum() - 13.5) <= 0.5)  # centre of mass at the middle
    assert raster.rasterize([]).sum() == 0.0


def test_strokes_are_parsed_and_bounded():
    points = raster.parse_path("M1,2L3.5,4e0L-2,40")
    assert points.tolist() == [[1.0, 2.0], [3.5, 4.0], [0.0, 28.0]]  # clipped to the canvas
    with pytest.raises(CnnvizError, match="finite"):
        raster.parse_path("M1e999,2")
    with pytest.raises(CnnvizError, match="strokes"):
        raster.strokes_from_shapes([{"path": "M1,1L2,2"}] * (raster.MAX_STROKES + 1))
    assert raster.strokes_from_shapes([{"type": "rect"}, "x", {"path": ""}]) == []


def test_drawn_digits_are_read_by_the_reference_model():
    from cnnviz.model.facts import load

    facts = load()
    t = np.linspace(0, 2 * np.pi, 60)
    drawings = {0: [np.c_[14 + 6 * np.cos(t), 14 + 9 * np.sin(t)]],
                1: [np.c_[np.linspace(15, 13, 30), np.linspace(4, 24, 30)]],
                7: [np.array([(7, 5), (21, 5), (12, 24)])],
                4: [np.array([(9, 4), (7, 15), (20, 15)]), np.array([(17, 5), (16, 25)])]}
    for digit, strokes in drawings.items():
        pixels = raster.rasterize(raster.strokes_from_shapes([{"path": _path(s)}
                                                              for s in strokes]))
        x = facts.preprocess.to_model(pixels[None, ..., None]).astype(np.float32)
        assert int(np.argmax(facts.model.predict(x, verbose=0))) == digit


# --- uploads -------------------------------------------------------------------------------------

def _png(array: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **save)
    return buffer.getvalue()


def _url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_uploads_decode_to_their_pixels():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    assert np.array_equal(decode_upload(_url(_png(grey)), "g.png"), grey / 255.0)
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    assert np.allclose(decode_image(_png(deep), "d.png"), deep / 65535.0)
    palette = Image.fromarray(np.full((4, 4, 3), [255, 0, 0], np.uint8)).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    assert np.array_equal(decode_image(buffer.getvalue(), "p.png")[0, 0], [1.0, 0.0, 0.0])


def test_bad_uploads_get_one_line_and_no_decoding():
    bomb = _png(np.zeros((12_000, 12_000), np.uint8), optimize=True)  # 144 megapixels
    assert len(bomb) < MAX_BYTES
    begin = time.perf_counter()
    with pytest.raises(CnnvizError, match="megapixels"):
        decode_image(bomb, "bomb.png")
    assert time.perf_counter() - begin < 0.5  # refused from the header, never decoded
    cases = [(b"not an image at all", "not an image"), (b"", "empty"),
             (_png(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8))[:2000],
              "truncated"),
             (_png(np.zeros((1, 8), np.uint8)), "too small")]
    for data, message in cases:
        with pytest.raises(CnnvizError, match=message):
            decode_image(data, "x.png")
    with pytest.raises(CnnvizError, match="larger than 8 MiB"):
        decode_upload("data:image/png;base64," + "A" * (MAX_BYTES * 2), "big.png")
    with pytest.raises(CnnvizError, match="damaged"):
        decode_upload("data:image/png;base64,@@@@", "x.png")
    with pytest.raises(CnnvizError, match="file upload"):
        decode_upload(None, "x.png")


# --- the explorer: exact answers -----------------------------------------------------------------

@pytest.fixture(scope="module")
def explorer(tiny_model):
    from cnnviz.serve.engine import Explorer

    rng = np.random.default_rng(3)
    data = ArraySource(rng.integers(0, 256, (30, 6, 6), np.uint8), rng.integers(0, 3, 30),
                       class_names=("a", "b", "c"), name="noise")
    return Explorer(as_facts(tiny_model, "unit"), data, steps=5, top=4)


def test_the_explorer_answers_as_the_model(explorer, tiny_model):
    pixels = np.random.default_rng(0).random((6, 6, 1))
    look = explorer.look(pixels, "conv", "saliency")
    expected = tiny_model.predict(pixels[None].astype(np.float32), verbose=0)[0]
    window = np.lib.stride_tricks.sliding_window_view(pixels[..., 0], (3, 3))
    assert np.allclose(look.output, expected, atol=1e-6)
    assert np.allclose(look.maps[..., 0], np.maximum(window.sum(axis=(2, 3)), 0), atol=1e-5)
    assert np.allclose(look.maps[..., 1], np.maximum(window[..., 1, 1] - 0.5, 0), atol=1e-6)
    assert look.attribution.shape == (6, 6) and look.signed
    cam = explorer.look(pixels, "pool", "gradcam")
    assert cam.attribution.shape == (6, 6) and not cam.signed and cam.attribution.min() >= 0
    occluded = explorer.look(pixels, "conv", "occlusion")  # signed, though it is (H, W)
    assert occluded.attribution.shape == (6, 6) and occluded.signed
    with pytest.raises(CnnvizError, match="unknown layer"):
        explorer.look(pixels, "../../etc/passwd")
    with pytest.raises(CnnvizError, match="unknown attribution"):
        explorer.look(pixels, "conv", "rm -rf")


def test_a_filter_view_has_its_pattern_examples_and_profile(explorer, tiny_model):
    view = explorer.filter_view("conv", 1)
    assert view.origin == "computed" and view.pattern.shape == (6, 6, 1)
    assert len(view.labels) == 4 and view.strip.shape[0] == 6
    assert np.all(np.diff(view.values) <= 0)  # the strongest first
    mean, std = view.profile
    assert mean.shape == (3,) and np.all(std >= 0)
    assert explorer.filter_view("conv", 1).pattern is view.pattern  # computed once, kept
    for bad in (2, -1, "0"):
        with pytest.raises(CnnvizError, match="not a map"):
            explorer.filter_view("conv", bad)


# --- page events ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live():
    from cnnviz.model.facts import load
    from cnnviz.serve.engine import Explorer
    from cnnviz.serve.live import LiveView

    return LiveView(Explorer(load(), steps=5), tests=12)


def _title(figure) -> str:
    return figure["layout"]["title"]["text"]


def test_events_become_figures(live):
    from cnnviz.serve.app import respond

    one = {"shapes": [{"path": _path([(15, 4), (13, 24)])}]}
    out = respond(live, "canvas", one, None, None, "conv2d_3", "saliency", 0, [], {})
    strokes, current, _, output, maps, attribution, message, kind, pages, page = out
    assert strokes == [one["shapes"][0]["path"]] and current == {"kind": "draw"}
    assert _title(output).startswith("predicted 1") and kind == "note"
    assert "128 maps of 3×3" in _title(maps) and "saliency" in _title(attribution)
    assert pages == [{"label": "maps 0–127", "value": 0}] and page == 0
    edited = respond(live, "canvas", {"shapes[0].path": _path([(5, 14), (23, 14)])}, None,
                     None, "conv2d_1", None, 0, strokes, current)
    assert edited[0] != strokes and "conv2d_1: 32 maps of 26×26" in _title(edited[4])
    picked = respond(live, "test", None, None, 3, "conv2d_1", None, 0, strokes, current)
    x = live.explorer.model_input(live.test_pixels[3])
    expected = int(np.argmax(live.explorer.facts.model.predict(x, verbose=0)))
    assert picked[1] == {"kind": "test", "index": 3}
    assert _title(picked[3]).startswith(f"predicted {expected}")
    upload = {"contents": _url(_png((live.test_pixels[3][..., 0] * 255).astype(np.uint8))),
              "name": "../../three.png"}
    uploaded = respond(live, "upload", None, upload, None, "conv2d_1", None, 0, [], picked[1])
    assert uploaded[1]["kind"] == "upload"
    assert uploaded[6] == "upload ../../three.png (as the model sees it: 28×28)"
    assert _title(uploaded[3]) == _title(picked[3])


def test_bad_events_give_a_message_and_change_nothing(live):
    from dash import no_update
    from dash.exceptions import PreventUpdate

    from cnnviz.serve.app import respond

    cases = [("layer", None, None, None, "../../etc/passwd", None, "unknown layer"),
             ("upload", None, {"contents": "data:x;base64,AAAA", "name": "x.txt"}, None,
              "conv2d_1", None, "not an image"),
             ("upload", None, {"error": "big.png is larger than 8 MiB"}, None, "conv2d_1",
              None, "larger than"),
             ("test", None, None, 99, "conv2d_1", None, "no such test image"),
             ("canvas", {"shapes": [{"path": "M1e999,1"}]}, None, None, "conv2d_1", None,
              "finite")]
    for trigger, relayout, upload, test, layer, method, message in cases:
        out = respond(live, trigger, relayout, upload, test, layer, method, 0, [], {})
        assert out[:6] == (no_update,) * 6 and message in out[6] and out[7] == "error"
    with pytest.raises(PreventUpdate):  # a resize is no stroke
        respond(live, "canvas", {"autosize": True}, None, None, "conv2d_1", None, 0, [], {})


def test_a_map_click_shows_its_filter(live):
    panel = live.filter_panel("conv2d_2", 7)
    assert panel["title"] == "conv2d_2 · filter 7"
    assert panel["pattern"].startswith("data:image/png;base64,")
    assert panel["strip"].startswith("data:image/png;base64,") and "#" in panel["examples"]
    assert [b["x"] for b in panel["profile"]["data"]] == [[str(c) for c in range(10)]]


def test_a_class_bar_click_shows_what_the_model_takes_the_class_to_be(live):
    from dash.exceptions import PreventUpdate

    from cnnviz.serve.app import _inspect

    assert live.explorer.classes_layer == "dense_2"
    out = live.view({"kind": "test", "index": 0}, [], "conv2d_3", None, 0)["output"]
    assert out["data"][0]["customdata"] == list(range(10))  # each bar is its class
    panel = live.filter_panel("dense_2", 6)
    assert panel["title"] == "dense_2 · class 6"
    assert "what the model takes class 6 to be" in panel["caption"]
    assert panel["strip"].startswith("data:image/png;base64,") and "· 6" in panel["examples"]
    shown = live.explorer.filter_view("dense_2", 6).pattern[..., 0]
    read = live.explorer.look(shown[..., None], "conv2d_1").output
    assert int(np.argmax(read)) == 6  # the model reads its own class image as that class
    from dash import dcc, html

    children = _inspect(live, {"points": [{"customdata": 6, "x": "6"}]}, "dense_2", dcc, html)
    assert children[0].children == "dense_2 · class 6"
    with pytest.raises(PreventUpdate):
        _inspect(live, {"points": [{"customdata": 10}]}, "dense_2", dcc, html)


def test_an_atlas_supplies_patterns_and_statistics(k, tmp_path):
    from cnnviz.atlas.build import AtlasSpec
    from cnnviz.jobs.atlas import atlas_job
    from cnnviz.serve.engine import Explorer

    rng = np.random.default_rng(2)
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(3, 3, name="c"),
                          k.layers.Flatten(), k.layers.Dense(2, activation="softmax")],
                         name="small")
    data = ArraySource(rng.integers(0, 256, (20, 8, 8), np.uint8), rng.integers(0, 2, 20),
                       name="noise")
    atlas_job(as_facts(model), tmp_path / "atlas", AtlasSpec(k=3, steps=4), data=data)
    explorer = Explorer(as_facts(model), data, tmp_path / "atlas", top=3)
    view = explorer.filter_view("c", 2)
    result = explorer.atlas.filters["c"]
    assert view.origin == "atlas"
    assert np.array_equal(view.pattern, result.meta.display(result.patterns())[2])
    assert list(view.values) == list(explorer.atlas.statistics.top_values["c"][2])
    other = k.models.clone_model(model)
    with pytest.raises(CnnvizError, match="another model"):
        Explorer(as_facts(other), data, tmp_path / "atlas")
    with pytest.raises(CnnvizError, match="holds no atlas"):
        Explorer(as_facts(model), data, tmp_path)


def test_uploads_are_kept_at_the_model_size_whatever_their_pixels(live):
    """A small file of many pixels is reduced while still 8 bit and kept as the model's input
    (float32): twenty 16-megapixel uploads cost kilobytes, and one costs far less than its
    float64 pixels would (366 MiB)."""
    import tracemalloc

    blank = _png(np.full((3999, 4000), 255, np.uint8), optimize=True)
    assert len(blank) < 200_000
    tracemalloc.start()
    for i in range(20):
        kept = live.keep_upload({"contents": _url(blank + bytes(i % 2)), "name": f"{i}.png"})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 80 * 2**20, peak / 2**20
    pixels, note = live.pixels(kept, None)
    assert pixels.shape == (28, 28, 1) and pixels.dtype == np.float32 and np.allclose(pixels, 1)
    assert note == "upload 19.png (as the model sees it: 28×28)"
    assert {v.nbytes for v in live._uploads.values()} == {28 * 28 * 4}
    small = decode_image(_png((np.arange(300 * 240) % 251).astype(np.uint8).reshape(300, 240)),
                         "s.png", fit=(28, 28))
    assert small.shape == (75, 60)  # reduced by 4: still at least twice the model's side
