import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plotly_page import array, figures
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.model.facts import load_model
from cnnviz.results import Activations

runner = CliRunner()
CONV_AND_POOL = ["conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2", "conv2d_3"]


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_help_does_not_import_tensorflow():
    code = ("import sys\nfrom cnnviz.cli import app\ntry:\n    app(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print('IMPORTED', sorted({'tensorflow', 'keras', 'matplotlib', 'plotly'} "
            "& set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "activations" in out and "IMPORTED []" in out


@pytest.mark.slow
def test_console_script_end_to_end(tmp_path):
    """The README's first command, through the installed console script."""
    exe = Path(sys.executable).with_name("cnnviz")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cnnviz.cli"]
    result = subprocess.run([*command, "activations", "--digit", "6", "--out", tmp_path],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "predicted 6" in result.stdout and "wrote 10 files" in result.stdout
    assert result.stderr == ""  # no TensorFlow start-up chatter
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}.png" for n in CONV_AND_POOL] + ["input.png", "activations.html", "plotly.min.js",
                                               "activations.npz", "activations.json",
                                               ".cnnviz-activations.json"])  # the manifest


def test_activations_outputs(tmp_path, reference_model, mnist):
    result = run("activations", "--digit", "3", "--seed", "1", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    saved = Activations.load(tmp_path / "activations.npz")
    assert saved.layers == CONV_AND_POOL and int(saved.labels[0]) == 3
    # The saved maps are the model's: recompute them from the saved input.
    from cnnviz.maps.activations import activations

    again = activations(reference_model, saved.inputs, CONV_AND_POOL)
    for name in CONV_AND_POOL:
        np.testing.assert_allclose(saved.maps[name], again.maps[name], rtol=1e-6)
    for name in [*CONV_AND_POOL, "input"]:
        with Image.open(tmp_path / f"{name}.png") as png:
            assert png.format == "PNG"
    page = (tmp_path / "activations.html").read_text()
    specs = figures(page)
    assert [t["type"] for t in specs[0]["data"]] == ["heatmap", "bar"]
    maps = specs[1]["data"]
    assert [t["name"] for t in maps] == CONV_AND_POOL
    assert [t.get("visible") for t in maps] == [True] + [False] * 4
    z = array(maps[4]["z"])
    assert int(np.isfinite(z).sum()) == 3 * 3 * 128
    np.testing.assert_allclose(np.nanmax(z), saved.maps["conv2d_3"][0].max(), rtol=1e-6)
    assert not list(tmp_path.glob(".*tmp*"))


def test_activations_options(tmp_path):
    result = run("activations", "--index", "0", "--layers", "conv2d_2,conv2d_1",
                 "--scale", "per-map", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["conv2d_1.png", "conv2d_2.png",
                                                              "input.png"]
    assert Activations.load(tmp_path / "activations").layers == ["conv2d_2", "conv2d_1"]


def test_activations_for_an_image_file_and_a_nested_model(tmp_path, nested_model):
    from cnnviz.training.train import save_model

    model_path = save_model(nested_model, tmp_path / "nested.keras")
    image = np.zeros((30, 30, 3), np.uint8)
    image[10:20, 10:20] = [255, 128, 0]
    Image.fromarray(image).save(tmp_path / "square.png")
    out = tmp_path / "out"
    result = run("activations", model_path, "--image", tmp_path / "square.png", "--out", out)
    assert result.exit_code == 0, result.output
    saved = Activations.load(out / "activations")
    assert saved.layers == ["base/c1", "base/c2"] and saved.labels is None
    assert (out / "base%2Fc1.png").exists()
    assert saved.inputs.shape == (1, 6, 6, 1)


def test_layers_table():
    result = runner.invoke(app, ["layers"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    lines = result.output.splitlines()
    row = next(line for line in lines if "conv2d_3" in line)
    assert "Conv2D" in row and "(None, 3, 3, 128)" in row and "128" in row
    assert any("dense_2" in line and "(None, 10)" in line for line in lines)


def test_layers_in_a_pipe_keeps_whole_names(tmp_path):
    import keras as k

    name = "a_convolution_layer_with_a_name_far_longer_than_any_terminal_column_allows_it"
    inputs = k.Input((8, 8, 1))
    k.Model(inputs, k.layers.Conv2D(2, 3, name=name)(inputs), name="long").save(
        tmp_path / "long.keras")
    result = runner.invoke(app, ["layers", str(tmp_path / "long.keras")])  # not a terminal
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "long" and f"{name}\tConv2D\t(None, 6, 6, 2)\t2\t3×3\t1" in lines


def test_filters_start_from_the_chosen_length_scales(tmp_path):
    from cnnviz.oip.param import start_images
    from cnnviz.results import FilterResult

    result = run("filters", "--layer", "conv2d_1", "--filters", "0-1", "--steps", "2",
                 "--wavelengths", "14", "--no-reference", "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert FilterResult.load(tmp_path / "a" / "filters.npz").params["wavelengths"] == [14.0]
    coarse, fine = (start_images([(0, 0)] * 8, (28, 28, 1), (0.0, 1.0), wavelengths=w,
                                 noise=0.0)[..., 0] for w in ((14.0,), (1.75,)))
    assert np.abs(np.diff(coarse, axis=1)).mean() < 0.3 * np.abs(np.diff(fine, axis=1)).mean()
    bad = run("filters", "--wavelengths", "7,0", "--out", tmp_path / "b")
    assert bad.exit_code == 1 and "positive lengths in pixels" in bad.output
    assert not (tmp_path / "b").exists()


def test_patterns_maps_command(tmp_path):
    result = run("patterns", "--maps", "--no-dense", "--layer", "conv2d_2", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    from cnnviz.results import ClassPatterns

    saved = ClassPatterns.load(tmp_path / "patterns.npz")
    means, differences = saved.map_images("conv2d_2")
    assert means.shape == (10, 11, 11, 64)
    for c in range(10):
        for suffix in ("", "_minus_all"):
            with Image.open(tmp_path / f"class_maps_conv2d_2_{c}{suffix}.png") as png:
                assert png.format == "PNG"
    mean_spec, difference_spec = figures((tmp_path / "class_maps_conv2d_2.html").read_text())
    assert [t["name"] for t in mean_spec["data"]] == [f"class {c}" for c in range(10)]
    z = array(difference_spec["data"][6]["z"])
    np.testing.assert_allclose(z[:11, :11], differences[6][..., 0], rtol=1e-5, atol=1e-6)


def test_train_watches_filters_and_evolution_replays_them(tmp_path):
    out = tmp_path / "watched.keras"
    result = run("train", "--out", out, "--epochs", "2", "--n-train", "300", "--conv", "4",
                 "--pool-after", "1", "--dense", "8", "--snapshots", "conv2d_1",
                 "--snapshot-steps", "3")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "watched.snapshots"
    assert sorted(p.name for p in (folder / "conv2d_1").glob("*.png")) == [
        "epoch_0000.png", "epoch_0001.png", "epoch_0002.png"]
    assert (folder / "evolution_conv2d_1.html").exists()
    assert (folder / "activations" / "epoch_0002_conv2d_1.png").exists()
    again = run("evolution", folder)
    assert again.exit_code == 1 and "already exists" in again.output
    assert run("evolution", folder, "--force").exit_code == 0
    wrong = run("train", "--out", tmp_path / "w.keras", "--snapshots", "conv9", "--conv", "4",
                "--pool-after", "1")
    assert wrong.exit_code == 1 and "conv9" in wrong.output
    assert not (tmp_path / "w.keras").exists() and not (tmp_path / "w.snapshots").exists()


def test_train_command(tmp_path):
    out = tmp_path / "small.keras"
    result = run("train", "--out", out, "--epochs", "1", "--n-train", "512", "--conv", "4",
                 "--pool-after", "1", "--dense", "8", "--schedule", "exponential")
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    model = load_model(out)
    assert [layer.name for layer in model.layers][:3] == ["rescaling", "conv2d_1",
                                                          "max_pooling2d_1"]


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory, k):
    """Every bad file the cases below hand to cnnviz, made once."""
    from cnnviz.model.facts import reference_model_path

    d = tmp_path_factory.mktemp("bad")
    (d / "notes.h5").write_text("not a model")
    (d / "notes.keras").write_text("not a model")
    (d / "empty.keras").write_bytes(b"")
    (d / "folder.keras").mkdir()
    whole = reference_model_path().read_bytes()
    (d / "truncated.keras").write_bytes(whole[: len(whole) // 3])
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("not an image")
    (d / "a_file").write_text("in the way")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(d / "dot.png")
    Image.fromarray(np.zeros((1, 60_000), np.uint8)).resize((9000, 9000)).save(d / "huge.png")
    np.savez(d / "unlabelled.npz", x=np.zeros((3, 28, 28), np.uint8))
    np.savez(d / "empty.npz", x=np.zeros((0, 28, 28), np.uint8), y=np.zeros(0, int))
    dense = k.Sequential([k.Input((28, 28, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    dense.save(d / "dense.keras")
    inputs = k.Input((28, 28, 1))
    k.Model(inputs, k.layers.Lambda(lambda t: t * 2.0)(inputs)).save(d / "lambda.keras")
    broken = k.Sequential([k.Input((28, 28, 1)), k.layers.Conv2D(2, 3, name="c")])
    kernel = np.ones((3, 3, 1, 2), np.float32)
    kernel[0, 0, 0, 0] = np.nan
    broken.get_layer("c").set_weights([kernel, np.zeros(2, np.float32)])
    broken.save(d / "nan.keras")
    return d


BAD_INPUTS = {
    "missing model": (["activations", "{tmp}/none.keras"], "model file not found"),
    "text as model": (["activations", "{tmp}/notes.h5"], "not a valid .h5 file"),
    "unknown layer": (["activations", "--layers", "conv2d_9"],
                      "unknown layer 'conv2d_9'; did you mean conv2d_3, conv2d_2, conv2d_1?"),
    "dense layer": (["activations", "--layers", "dense_1"], "layer 'dense_1' has no 2-D maps"),
    "digit 11": (["activations", "--digit", "11"], "class must be 0..9, got 11"),
    "digit -1": (["activations", "--digit", "-1"], "class must be 0..9, got -1"),
    "index past end": (["activations", "--index", "5000"], "index 5000 is outside"),
    "empty image": (["activations", "--image", "{tmp}/empty.png"], "is empty (0 bytes)"),
    "text image": (["activations", "--image", "{tmp}/text.png"], "cannot read image"),
    "missing image": (["activations", "--image", "{tmp}/gone.png"], "image file not found"),
    "two inputs": (["activations", "--digit", "1", "--index", "2"], "choose one input"),
    "bad scale": (["activations", "--scale", "log"], "unknown scale 'log'"),
    "bad train suffix": (["train", "--out", "{tmp}/m.pt"], "--out must end in .keras or .h5"),
    "bad schedule": (["train", "--schedule", "cosine"], "unknown schedule 'cosine'"),
    "bad conv list": (["train", "--conv", "a,b"], "--conv takes comma-separated whole numbers"),
    "a neuron of a dense layer": (["filters", "--layer", "dense_1", "--objective", "neuron"],
                                  "objective 'neuron' needs a layer with maps; 'dense_1' has "
                                  "units: use unit"),
    "filter past the end": (["filters", "--filters", "0-200"], "filter 200 is out of range"),
    "reversed range": (["filters", "--filters", "9-3"], "the start is after the end"),
    "negative filter": (["filters", "--filters", "-1"], "bad filter range '-1'"),
    "steps zero": (["filters", "--steps", "0"], "steps must be positive, got 0"),
    "unknown method": (["filters", "--method", "sgd"], "unknown method 'sgd'"),
    "batch zero": (["filters", "--batch", "0", "--steps", "1"], "batch must be positive"),
    "unknown param": (["filters", "--param", "cppn"], "unknown parameterization 'cppn'"),
    "bad order": (["filters", "--order", "random"], "unknown order 'random'"),
    "kernels of a pool": (["kernels", "--layer", "max_pooling2d_1"],
                          "has no 2-D convolution kernel"),
    "negative examples": (["filters", "--examples", "-2"], "--examples must be ≥ 0"),
    "patterns of a missing class": (["patterns", "--class", "11"], "class 11 is not in data set"),
    "patterns without labels": (["patterns", "--data", "{tmp}/unlabelled.npz"], "has no labels"),
    "patterns of an empty set": (["patterns", "--data", "{tmp}/empty.npz"], "no images (an empty"),
    "patterns of a flatten layer": (["patterns", "--layer", "flatten"],
                                    "layer 'flatten' has no 2-D maps"),
    "patterns unknown data": (["patterns", "--data", "imagenet"], "unknown data set 'imagenet'"),
    "explain unknown method": (["explain", "--method", "lime"],
                               "unknown attribution method 'lime'"),
    "explain bad target": (["explain", "--target", "12"], "class 12 is not an output"),
    "explain digit 10": (["explain", "--digit", "10"], "class must be 0..9, got 10"),
    "model is a folder": (["activations", "{tmp}/folder.keras"], "is a directory"),
    "empty model file": (["layers", "{tmp}/empty.keras"], "is empty (0 bytes)"),
    "text named .keras": (["layers", "{tmp}/notes.keras"], "not a valid .keras file"),
    "truncated .keras": (["activations", "{tmp}/truncated.keras"], "not a valid .keras file"),
    "model without conv": (["activations", "{tmp}/dense.keras"], "has no layer with 2-D maps"),
    "filters without conv": (["filters", "{tmp}/dense.keras"], "has no layer with 2-D maps"),
    "lambda needs --unsafe": (["layers", "{tmp}/lambda.keras"], "--unsafe"),
    "NaN weights": (["activations", "{tmp}/nan.keras"],
                    "the weights of layer 'c' contain NaN or Inf"),
    "1x1 image": (["activations", "--image", "{tmp}/dot.png"], "is 1×1 pixels: too small"),
    "huge image": (["activations", "--image", "{tmp}/huge.png"], "larger than 50 megapixels"),
    "image is a folder": (["activations", "--image", "{tmp}/folder.keras"], "is not a file"),
    "out under a file": (["activations", "--out", "{tmp}/a_file/out"], "cannot write to"),
    "resume with nothing": (["filters", "--resume"], "nothing to resume"),
    "checkpoint every NaN s": (["filters", "--checkpoint", "nan"],
                               "--checkpoint must be a number of seconds ≥ 0"),
    "train over a model": (["train", "--out", "{tmp}/dense.keras"],
                           "already exists: pass --force"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line(tmp_path, bad_dir, case):
    args, message = BAD_INPUTS[case]
    out = tmp_path / "out"
    args = [a.format(tmp=bad_dir, out=out) for a in args]
    if args[0] in ("activations", "filters", "kernels", "patterns", "explain") \
            and "--out" not in args:
        args += ["--out", str(out)]
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_filters_command_writes_both_galleries(tmp_path):
    result = run("filters", "--layer", "conv2d_1", "--filters", "0-3,7", "--steps", "5",
                 "--order", "activation", "--examples", "3", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "conv2d_1: 5 filters" in result.stdout
    assert re.search(r"\d+ of \d+ live filters \(\d+%\) beat their best real image", result.stdout)
    from cnnviz.results import FilterResult

    saved = FilterResult.load(tmp_path / "filters.npz")
    assert saved.filters.tolist() == [0, 1, 2, 3, 7] and saved.curves.shape == (5, 5)
    assert saved.best_real is not None and saved.params["steps"] == 5
    assert saved.example_images.shape == (5, 3, 28, 28, 1)
    np.testing.assert_array_equal(saved.example_values[:, 0], saved.best_real)
    assert (np.diff(saved.example_values, axis=1) <= 0).all()
    with Image.open(tmp_path / "filters.png") as png:
        assert png.format == "PNG"
    specs = figures((tmp_path / "filters.html").read_text())
    gallery, curves = specs
    assert [t["type"] for t in gallery["data"]] == ["heatmap", "heatmap"]
    hover = gallery["data"][1]
    assert "ratio to best real" in hover["hovertemplate"]
    custom = array(hover["customdata"]).reshape(-1, 6)
    custom = custom[np.isfinite(custom[:, 0])]
    order = np.argsort(-saved.activation, kind="stable")
    np.testing.assert_array_equal(custom[:, 0], saved.filters[order])
    np.testing.assert_allclose(custom[:, 1], saved.activation[order], rtol=1e-6)
    labels = [a["text"] for a in gallery["layout"]["annotations"]]
    assert labels[0].startswith(f"{saved.filters[order[0]]}: ")
    assert len(curves["data"]) == 5
    # Redraw from the saved results without recomputing.
    again = run("filters", "--from", tmp_path / "filters.npz", "--out", tmp_path / "redraw")
    assert again.exit_code == 0 and (tmp_path / "redraw" / "filters.html").exists()


def test_kernels_command(tmp_path, reference_model):
    result = run("kernels", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    specs = figures((tmp_path / "kernels.html").read_text())
    z = array(specs[0]["data"][0]["z"])
    kernel = np.asarray(reference_model.get_layer("conv2d_1").kernel)[:, :, 0, :]
    np.testing.assert_allclose(np.nanmax(z), kernel.max(), rtol=1e-6)
    assert int(np.isfinite(z).sum()) == 3 * 3 * 32
    assert specs[0]["data"][0]["zmin"] == -specs[0]["data"][0]["zmax"]  # centred on zero
    with Image.open(tmp_path / "kernels.png") as png:
        assert png.format == "PNG"


def test_patterns_command(tmp_path, mnist):
    result = run("patterns", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("class ")]
    assert len(lines) == 10
    assert lines[6].startswith("class 6: maps of conv2d_3 most above their mean over classes: ")
    from cnnviz.results import ClassPatterns

    saved = ClassPatterns.load(tmp_path / "patterns.npz")
    assert saved.layers == ["conv2d_3", "dense_1", "dense_2"]
    assert saved.counts.tolist() == np.bincount(mnist.y_test, minlength=10).tolist()
    top6 = [int(v) for v in lines[6].split(": ")[-1].split(", ")]
    assert top6 == saved.top_maps("conv2d_3")["6"]
    contrast = saved.means["conv2d_3"] - saved.means["conv2d_3"].mean(axis=0)
    assert top6 == np.argsort(-contrast[6], kind="stable")[:5].tolist()
    spec = figures((tmp_path / "patterns.html").read_text())[0]["data"][0]
    assert spec["colorscale"][0][1] != spec["colorscale"][-1][1] and spec["zmin"] == -spec["zmax"]
    raw = run("patterns", "--values", "means", "--no-dense", "--out", tmp_path / "raw")
    assert raw.exit_code == 0 and "highest means" in raw.stdout
    assert "zmin" not in figures((tmp_path / "raw" / "patterns.html").read_text())[0]["data"][0]
    # The output layer's mean probability is highest on the diagonal: a trained classifier.
    assert (np.argmax(saved.means["dense_2"], axis=1) == np.arange(10)).all()
    for name in saved.layers:
        assert (tmp_path / f"patterns_{name}.png").exists()
    spec = figures((tmp_path / "patterns.html").read_text())[0]
    assert [t["name"] for t in spec["data"]] == saved.layers
    menus = spec["layout"]["updatemenus"]
    assert len(menus[1]["buttons"]) == 12  # index, preferred class, one per class
    z = array(spec["data"][0]["z"])
    np.testing.assert_allclose(z, saved.contrast("conv2d_3").T, rtol=1e-6, atol=1e-9)
    one = run("patterns", "--class", "3", "--no-dense", "--out", tmp_path / "one")
    assert one.exit_code == 0 and one.stdout.count("maps of conv2d_3") == 1


def test_explain_command(tmp_path):
    result = run("explain", "--digit", "6", "--method", "integrated_gradients,all", "--out",
                 tmp_path)
    assert result.exit_code == 1 and "unknown attribution method 'all'" in result.stderr
    result = run("explain", "--digit", "6", "--method", "integrated_gradients,saliency,"
                 "smoothgrad,gradcam,gradcam++,layercam", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "class 6 explained (predicted 6" in result.stdout
    with Image.open(tmp_path / "explain_integrated_gradients.png") as png:
        assert png.format == "PNG"
    spec = figures((tmp_path / "explain.html").read_text())[0]
    assert len(spec["data"]) == 13  # the input, the input under each of six maps, the maps
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert titles == ["input", "integrated_gradients (signed)", "saliency (signed)",
                      "smoothgrad (signed)", "gradcam (≥ 0)", "gradcam++ (≥ 0)",
                      "layercam (≥ 0)"]  # in the order asked for
    maps = spec["data"][7:]
    assert [m["zmin"] == -m["zmax"] for m in maps] == [True] * 3 + [False] * 3
    assert all(m["colorbar"]["x"] > 0 for m in maps)  # each map has its own colour bar
    over, alone = (b["args"][0] for b in spec["layout"]["updatemenus"][0]["buttons"])
    assert alone["visible"] == [True] + [False] * 6 + [True] * 6  # the inputs under maps hide
    grey = [[0.0, "rgb(0,0,0)"], [1.0, "rgb(255,255,255)"]]
    assert over["colorscale"][:7] == alone["colorscale"][:7] == [grey] * 7  # inputs stay grey


def test_existing_output_needs_force(tmp_path):
    first = run("kernels", "--out", tmp_path)
    assert first.exit_code == 0
    before = (tmp_path / "kernels.html").read_bytes()
    second = run("kernels", "--out", tmp_path)
    assert second.exit_code == 1
    assert "already holds an earlier kernels run: pass --force" in second.stderr
    assert (tmp_path / "kernels.html").read_bytes() == before
    assert run("kernels", "--out", tmp_path, "--force").exit_code == 0


def test_unknown_backend_is_one_line():
    code = "from cnnviz.cli import main\nmain()"  # (layers reads the file without Keras)
    result = subprocess.run([sys.executable, "-c", code, "kernels"], capture_output=True,
                            text=True, env={**os.environ, "KERAS_BACKEND": "theano"})
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: unknown Keras backend 'theano' (KERAS_BACKEND): "
                                     "cnnviz runs on tensorflow or jax")


def test_image_conversions_are_noted(tmp_path):
    rgba = np.zeros((40, 30, 4), np.uint8)
    rgba[10:30, 10:20] = [255, 255, 255, 255]
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "palette.png")
    result = run("activations", "--image", tmp_path / "rgba.png", "--out", tmp_path / "a")
    assert result.exit_code == 0
    assert "note: rgba.png: alpha channel dropped" in result.stderr
    assert "note: rgba.png: resized from 30×40 to 28×28" in result.stderr
    palette = run("explain", "--image", tmp_path / "palette.png", "--out", tmp_path / "p")
    assert palette.exit_code == 0 and "palette image read as its colours" in palette.stderr


def test_interrupted_gallery_resumes_to_the_same_result(tmp_path, monkeypatch):
    import cnnviz.oip.optimize as engine

    args = ["filters", "--layer", "conv2d_2", "--filters", "0-5", "--steps", "3", "--batch",
            "2", "--no-reference", "--precursors", "0"]  # two filters a chunk, no short runs
    assert run(*args, "--out", tmp_path / "whole").exit_code == 0
    real_run = engine._Stepper.run
    calls = []

    def interrupted(self, raw, channels, affine, steps, on_step, **kw):
        calls.append(1)

        def step(snapshot):
            on_step(snapshot)
            if len(calls) == 2 and snapshot().step == 2:  # Ctrl-C in the second chunk
                raise KeyboardInterrupt

        return real_run(self, raw, channels, affine, steps, step, **kw)

    monkeypatch.setattr(engine._Stepper, "run", interrupted)
    cut = run(*args, "--out", tmp_path / "cut")
    assert cut.exit_code == 130
    assert "saved 2 of 6 filters and the 2 running filters at step 2; --resume continues" \
        in " ".join(cut.stderr.split())
    from cnnviz.results import FilterResult

    partial = FilterResult.load(tmp_path / "cut" / "filters.npz")
    assert partial.interrupted and partial.filters.tolist() == [0, 1]
    assert partial.pending.filters.tolist() == [2, 3] and partial.pending.step == 2
    monkeypatch.setattr(engine._Stepper, "run", real_run)
    resumed = run("filters", "--resume", "--out", tmp_path / "cut")
    assert resumed.exit_code == 0, resumed.output
    done = FilterResult.load(tmp_path / "cut" / "filters.npz")
    whole = FilterResult.load(tmp_path / "whole" / "filters.npz")
    assert not done.interrupted and done.filters.tolist() == list(range(6))
    # The same ascent, to float32 precision (the Fourier basis sums in another thread order).
    np.testing.assert_allclose(done.images, whole.images, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(done.activation, whole.activation, rtol=1e-5)


def test_same_seed_gives_byte_identical_results(tmp_path):
    args = ["filters", "--layer", "conv2d_1", "--filters", "0-2", "--steps", "4", "--jitter",
            "1", "--no-reference", "--seed", "3"]
    assert run(*args, "--out", tmp_path / "a").exit_code == 0
    assert run(*args, "--out", tmp_path / "b").exit_code == 0
    assert (tmp_path / "a" / "filters.npz").read_bytes() == \
        (tmp_path / "b" / "filters.npz").read_bytes()


def test_explain_several_inputs_draws_one_grid(tmp_path):
    result = run("explain", "--indices", "0-2,5", "--method", "saliency,gradcam,occlusion",
                 "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "4 inputs explained" not in result.stdout  # four titles fit
    assert "mnist-sample test image 5" in result.stdout
    from cnnviz.results import Attributions

    saved = Attributions.load(tmp_path / "explain.npz")
    assert saved.inputs.shape == (4, 28, 28, 1) and saved.methods == ["saliency", "gradcam",
                                                                      "occlusion"]
    assert saved.params["inputs"] == [f"mnist-sample test image {i}" for i in (0, 1, 2, 5)]
    with Image.open(tmp_path / "explain_grid.png") as png:
        assert png.size[0] > png.size[1] * 0.8  # four rows of four pictures
    page = (tmp_path / "explain.html").read_text()
    assert page.count("<img src=\"data:image/png;base64,") == 4 * 4
    assert not (tmp_path / "explain_saliency.png").exists()
    for args, message in (
            (["--indices", "0-99"], "names 100 images; one grid holds at most 64"),
            (["--indices", "9998-10000"], "index 10000 is out of range"),
            (["--indices", "3-1"], "bad index range '3-1': the start is after the end"),
            (["--indices", "0-3", "--digit", "2"], "--indices chooses the inputs itself")):
        bad = run("explain", *args, "--out", tmp_path / "bad")
        assert bad.exit_code == 1 and message in bad.output, bad.output
        assert not (tmp_path / "bad").exists()


def test_an_rgb_first_layer_is_drawn_in_colour(tmp_path):
    import keras as k

    inputs = k.Input((8, 8, 3))
    conv = k.layers.Conv2D(2, 3, name="c1")
    model = k.Model(inputs, k.layers.Flatten()(conv(inputs)))
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[..., 0, 0] = 1.0  # filter 0 reads only red: a red square
    kernel[..., 2, 1] = -2.0  # filter 1 is negative on blue: yellow-grey (R, G mid, B low)
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    model.save(tmp_path / "rgb.keras")
    result = run("kernels", tmp_path / "rgb.keras", "--out", tmp_path / "colour")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "colour" / "kernels.png") as png:
        pixels = np.asarray(png.convert("RGB")).reshape(-1, 3).astype(int)
    colours = {tuple(p) for p in pixels}
    assert (255, 128, 128) in colours  # red at 1 over mid-grey 0.5 elsewhere
    assert (128, 128, 0) in colours  # blue at −1: no blue
    one = run("kernels", tmp_path / "rgb.keras", "--channel", "2", "--out", tmp_path / "blue")
    assert one.exit_code == 0
    with Image.open(tmp_path / "blue" / "kernels.png") as png:
        assert (128, 128, 0) not in {tuple(p) for p in np.asarray(png.convert("RGB"))
                                     .reshape(-1, 3).astype(int)}  # the diverging map instead


def test_an_image_is_named_by_the_classes_of_the_data_given(tmp_path):
    import keras as k

    inputs = k.Input((8, 8, 3))
    outputs = k.layers.Dense(2, activation="softmax")(k.layers.Flatten()(
        k.layers.Conv2D(2, 3)(inputs)))
    k.Model(inputs, outputs).save(tmp_path / "two.keras")
    for name in ("cat", "dog"):
        (tmp_path / "pics" / name).mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(tmp_path / "pics" / name / "a.png")
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "x.png")
    alone = run("explain", tmp_path / "two.keras", "--image", tmp_path / "x.png", "--method",
                "saliency", "--out", tmp_path / "a")
    named = run("explain", tmp_path / "two.keras", "--image", tmp_path / "x.png", "--data",
                tmp_path / "pics", "--method", "saliency", "--out", tmp_path / "b")
    assert alone.exit_code == named.exit_code == 0, named.output
    assert re.search(r"class [01] explained", alone.stdout)
    assert re.search(r"class (cat|dog) explained", named.stdout), named.stdout
    several = run("explain", tmp_path / "two.keras", "--data", tmp_path / "pics", "--indices",
                  "0-1", "--method", "saliency", "--out", tmp_path / "c")
    assert several.exit_code == 0, several.output
    assert [line.split(":")[0] for line in several.stdout.splitlines()[:2]] == [
        "pics cat/a.png", "pics dog/a.png"]  # a folder's images are named by their files
