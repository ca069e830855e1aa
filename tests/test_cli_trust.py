"""Pictures a careful user can trust, from the command line: receptive fields in ``layers``,
presets, objectives and starts in ``filters``, baselines and checks in ``explain``."""

import json

import pytest
from plotly_page import figures
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.results import FilterResult

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def run(*args):
    return runner.invoke(app, [str(a) for a in args], env=WIDE)


def test_layers_prints_receptive_fields_and_strides():
    result = run("layers")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "conv2d_3" in line)
    assert "18×18" in row and row.rstrip(" │").endswith("4")
    assert "all" in next(line for line in result.stdout.splitlines() if "dense_2" in line)


def test_filters_default_preset_objective_and_classic(tmp_path):
    early = run("filters", "--layer", "conv2d_1", "--filters", "0-3", "--steps", "5",
                "--no-reference", "--out", tmp_path / "early")
    assert early.exit_code == 0, early.output
    assert "neuron(conv2d_1, centre)" in early.stdout and "the centre unit" in early.stdout
    saved = FilterResult.load(tmp_path / "early" / "filters.npz")
    # 26×26 maps: the centre unit (13, 13) sees pixels 13..15 of each axis
    assert saved.params["param"] == "fourier" and saved.params["crop"] == [13, 16, 13, 16]
    classic = run("filters", "--layer", "conv2d_1", "--filters", "0-3", "--steps", "5",
                  "--preset", "classic", "--objective", "channel", "--no-reference",
                  "--out", tmp_path / "classic")
    assert classic.exit_code == 0, classic.output
    params = json.loads((tmp_path / "classic" / "filters.json").read_text())["params"]
    assert (params["param"], params["objective_kind"], params["crop"]) == ("pixel", "channel",
                                                                           None)


def test_deepdream_from_a_digit(tmp_path):
    result = run("filters", "--objective", "layer", "--start", "digit:3", "--steps", "3",
                 "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "one image for all maps" in result.stdout and "started from" in result.stderr
    saved = FilterResult.load(tmp_path / "filters.npz")
    assert saved.images.shape == (1, 28, 28, 1) and saved.start_image.shape == (28, 28, 1)


def test_bad_trust_options_are_one_line_errors(tmp_path):
    for args, message in (
            (("filters", "--start", "index:abc"), "bad start 'index:abc'"),
            (("filters", "--objective", "pixels"), "unknown objective 'pixels'"),
            (("filters", "--preset", "lucid"), "unknown preset 'lucid'"),
            (("filters", "--colour", "imagenet"), "a colour basis needs a colour model"),
            (("explain", "--baseline", "white"), "unknown baseline 'white'"),
            (("explain", "--method", "cam"), "unknown attribution method 'cam'")):
        result = run(*args, "--out", tmp_path / "x")
        assert result.exit_code == 1, result.output
        assert message in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()


@pytest.mark.one_backend  # whole pages: the TensorFlow stage of CI runs it
def test_explain_prints_completeness_and_checks(tmp_path):
    result = run("explain", "--digit", "2", "--baseline", "blur", "--metrics",
                 "--method", "integrated_gradients,all", "--out", tmp_path)
    assert result.exit_code == 1  # all stands alone
    result = run("explain", "--digit", "2", "--baseline", "blur", "--metrics",
                 "--method", "all", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "integrated gradients from the blur baseline" in result.stdout
    for name in ("saliency", "smoothgrad", "integrated_gradients", "gradcam", "gradcam++",
                 "layercam", "occlusion", "rise"):
        line = next(x for x in result.stdout.splitlines() if x.strip().startswith(name + ":"))
        assert "deletion AUC" in line and "insertion AUC" in line and "at random" in line
        assert "Spearman after re-drawing every weight" in line
        assert "cascade from the top" in line
    assert "the class activation maps read layer conv2d_2 (the deepest layer whose maps are " \
        "at least 7×7" in result.stdout
    assert (tmp_path / "explain_saliency.png").exists()  # the first of all
    from cnnviz.results import Attributions

    saved = Attributions.load(tmp_path / "explain.npz")
    flagged = {n for n, c in saved.params["checks"].items() if c["flags"]}
    for name in flagged:  # each flag printed, and marked in the page
        assert f"⚠ {name} " in result.stdout
    page = (tmp_path / "explain.html").read_text()
    assert "Cascading randomization" in page and "Checks" in page
    titles = [a["text"] for a in figures(page)[0]["layout"]["annotations"]]
    assert flagged and {t.split()[1] for t in titles if t.startswith("⚠ ")} == flagged
    only = run("explain", "--digit", "2", "--method", "gradcam", "--out", tmp_path / "one")
    assert only.exit_code == 0 and "integrated gradients" not in only.stdout  # not computed

    assert Attributions.load(tmp_path / "one" / "explain.npz").methods == ["gradcam"]


def test_kernels_png_and_html_share_their_colours(tmp_path):
    from plotly_page import figures

    result = run("kernels", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    spec = figures((tmp_path / "kernels.html").read_text())[0]["data"][0]
    # matplotlib's RdBu_r in the PNG: positive weights red, as here
    assert spec["colorscale"][-1] == [1.0, "rgb(103,0,31)"]
    assert spec["colorscale"][0] == [0.0, "rgb(5,48,97)"]
    assert "weight %{z" in spec["hovertemplate"] and spec["zmin"] == -spec["zmax"]


def test_data_baselines_read_the_data(tmp_path):
    result = run("explain", "--digit", "4", "--baseline", "expected", "--method",
                 "integrated_gradients", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "integrated gradients from the expected baseline" in result.stdout
    assert "complete only on average over samples" in result.stdout
    mean = run("explain", "--digit", "4", "--baseline", "mean", "--method",
               "integrated_gradients", "--out", tmp_path / "m")
    assert mean.exit_code == 0, mean.output
    assert "from the mean baseline" in mean.stdout
