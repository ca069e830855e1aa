"""The atlas: statistics of every map from one pass, merged exactly across shards."""

import numpy as np
import pytest

from cnnviz.atlas import MapStatistics, map_statistics, top_k
from cnnviz.core.errors import CnnvizError
from cnnviz.data.readers import ArraySource
from cnnviz.maps.activations import top_examples
from cnnviz.maps.patterns import class_patterns
from cnnviz.model.facts import as_facts


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (50, 6, 6), np.uint8)
    images[7] = images[3]  # a tie: the lower index must come first, merged or not
    return ArraySource(images, rng.integers(0, 3, 50), name="random")


def test_one_pass_gives_the_class_patterns_and_top_examples(tiny_model, data):
    facts = as_facts(tiny_model)
    stats = map_statistics(facts, data, ["conv", "pool"], k=4, batch_size=16)
    assert stats.counts.tolist() == np.bincount(data.labels(), minlength=3).tolist()
    patterns = class_patterns(facts, data, None, ["conv"])
    np.testing.assert_allclose(stats.mean("conv"), patterns.means["conv"], rtol=1e-6)
    index, values = top_examples(facts, "pool", data, 4)
    np.testing.assert_array_equal(stats.top_index["pool"], index)
    np.testing.assert_allclose(stats.top_values["pool"], values, rtol=1e-6)
    x = np.asarray(data.images, np.float64) / 255.0  # filter 1 of conv: centre pixel - 0.5
    centre = np.maximum(x[:, 1:5, 1:5] - 0.5, 0).mean(axis=(1, 2))
    spread = [centre[data.labels() == c].std() for c in range(3)]
    np.testing.assert_allclose(stats.std("conv")[:, 1], spread, atol=1e-6)


def test_shards_merge_to_one_pass(tiny_model, data, tmp_path):
    facts = as_facts(tiny_model)
    whole = map_statistics(facts, data, ["conv", "pool"], k=5)
    parts = [map_statistics(facts, data, ["conv", "pool"], k=5, start=a, stop=b)
             for a, b in ((0, 5), (5, 32), (32, 50))]
    parts[1].save(tmp_path / "part.npz")
    parts[1] = MapStatistics.load(tmp_path / "part.npz")  # read back as a resumed run does
    merged = parts[2].merged(parts[0]).merged(parts[1])  # in any order
    assert (merged.start, merged.stop) == (0, 50)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    for layer in ("conv", "pool"):
        np.testing.assert_allclose(merged.sums[layer], whole.sums[layer], rtol=1e-12)
        np.testing.assert_allclose(merged.squares[layer], whole.squares[layer], rtol=1e-12)
        np.testing.assert_array_equal(merged.top_index[layer], whole.top_index[layer])
        np.testing.assert_array_equal(merged.top_values[layer], whole.top_values[layer])
    with pytest.raises(CnnvizError, match="other layers"):
        whole.merged(map_statistics(facts, data, ["conv"], k=5))
    with pytest.raises(CnnvizError, match="outside random"):
        map_statistics(facts, data, ["conv"], start=40, stop=60)


def test_top_k_keeps_the_lower_index_among_equals():
    values, index = top_k(np.array([[1.0, 3.0, 3.0, 2.0]]), np.array([[0, 9, 4, 2]]), 3)
    assert values.tolist() == [[3.0, 3.0, 2.0]] and index.tolist() == [[4, 9, 2]]


# --- the atlas job: resumable parts and the site -----------------------------------------------

@pytest.fixture(scope="module")
def two_convs(k):
    """8×8×1 → conv "a" (4 filters) → conv "b" (6 filters) → dense (3 classes)."""
    rng = np.random.default_rng(5)
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(4, 3, activation="relu", name="a"),
                          k.layers.Conv2D(6, 3, activation="relu", name="b"),
                          k.layers.Flatten(), k.layers.Dense(3, activation="softmax")],
                         name="two_convs")
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.5 + 0.05
                           for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(9)
    return ArraySource(rng.integers(0, 256, (40, 8, 8), np.uint8), rng.integers(0, 3, 40),
                       class_names=("zero", "one", "two"), name="noise digits")


def test_an_interrupted_atlas_continues_to_the_same_parts(two_convs, digits, tmp_path,
                                                          monkeypatch):
    import importlib

    from cnnviz.atlas.build import AtlasSpec, compute_parts
    from cnnviz.jobs.atlas import atlas_job

    build = importlib.import_module("cnnviz.atlas.build")
    facts = as_facts(two_convs)
    spec = AtlasSpec(k=3, steps=6, chunk=4, shard=16)
    whole = compute_parts(facts, tmp_path / "whole", digits, spec)
    real = build.visualize_filters
    calls = []

    def stop_at_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # parts a:0-4, b:0-4 done; Ctrl-C in b:4-6
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "visualize_filters", stop_at_the_third)
    stopped = atlas_job(facts, tmp_path / "site", spec, data=digits)
    assert stopped.interrupted.startswith("kept 2 finished parts in ") and \
        stopped.interrupted.endswith("the same command continues from them")
    monkeypatch.setattr(build, "visualize_filters", real)
    kept = sorted(p.name for p in (tmp_path / "site" / "parts").rglob("*.npz"))
    assert kept == ["filters-00000-00004.npz", "filters-00000-00004.npz"]
    outcome = atlas_job(facts, tmp_path / "site", spec, data=digits)
    assert "3 layers, 10 filters and 3 classes" in outcome.lines[0]
    assert "5 parts computed, 2 reused" in outcome.lines[0]  # b:4-6, the classes, 3 shards
    again = compute_parts(facts, tmp_path / "site" / "parts", digits, spec)
    assert again.computed == 0 and again.reused == 7
    for layer in ("a", "b"):
        np.testing.assert_array_equal(again.filters[layer].images, whole.filters[layer].images)
        np.testing.assert_array_equal(again.filters[layer].filters, np.arange(4 if layer == "a"
                                                                                else 6))
        np.testing.assert_array_equal(again.statistics.top_index[layer],
                                      whole.statistics.top_index[layer])
    np.testing.assert_array_equal(again.statistics.counts, whole.statistics.counts)
    with pytest.raises(CnnvizError, match="parts of an atlas of another spec"):
        compute_parts(facts, tmp_path / "site" / "parts", digits, AtlasSpec(k=3, steps=7))
    with pytest.raises(CnnvizError, match="already holds an earlier atlas run"):
        atlas_job(facts, tmp_path / "site", spec, data=digits)
    site = tmp_path / "site"
    assert (site / "index.html").exists() and (site / "b.html").exists()
    assert (site / "img" / "b" / "5-top.png").exists() and (site / "img" / "a" / "0-kernel.png")
    from cnnviz.model.heads import output_layer

    name = output_layer(two_convs)  # the classes page: the logits, named by the data's classes
    page = (site / f"{name}.html").read_text()
    assert "3 classes" in page and ">zero: " in page and ">two: " in page
    assert "what the model takes each class to be" in page
    assert f"{name}</a> (classes)</td>" in (site / "index.html").read_text()


def test_a_part_stopped_mid_ascent_continues_from_its_step(two_convs, digits, tmp_path,
                                                           monkeypatch):
    """Ctrl-C inside an ascent part keeps that part as it stood (its images, moments and
    step); the next run continues it, to the uninterrupted atlas's images."""
    import importlib

    from cnnviz.atlas.build import AtlasSpec, compute_parts
    from cnnviz.jobs.atlas import atlas_job

    facts = as_facts(two_convs)
    spec = AtlasSpec(k=3, steps=8, chunk=4, shard=16)
    whole = compute_parts(facts, tmp_path / "whole", digits, spec)
    seen = []

    per_part = 1 + 8  # the default's precursors (a fifth of 8 steps: 1), then the 8 steps

    def ctrl_c_in_the_third_part(done, total):
        seen.append(done)
        if done >= 2 * per_part + 1 + 5:  # a:0-4 and b:0-4 done, b:4-6 five steps in
            raise KeyboardInterrupt

    stopped = atlas_job(facts, tmp_path / "site", spec, data=digits,
                        progress=ctrl_c_in_the_third_part)
    assert stopped.interrupted.startswith("kept 2 finished parts and 1 running one as it "
                                          "stood in ")
    stood = tmp_path / "site" / "parts" / "b" / "filters-00004-00006.partial.npz"
    assert stood.exists()
    from cnnviz.results import FilterResult

    assert FilterResult.load(stood).pending.step == 5
    build = importlib.import_module("cnnviz.atlas.build")
    resumed, real = [], build.resume_filters
    monkeypatch.setattr(build, "resume_filters",
                        lambda facts, previous, **kw: resumed.append(previous.pending.step)
                        or real(facts, previous, **kw))
    outcome = atlas_job(facts, tmp_path / "site", spec, data=digits)
    assert resumed == [5]
    assert "5 parts computed, 2 reused" in outcome.lines[0] and not stood.exists()
    again = compute_parts(facts, tmp_path / "site" / "parts", digits, spec)
    np.testing.assert_allclose(again.filters["b"].images, whole.filters["b"].images,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again.filters["b"].activation, whole.filters["b"].activation,
                               rtol=1e-5)


def test_a_data_shard_stopped_mid_pass_continues_from_its_images(two_convs, digits):
    """Ctrl-C inside a statistics shard hands over the statistics of the batches seen; the
    part continued from them equals the shard computed in one pass."""
    from cnnviz.atlas.build import AtlasSpec, compute_part
    from cnnviz.core.errors import Stopped
    from cnnviz.parts.engine import Part

    facts = as_facts(two_convs)

    def ctrl_c(done, total):
        if done >= 16:
            raise KeyboardInterrupt

    with pytest.raises(Stopped) as stop:
        map_statistics(facts, digits, ["a", "b"], 3, start=4, stop=36, batch_size=8,
                       on_progress=ctrl_c)
    seen = stop.value.state
    assert (seen.start, seen.stop, int(seen.counts.sum())) == (4, 20, 16)
    part, spec = Part("", 4, 36, 32), AtlasSpec(k=3)
    whole = compute_part(facts, digits, spec, ["a", "b"], part)
    again = compute_part(facts, digits, spec, ["a", "b"], part, resume=seen)
    assert (again.start, again.stop) == (4, 36)
    np.testing.assert_array_equal(again.counts, whole.counts)
    for layer in ("a", "b"):
        np.testing.assert_array_equal(again.top_index[layer], whole.top_index[layer])
        np.testing.assert_allclose(again.sums[layer], whole.sums[layer], rtol=1e-6)  # float32 maps
    assert compute_part(facts, digits, spec, ["a", "b"], Part("", 4, 20, 16), resume=seen) \
        is seen


@pytest.mark.slow
def test_a_layer_of_512_filters_opens_fast_and_shows_a_filter(k, digits, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    import shutil
    import time

    from cnnviz.atlas.build import AtlasSpec
    from cnnviz.jobs.atlas import atlas_job

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium")
    wide = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(512, 3, name="wide")], name="wide")
    atlas_job(as_facts(wide), tmp_path, AtlasSpec(k=2, steps=2, chunk=512), data=digits)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        opened = []
        for _ in range(2):  # the faster of two openings: a busy machine slows one of them
            begin = time.perf_counter()
            page.goto((tmp_path / "wide.html").as_uri())
            page.wait_for_load_state("load")
            opened.append(time.perf_counter() - begin)
        loaded = page.evaluate("[...document.images].filter(i => i.complete && "
                               "i.naturalWidth).length")
        page.click(".tile[data-i='300']")
        page.wait_for_function("document.querySelector('#profile .main-svg') !== null")
        text = page.inner_text("#detail")
        browser.close()
    assert min(opened) < 2.0, f"the 512-filter page took {opened} s to open"
    assert 0 < loaded < 512  # thumbnails load as they scroll into view
    assert "wide · filter 300" in text and "#" in text and not errors


@pytest.mark.slow
def test_a_ray_cluster_computes_the_same_parts(two_convs, digits, tmp_path):
    pytest.importorskip("ray")
    from cnnviz.atlas.build import AtlasSpec, compute_parts
    from cnnviz.parts.cluster import RayRunner

    facts = as_facts(two_convs)
    spec = AtlasSpec(k=3, steps=6, chunk=4, shard=16)
    here = compute_parts(facts, tmp_path / "here", digits, spec)
    there = compute_parts(facts, tmp_path / "there", digits, spec,
                          runner=RayRunner("local", cpus=2))
    assert there.computed == 7 and sorted(p.name for p in (tmp_path / "there").rglob("*.npz")) \
        == sorted(p.name for p in (tmp_path / "here").rglob("*.npz"))
    for layer in ("a", "b"):
        np.testing.assert_array_equal(there.filters[layer].images, here.filters[layer].images)
        np.testing.assert_array_equal(there.statistics.top_index[layer],
                                      here.statistics.top_index[layer])
        np.testing.assert_allclose(there.statistics.sums[layer], here.statistics.sums[layer],
                                   rtol=1e-12)
    np.testing.assert_array_equal(there.statistics.counts, here.statistics.counts)


def test_links_and_images_resolve_for_names_that_need_escaping(k, digits, tmp_path):
    """Layer files are named with a literal %XX (upper case, a nested model's "/", symbols);
    every href and src, decoded as a browser decodes it, names a file that exists."""
    import re
    from urllib.parse import unquote

    from cnnviz.atlas.build import AtlasSpec
    from cnnviz.jobs.atlas import atlas_job

    inner = k.Sequential([k.Input((6, 6, 2)), k.layers.Conv2D(3, 3, name="Conv-1")], name="base")
    inputs = k.Input((8, 8, 1))
    maps = k.layers.Conv2D(2, 3, activation="relu", name="Big.Conv")(inputs)
    x = k.layers.Flatten()(inner(maps))
    facts = as_facts(k.Model(inputs, k.layers.Dense(3, activation="softmax")(x)))
    site = tmp_path / "site"
    atlas_job(facts, site, AtlasSpec(layers=("Big.Conv", "base/Conv-1"), k=2, steps=2),
              data=digits)
    pages = sorted(site.glob("*.html"))
    assert len(pages) == 3 and any("%" in p.name for p in pages)
    for page in pages:
        text = page.read_text()
        links = re.findall(r'(?:href|src)="([^"#\'+]+)"', text) + re.findall(
            r'"(?:img|top|kernel)": "([^"]+)"', text)
        assert len(links) > 3, page.name
        for link in links:
            if not link.startswith("http"):
                assert (site / unquote(link)).is_file(), (page.name, link)
