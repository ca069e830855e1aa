"""Your model, your data: every command on RGB models, a headless VGG16 of any input size, a
two-output model, and a folder of images with class names — never the bundled digits unasked."""

import re

import numpy as np
import pytest
from PIL import Image
from plotly_page import array, figures
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.results import Activations, Attributions, ClassPatterns, FilterResult

runner = CliRunner()
CLASSES = ("circle", "square", "stripes")


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four images of each of three shapes, in sizes from 20 to 47 pixels, RGB."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i in range(4):
            side = int(rng.integers(20, 48))
            yy, xx = np.mgrid[0:side, 0:side] / side
            masks = [(yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.1,
                     (abs(yy - 0.5) < 0.3) & (abs(xx - 0.5) < 0.3), (xx * 6 % 1) < 0.5]
            image = np.zeros((side, side, 3), np.uint8)
            image[masks[c]] = rng.integers(120, 256, 3)
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def rgb_path(k, tmp_path_factory):
    inputs = k.Input((16, 16, 3))
    x = k.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = k.layers.MaxPooling2D(name="pool")(x)
    x = k.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    outputs = k.layers.Dense(3, activation="softmax", name="shape")(x)
    path = tmp_path_factory.mktemp("rgb") / "rgb.keras"
    k.Model(inputs, outputs, name="shapes_net").save(path)
    return path


@pytest.fixture(scope="module")
def vgg_paths(k, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vgg")
    any_size = k.applications.VGG16(weights=None, include_top=False)
    any_size.save(folder / "vgg_any.keras")
    fixed = k.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    fixed.save(folder / "vgg64.keras")
    return folder / "vgg_any.keras", folder / "vgg64.keras"


def folder_file(folder, index: int) -> str:
    """The folder's ``index``-th image file as the data reader lists it."""
    from cnnviz.data.sources import open_source

    return open_source(folder).item_name(index)


def test_an_rgb_model_and_a_folder_through_every_command(tmp_path, rgb_path, folder):
    acts = run("activations", rgb_path, "--data", folder, "--digit", "1", "--out",
               tmp_path / "a")
    assert re.match(rf"{folder.name} (circle|square)/\d+\.png: ", acts.stdout)  # by its file
    saved = Activations.load(tmp_path / "a" / "activations.npz")
    assert saved.meta.classes == CLASSES and saved.inputs.shape == (1, 16, 16, 3)
    assert saved.meta.class_name(int(saved.labels[0])) == "square"
    panel = figures((tmp_path / "a" / "activations.html").read_text())[0]
    assert panel["layout"]["annotations"][0]["text"] == "input (label square)"
    assert list(panel["data"][1]["x"]) == list(CLASSES)

    run("filters", rgb_path, "--data", folder, "--examples", "2", "--steps", "3", "--out",
        tmp_path / "f")
    result = FilterResult.load(tmp_path / "f" / "filters.npz")
    assert result.meta.classes == CLASSES and result.example_labels.shape == (6, 2)
    assert result.example_images.shape == (6, 2, 16, 16, 3)
    hover = figures((tmp_path / "f" / "filters.html").read_text())[0]["data"][1]
    texts = [t for row in hover["text"] for t in row if t]
    assert len(texts) == 6 and all(t.startswith("classes of the real images: ") for t in texts)
    assert any(name in texts[0] for name in CLASSES)

    patterns = run("patterns", rgb_path, "--data", folder, "--out", tmp_path / "p")
    assert [line.split(":")[0] for line in patterns.stdout.splitlines()[:3]] == [
        f"class {name}" for name in CLASSES]
    saved = ClassPatterns.load(tmp_path / "p" / "patterns.npz")
    assert saved.class_names == CLASSES and saved.counts.tolist() == [4, 4, 4]
    heat = figures((tmp_path / "p" / "patterns.html").read_text())[0]["data"][0]
    assert list(heat["x"]) == list(CLASSES)

    explained = run("explain", rgb_path, "--data", folder, "--index", "9", "--out",
                    tmp_path / "e")
    predicted = explained.stdout.split("(predicted ")[1].split(",")[0]
    ninth = folder_file(folder, 9)  # the index names the folder's 10th file, in sorted order
    assert f"{folder.name} {ninth}: class " in explained.stdout and predicted in CLASSES
    assert Attributions.load(tmp_path / "e" / "explain.npz").meta.classes == CLASSES

    run("report", rgb_path, "--data", folder, "--steps", "2", "--examples", "2", "--out",
        tmp_path / "report.html")
    body = (tmp_path / "report.html").read_text().split("</head>")[1]  # past plotly.js
    assert "class circle (image" in body and "digit" not in body.lower()


@pytest.mark.slow
def test_vgg16_of_any_input_size(tmp_path, vgg_paths, folder):
    any_size, _ = vgg_paths
    Image.fromarray(np.full((40, 48, 3), 200, np.uint8)).save(tmp_path / "grey.png")
    acts = run("activations", any_size, "--image", tmp_path / "grey.png", "--layers",
               "block1_conv1,block5_conv3", "--out", tmp_path / "a")
    assert "output 1×1×512: strongest channels" in acts.stdout  # the image's own 40×48
    saved = Activations.load(tmp_path / "a" / "activations.npz")
    assert saved.inputs.shape == (1, 40, 48, 3) and saved.maps["block1_conv1"].shape[1:3] == (
        40, 48)
    sized = run("activations", any_size, "--image", tmp_path / "grey.png", "--size", "64,64",
                "--layers", "block1_conv1", "--out", tmp_path / "b")
    assert "resized from 48×40 to 64×64" in sized.stderr

    filters = run("filters", any_size, "--layer", "block1_conv1", "--filters", "0-3", "--steps",
                  "2", "--out", tmp_path / "f")
    assert "using 224×224 (choose with --size H,W)" in filters.stderr
    assert "comparison with real images skipped" in filters.stderr
    assert FilterResult.load(tmp_path / "f" / "filters.npz").images.shape == (4, 224, 224, 3)

    explained = run("explain", any_size, "--image", tmp_path / "grey.png", "--target",
                    "channel:0", "--method", "saliency,gradcam", "--out", tmp_path / "e")
    assert "channel 0 of the output explained (given" in explained.stdout
    attributions = Attributions.load(tmp_path / "e" / "explain.npz")
    assert attributions.targets.tolist() == [0] and attributions.maps["gradcam"].shape == (
        1, 40, 48)


@pytest.mark.slow
@pytest.mark.one_backend  # a whole page: the TensorFlow stage of CI rebuilds it
def test_a_report_of_vgg16_of_any_input_size(tmp_path, vgg_paths, folder):
    any_size, _ = vgg_paths
    run("report", any_size, "--data", folder, "--size", "32,32", "--steps", "1", "--examples",
        "1", "--layer", "block1_conv2", "--out", tmp_path / "report.html")
    assert "class square (image" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_vgg16_at_64_pixels_with_a_channel_target_of_a_layer(tmp_path, vgg_paths, folder):
    _, fixed = vgg_paths
    run("activations", fixed, "--data", folder, "--index", "0", "--layers", "block2_conv1",
        "--out", tmp_path / "a")
    # random weights: with VGG16's own caffe inputs (recognised by name) channel 3 may be dead
    explained = run("explain", fixed, "--data", folder, "--index", "5", "--target", "channel:3",
                    "--target-layer", "block3_conv1", "--method", "saliency,gradcam", "--out",
                    tmp_path / "e", "--preprocess", "unit")
    assert "channel 3 of block3_conv1 explained" in explained.stdout
    saliency = Attributions.load(tmp_path / "e" / "explain.npz").maps["saliency"]
    assert saliency.shape == (1, 64, 64, 3) and np.abs(saliency).max() > 0
    run("filters", fixed, "--layer", "block1_conv2", "--filters", "0-1", "--steps", "2",
        "--data", folder, "--examples", "1", "--out", tmp_path / "f")
    assert FilterResult.load(tmp_path / "f" / "filters.npz").example_images.shape == (
        2, 1, 64, 64, 3)


def test_a_two_output_model_uses_the_output_it_is_told(k, tmp_path):
    inputs = k.Input((12, 12, 1))
    x = k.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    x = k.layers.GlobalAveragePooling2D()(x)
    kind = k.layers.Dense(4, activation="softmax", name="kind")(x)
    box = k.layers.Dense(2, name="box")(x)
    path = tmp_path / "two.keras"
    k.Model(inputs, [kind, box], name="two").save(path)
    Image.fromarray(np.eye(12, dtype=np.uint8) * 255).save(tmp_path / "diag.png")
    first = run("activations", path, "--image", tmp_path / "diag.png", "--out", tmp_path / "a")
    assert "has 2 outputs (kind, box): using kind; --output picks another" in first.stderr
    assert Activations.load(tmp_path / "a" / "activations.npz").probabilities.shape == (1, 4)
    second = run("activations", path, "--image", tmp_path / "diag.png", "--output", "box",
                 "--out", tmp_path / "b")
    assert "largest: " in second.stdout and "has 2 outputs" not in second.stderr
    assert Activations.load(tmp_path / "b" / "activations.npz").probabilities.shape == (1, 2)
    explained = run("explain", path, "--image", tmp_path / "diag.png", "--output", "1",
                    "--target", "0", "--out", tmp_path / "e")
    assert "output 0 explained (largest: " in explained.stdout
    bad = runner.invoke(app, ["layers", str(path)])
    assert bad.exit_code == 0
    wrong = runner.invoke(app, ["activations", str(path), "--output", "boxes", "--image",
                                str(tmp_path / "diag.png"), "--out", str(tmp_path / "c")])
    assert wrong.exit_code == 1 and "has no output 'boxes'; outputs: kind, box" in wrong.stderr


def test_no_silent_mnist(tmp_path, rgb_path):
    report = run("report", rgb_path, "--steps", "2", "--out", tmp_path / "report.html")
    assert "the sections that need data skipped" in report.stderr
    body = (tmp_path / "report.html").read_text().split("</head>")[1]  # past plotly.js
    assert "digit" not in body.lower().replace("28×28×1 digits", "") and "mnist" not in body
    assert body.count("takes 16×16×3 images, not the bundled 28×28×1 digits") == 3
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "black.png")
    for args, message in [
        (["activations", rgb_path], "the input is missing: model 'shapes_net' takes 16×16×3 "
                                    "images"),
        (["patterns", rgb_path], "class patterns need labelled images"),
        (["explain", rgb_path, "--target", "nine"], "--target takes a class number"),
        (["activations", rgb_path, "--size", "8,8", "--image", tmp_path / "black.png"],
         "takes 16×16 images only: --size does not apply"),
        (["filters", rgb_path, "--data", tmp_path / "missing/"], "data not found"),
    ]:
        result = runner.invoke(app, [*map(str, args), "--out", str(tmp_path / "x")])
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
    filters = run("filters", rgb_path, "--steps", "2", "--out", tmp_path / "f")
    assert "live filters beat" not in filters.stdout
    assert FilterResult.load(tmp_path / "f" / "filters.npz").best_real is None


def test_html_examples_of_any_size_keep_their_values(tmp_path, rgb_path, folder):
    run("filters", rgb_path, "--data", folder, "--examples", "3", "--steps", "2", "--out",
        tmp_path)
    result = FilterResult.load(tmp_path / "filters.npz")
    hover = figures((tmp_path / "filters.html").read_text())[0]["data"][1]
    custom = array(hover["customdata"]).reshape(-1, 6)
    custom = custom[np.isfinite(custom[:, 0])]
    np.testing.assert_allclose(custom[:, 2], result.best_real, rtol=1e-6)
