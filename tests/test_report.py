"""The report: one self-contained HTML file, opened in headless Chromium."""

import os
import shutil
from pathlib import Path

import pytest
from plotly_page import figures
from typer.testing import CliRunner

from cnnviz.cli import app

# whole pages built end to end: CI's JAX stage leaves them to the TensorFlow stage
pytestmark = pytest.mark.one_backend

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("CNNVIZ_ARTIFACTS", Path(__file__).parent.parent /
                                "test-artifacts"))
SECTIONS = ["Model cnnviz_reference_cnn", "Activation maps", "Optimal input patterns of conv2d_3",
            "What the model takes each class to be", "Class activation patterns",
            "Attribution maps", "Checks", "Cascading randomization"]


def _launch(playwright):
    """Debian's Chromium, headless, with nothing that reaches for the network."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"])


def _page(browser, errors, width, height):
    """A new page whose console errors and page errors land in ``errors``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    runner = CliRunner()
    saved = runner.invoke(app, ["filters", "--filters", "0-7", "--steps", "4", "--examples", "2",
                                "--out", str(out / "results" / "filters")])
    assert saved.exit_code == 0, saved.output
    result = runner.invoke(app, ["report", "--from", str(out / "results"), "--out",
                                 str(out / "report.html")])
    assert result.exit_code == 0, result.output
    return out / "report.html"


def test_report_is_self_contained_and_reuses_saved_results(report):
    page = report.read_text()
    assert "<script src=" not in page and page.count("Plotly.newPlot") == 6  # + the cascade
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in page
    specs = {spec["id"]: spec for spec in figures(page)}
    assert len(specs["activation-maps"]["data"]) == 10 * 5  # ten digits × five layers
    gallery = specs["figure-2"]["layout"]["title"]["text"]
    assert gallery == "conv2d_3: 8 filters (map mean), 4 steps"  # the saved run, not recomputed
    classes = specs["figure-3"]["layout"]
    assert classes["title"]["text"].startswith("dense_2: 10 classes (the class logit before")
    assert [a["text"].split(":")[0] for a in classes["annotations"]] == \
        [str(c) for c in range(10)]  # named by the data's classes


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_report_in_headless_chromium(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    errors = []
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = _page(browser, errors, 1200, 1600)
        page.goto(report.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length"
                               " >= 4")
        assert page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)") == SECTIONS
        visible = ("() => document.getElementById('activation-maps').data"
                   ".filter(t => t.visible === true).map(t => t.name)")
        assert page.evaluate(visible) == ["class 0 (image 839): predicted 0 · conv2d_1"]
        page.select_option("#activation-maps-layer", "2")
        page.wait_for_function(visible.replace("() =>", "() => (") + ")[0].endsWith('conv2d_2')")
        page.select_option("#activation-maps-input", "6")
        shown = page.evaluate(visible)
        assert len(shown) == 1 and shown[0].startswith("class 6") and "conv2d_2" in shown[0]
        for div in ("figure-2", "figure-3", "figure-4"):
            assert page.eval_on_selector(f"#{div} .main-svg", "e => e.getBBox().height") > 100
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
        browser.close()
    assert errors == []


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_pages_sharing_one_plotly_js_render_in_headless_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    runner = CliRunner()
    for args in (["kernels"], ["activations", "--digit", "4"]):
        assert runner.invoke(app, [*args, "--out", str(tmp_path)]).exit_code == 0
    errors = []
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = _page(browser, errors, 1100, 900)
        for name, plots in (("kernels.html", 1), ("activations.html", 2)):
            page.goto((tmp_path / name).as_uri())
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg')"
                                   f".length >= {plots}")
            assert page.evaluate("typeof Plotly.newPlot") == "function"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "activations-shared-js.png"), full_page=False)
        browser.close()
    assert errors == []


@pytest.mark.slow
def test_gallery_rebuilds_reproducibly(tmp_path):
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(app, ["gallery", "--out", str(tmp_path / name), "--steps", "3"])
        assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file())
    assert {f.parts[0] for f in files} == {"activations", "filters", "classes", "kernels",
                                           "patterns", "explain", "report.html",
                                           ".cnnviz-report-report.html.json"}  # its manifest
    assert any(f.suffix == ".png" for f in files) and any(f.suffix == ".npz" for f in files)
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    # Like every command, the gallery is not overwritten without --force.
    again = runner.invoke(app, ["gallery", "--out", str(tmp_path / "a"), "--steps", "3"])
    assert again.exit_code == 1 and "already holds an earlier activations run: pass --force" \
        in again.stderr


def test_the_report_checks_small_models_and_says_what_to_run_for_big_ones(tiny_model,
                                                                         monkeypatch):
    import numpy as np

    from cnnviz.model.facts import as_facts
    from cnnviz.report import build

    facts = as_facts(tiny_model, "unit")
    x = np.random.default_rng(0).random((3, 6, 6, 1)).astype(np.float32)
    labels = ["class 0", "class 1", "class 2"]
    checked = build._attribution_sections(facts, x, labels, None, 0, lambda m: None)
    assert [h for h, _ in checked] == ["Attribution maps", "Checks", "Cascading randomization"]
    assert "Medians over 3 inputs" in checked[1][1]
    monkeypatch.setattr(build, "CHECKED_PARAMETERS", 10)
    big = build._attribution_sections(facts, x, labels, None, 0, lambda m: None)
    assert [h for h, _ in big] == ["Attribution maps", "Checks"]
    assert "more than the 10 the report checks" in big[1][1] and "--metrics" in big[1][1]
    titles = [a["text"] for a in big[0][1].layout.annotations]
    assert titles[0] == "input" and not any("rise" in t for t in titles)  # 1000 masks: skipped
