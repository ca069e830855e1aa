"""Watching a network learn: snapshot callbacks during fit, and the evolution page."""

from __future__ import annotations

import numpy as np
import pytest
from plotly_page import figures

from cnnviz.core.backend import backend_name
from cnnviz.core.errors import CnnvizError


@pytest.fixture()
def learner(k):
    """8×8×1 → conv "c" (3 filters, relu) → flatten → dense 2, and a toy data set."""
    k.utils.set_random_seed(4)
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(3, 3, activation="relu",
                                                              name="c"),
                          k.layers.Flatten(), k.layers.Dense(2, activation="softmax")],
                         name="learner")
    model.compile(optimizer=k.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.random((64, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    return model, x, y


def test_filter_snapshots_keep_the_patterns_as_they_were(learner, tmp_path):
    from cnnviz.model.facts import as_facts
    from cnnviz.oip.filters import visualize_filters
    from cnnviz.oip.presets import preset
    from cnnviz.results import FilterResult
    from cnnviz.training.callbacks import FilterSnapshots

    model, x, y = learner
    settings = preset("default", as_facts(model), "c", (8, 8, 1), seed=0, steps=6)
    before = visualize_filters(as_facts(model), "c", None, settings)
    watcher = FilterSnapshots("c", tmp_path, every=2, steps=6, log_dir=tmp_path / "logs")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[watcher])
    after = visualize_filters(as_facts(model), "c", None, settings)
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == ["epoch_0000.json", "epoch_0000.npz", "epoch_0000.png",
                     "epoch_0002.json", "epoch_0002.npz", "epoch_0002.png"]
    first = FilterResult.load(tmp_path / "c" / "epoch_0000.npz")
    np.testing.assert_allclose(first.images, before.images, atol=1e-6)
    np.testing.assert_allclose(first.output, before.output, rtol=1e-5)
    assert first.params["epoch"] == 0
    last = FilterResult.load(tmp_path / "c" / "epoch_0002.npz")
    assert not np.allclose(last.output, after.output, rtol=1e-3)  # one more epoch since
    import importlib.util

    if backend_name() == "tensorflow" and importlib.util.find_spec("tensorboard"):
        assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))
    with pytest.raises(CnnvizError, match="every N epochs"):
        FilterSnapshots("c", tmp_path, every=0)


def test_activation_snapshots_are_the_maps_after_each_epoch(learner, tmp_path):
    from cnnviz.maps.activations import activations
    from cnnviz.results import Activations
    from cnnviz.training.callbacks import ActivationSnapshots

    model, x, y = learner
    watcher = ActivationSnapshots(x[:2], tmp_path, layers=["c"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[watcher])
    last = Activations.load(tmp_path / "activations" / "epoch_0002.npz")
    np.testing.assert_allclose(last.maps["c"], activations(model, x[:2], ["c"]).maps["c"],
                               atol=1e-5)
    assert (tmp_path / "activations" / "epoch_0001_c.png").exists()
    with pytest.raises(CnnvizError, match="model-ready"):
        ActivationSnapshots(x[0], tmp_path)


def test_the_evolution_page_plays_every_snapshot(learner, tmp_path):
    from cnnviz.jobs import evolution_job
    from cnnviz.training.callbacks import ActivationSnapshots, FilterSnapshots

    model, x, y = learner
    model.fit(x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[FilterSnapshots("c", tmp_path, steps=4),
                         ActivationSnapshots(x[:1], tmp_path)])
    outcome = evolution_job(tmp_path)
    assert outcome.lines[0] == "c: 4 snapshots (epochs 0–3) of 3 filters"
    assert sorted(p.name for p in outcome.written) == ["evolution_c.html", "evolution_c.png",
                                                       "plotly.min.js"]
    text = (tmp_path / "evolution_c.html").read_text()
    spec = figures(text)[0]
    assert [f["name"] for f in spec["frames"]] == ["0", "1", "2", "3"]
    assert [s["label"] for s in spec["layout"]["sliders"][0]["steps"]] == ["0", "1", "2", "3"]
    with pytest.raises(CnnvizError, match="already exists"):
        evolution_job(tmp_path)
    with pytest.raises(CnnvizError, match="holds no filter snapshots"):
        evolution_job(tmp_path / "activations")


def test_compiled_functions_follow_changed_weights(learner):
    """Compiled passes are kept per model; new weights (training, set_weights) get new ones
    (a JAX function holds the weights it was traced with)."""
    from cnnviz.maps.activations import channel_means
    from cnnviz.model.facts import as_facts
    from cnnviz.oip.filters import visualize_filters
    from cnnviz.oip.presets import preset

    model, x, _ = learner
    settings = preset("default", as_facts(model), "c", (8, 8, 1), seed=0, steps=4)
    before = visualize_filters(model, "c", None, settings).output
    means = channel_means(model, "c", x[:4], preactivation=True)
    kernel, bias = model.get_layer("c").get_weights()
    model.get_layer("c").set_weights([2 * kernel, 2 * bias])
    np.testing.assert_allclose(visualize_filters(model, "c", None, settings).output,
                               2 * before, rtol=1e-5)
    np.testing.assert_allclose(channel_means(model, "c", x[:4], preactivation=True),
                               2 * means, rtol=1e-5)
