"""Hostile input, round two: names that reach a terminal, a file name or a plot; numbers and
labels that would exhaust memory; images whose size no header gives."""

from __future__ import annotations

from urllib.parse import unquote

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.errors import CnnvizError
from cnnviz.core.text import MAX_STEM, file_stem, plain_label, printable
from cnnviz.data import checked_labels, load_npz_dataset, read_image

runner = CliRunner()


def test_printable_shows_control_characters_as_escapes():
    assert printable("a\x1b[2Jb\x07\rc") == "a\\x1b[2Jb\\x07\\rc"
    assert printable("right\u202eto left") == "right\\u202eto left"  # bidi override
    assert printable("two\nlines\tand tabs") == "two\\nlines\\tand tabs"  # one line
    assert printable("ünïcødé [b]") == "ünïcødé [b]"


@given(st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=8, unique=True))
@settings(max_examples=200, deadline=None)
def test_file_stems_never_collide_and_stay_plain(names):
    stems = [file_stem(n, reserved=("input",)) for n in names]
    assert len({s.lower() for s in stems}) == len(names)  # case-insensitive file systems too
    for name, stem in zip(names, stems, strict=True):
        assert set(stem) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-.%ABCDEF~")
        assert not stem.startswith(".") and "/" not in stem and len(stem) <= MAX_STEM
        if len(stem) < MAX_STEM and stem != "%69nput":
            assert unquote(stem) == name  # reversible


def test_file_stems_of_ordinary_and_clashing_names():
    assert file_stem("conv2d_1") == "conv2d_1"
    assert file_stem("base/block1_conv1") == "base%2Fblock1_conv1"
    assert file_stem("a/b") != file_stem("a__b") == "a__b"
    assert file_stem("input", reserved=("input",)) == "%69nput"
    assert file_stem("Conv") != file_stem("conv")
    long = file_stem("x" * 500)
    assert len(long) == MAX_STEM and long != file_stem("x" * 499)


def test_plain_labels_are_not_mathematics(tmp_path):
    from cnnviz.render import grids

    assert plain_label("cost$1 and $x$") == r"cost\$1 and \$x\$"
    figure = grids.map_grid(np.zeros((4, 4, 2)), title="layer $x_")
    assert grids.save_png(figure, tmp_path / "g.png").stat().st_size > 0


def test_labels_are_checked_before_anything_is_built_per_class(tmp_path):
    with pytest.raises(CnnvizError, match=r"label 1099511627776 is not a class number"):
        checked_labels(np.array([0, 2**40]), "data.npz")
    with pytest.raises(CnnvizError, match="whole class numbers"):
        checked_labels(np.array([0.0, 1.5]), "data.npz")
    with pytest.raises(CnnvizError, match="whole class numbers"):
        checked_labels(np.array([0.0, np.nan]), "data.npz")
    assert checked_labels(np.array([1.0, 2.0]), "d").tolist() == [1, 2]
    np.savez(tmp_path / "huge.npz", x=np.zeros((2, 8, 8), np.uint8), y=np.array([0, 2**40]))
    with pytest.raises(CnnvizError, match="huge.npz: label 1099511627776"):
        load_npz_dataset(tmp_path / "huge.npz")
    result = runner.invoke(app, ["patterns", "--data", str(tmp_path / "huge.npz"),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "label 1099511627776" in result.stderr


def test_image_sizes_come_from_headers(tmp_path):
    import tifffile

    # A float64 TIFF Pillow cannot open, 12000×12000 (144 megapixels), a few kB compressed.
    tifffile.imwrite(tmp_path / "bomb.tif", np.zeros((12000, 12000)), compression="zlib",
                     tile=(512, 512))
    with pytest.raises(CnnvizError, match=r"bomb.tif is 12000×12000 pixels: larger than 50"):
        read_image(tmp_path / "bomb.tif")
    tifffile.imwrite(tmp_path / "small.tif", np.random.default_rng(0).random((6, 7)))
    assert read_image(tmp_path / "small.tif").shape == (6, 7)
    (tmp_path / "mystery.img").write_bytes(b"\x00\x01not a known format" * 10)
    with pytest.raises(CnnvizError, match="cannot read image mystery.img: neither Pillow"):
        read_image(tmp_path / "mystery.img")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that is only its header: what Pillow reads before it decodes anything."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_pillow_bombs_report_their_real_size(tmp_path):
    (tmp_path / "wide.png").write_bytes(_png_header(30000, 30000))
    with pytest.raises(CnnvizError, match="wide.png has 900 megapixels"):
        read_image(tmp_path / "wide.png")
    (tmp_path / "big.png").write_bytes(_png_header(9000, 9000))  # 81 MP: under Pillow's alarm
    with pytest.raises(CnnvizError, match="big.png is 9000×9000 pixels: larger than 50"):
        read_image(tmp_path / "big.png")


@pytest.mark.parametrize(("args", "message"), [
    (["filters", "--lr", "nan"], "the learning rate must be a finite number, got nan"),
    (["filters", "--scale", "inf,1"], "scale must be a finite number"),
    (["filters", "--seed", "-1"], "seed must be a whole number ≥ 0, got -1"),
    (["explain", "--seed", "-2"], "seed must be a whole number ≥ 0, got -2"),
    (["train", "--batch-size", "0"], "batch size must be positive"),
    (["filters", "--steps", "1000000000"], "steps must be at most 100,000,000"),
    (["filters", "--budget", "1", "--layer", "conv2d_3", "--examples", "9"],
     "examples for each of 128 filters keep"),
    (["filters", "--filters", "0-99999999"], "filter 99999999 is out of range: layer "
                                             "'conv2d_3' has 128 filters (0..127)"),
    (["filters", "--filters", "5,3-" + "9" * 20], f"filter {'9' * 20} is out of range"),
    (["filters", "--filters", "7-" + "9" * 5000], "bad filter range"),
])
def test_numbers_that_would_hang_or_crash_are_refused_first(tmp_path, args, message):
    out = tmp_path / ("m.keras" if args[0] == "train" else "out")
    result = runner.invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "unexpected" not in result.stderr
    assert not out.exists()


def test_hostile_layer_names_on_the_terminal_and_on_disk(tmp_path, k):
    inputs = k.Input((8, 8, 1))
    x = k.layers.Conv2D(2, 3, name="evil\x1b[2J\x07")(inputs)
    x = k.layers.Conv2D(2, 1, name="[red]mark")(x)
    model = k.Model(inputs, x, name="host\x1b[31mile")
    model.save(tmp_path / "hostile.keras")
    listed = runner.invoke(app, ["layers", str(tmp_path / "hostile.keras")],
                           env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.stdout and "evil\\x1b[2J\\x07" in listed.stdout
    assert "[red]mark" in listed.stdout and "host\\x1b[31mile" in listed.stdout
    run = runner.invoke(app, ["activations", str(tmp_path / "hostile.keras"), "--out",
                              str(tmp_path / "out")])
    assert run.exit_code == 1 and "\x1b" not in run.stderr
    if k.backend.backend() == "tensorflow":
        assert "has a name TensorFlow cannot run" in run.stderr
        assert "KERAS_BACKEND=jax" in run.stderr
    else:  # JAX runs any name: the run goes on to the next check, and says it escaped
        assert "host\\x1b[31mile" in run.stderr


def test_cmyk_images_are_converted_not_cut(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((12, 12, 3), (200, 30, 30), np.uint8)).convert("CMYK").save(
        tmp_path / "ink.jpg")
    notes: list[str] = []
    pixels = read_image(tmp_path / "ink.jpg", notes)
    assert pixels.shape == (12, 12, 3) and "ink.jpg: CMYK converted to RGB" in notes
    np.testing.assert_allclose(pixels[6, 6], np.array([200, 30, 30]) / 255, atol=0.02)


def test_a_model_that_overflows_is_not_reported_as_a_prediction(k):
    from cnnviz.attribution import explain
    from cnnviz.maps.activations import activations

    model = k.Sequential([k.Input((4, 4, 1)), k.layers.Conv2D(1, 1, name="c"),
                          k.layers.Flatten(), k.layers.Dense(2, activation="softmax")])
    model.set_weights([np.full((1, 1, 1, 1), 1e30, np.float32), np.zeros(1, np.float32),
                       np.full((16, 2), 1e30, np.float32), np.zeros(2, np.float32)])
    x = np.ones((1, 4, 4, 1), np.float32)
    with pytest.raises(CnnvizError, match="output for the input is NaN or infinite"):
        activations(model, x, ["c"])
    with pytest.raises(CnnvizError, match="NaN or infinite: it overflows inside"):
        explain(model, x, ("saliency",))


def test_damaged_saved_results_are_one_line(tmp_path):
    import json

    good = tmp_path / "good"
    assert runner.invoke(app, ["filters", "--steps", "2", "--filters", "0-1", "--no-reference",
                               "--out", str(good)]).exit_code == 0
    original = json.loads((good / "filters.json").read_text())

    def damaged(name, npz=None, meta=None):
        (tmp_path / f"{name}.npz").write_bytes(npz if npz is not None else
                                               (good / "filters.npz").read_bytes())
        (tmp_path / f"{name}.json").write_text(json.dumps(meta if meta is not None else
                                                          original))
        return tmp_path / f"{name}.npz"

    wrong_layers = json.loads(json.dumps(original))
    wrong_layers["meta"]["layers"] = 5
    cases = [damaged("truncated", npz=(good / "filters.npz").read_bytes()[:300]),
             damaged("foreign_arrays", npz=b"PK\x05\x06" + b"\x00" * 18),
             damaged("bad_meta", meta=wrong_layers),
             damaged("no_notes", meta={k: v for k, v in original.items() if k != "notes"})]
    for path in cases:
        result = runner.invoke(app, ["filters", "--from", str(path), "--out",
                                     str(tmp_path / f"out_{path.stem}")])
        assert result.exit_code == 1, (path.name, result.output)
        assert "cannot read saved results" in result.stderr, (path.name, result.stderr)
        assert "unexpected" not in result.stderr


def test_plot_labels_keep_their_lines():
    assert plain_label("gradcam\nimage 3\x1b") == "gradcam\nimage 3\\x1b"


def test_a_huge_range_is_refused_before_it_is_built(tiny_model):
    import tracemalloc

    from cnnviz.oip.filters import chosen_filters

    tracemalloc.start()
    with pytest.raises(CnnvizError, match="filter 999999999999 is out of range: layer 'conv' "
                                          "has 2 filters"):
        chosen_filters(tiny_model, "conv", "0-999999999999")
    with pytest.raises(CnnvizError, match=r"filter 1e\+30 is not a whole number"):
        chosen_filters(tiny_model, "conv", [1e30])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20
    assert chosen_filters(tiny_model, "conv", "1, 0-1").tolist() == [1, 0]
    assert chosen_filters(tiny_model, "conv", [10**30 % 2]).tolist() == [0]


@pytest.mark.parametrize("head", ["two classes", "one regression unit"])
def test_grey_models_whose_output_is_not_ten_classes(tmp_path, k, head):
    """The bundled digits' ten class names never label another model's output: its bars are
    numbered, and the input keeps its digit label."""
    inputs = k.Input((28, 28, 1))
    maps = k.layers.Conv2D(3, 3, activation="relu", name="c")(inputs)
    pooled = k.layers.GlobalAveragePooling2D()(maps)
    outputs = [k.layers.Dense(10, activation="softmax", name="digits")(pooled),
               k.layers.Dense(1, name="score")(pooled)]
    if head == "two classes":
        outputs = k.layers.Dense(2, activation="softmax", name="two")(pooled)
    path = tmp_path / "m.keras"
    k.Model(inputs, outputs).save(path)
    extra = ["--output", "score"] if head != "two classes" else []
    result = runner.invoke(app, ["activations", str(path), "--digit", "4", *extra, "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert ("predicted 0" in result.output or "predicted 1" in result.output
            if head == "two classes" else "largest: 0" in result.output)
    from PIL import Image

    assert Image.open(tmp_path / "out" / "input.png").size[0] > 100
    from cnnviz.render.outputs import output_bars

    bars = output_bars(np.array([0.3, 0.7]), tuple("0123456789"))
    assert bars.names == ["0", "1"] and bars.title == "predicted 1 (70.0%)"
    named = output_bars(np.array([0.3, 0.7]), ("cat", "dog"))
    assert named.names == ["cat", "dog"] and named.title == "predicted dog (70.0%)"
