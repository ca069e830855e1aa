import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.errors import CnnvizError
from cnnviz.data import Dataset
from cnnviz.model.facts import load_model
from cnnviz.training.train import build_cnn, learning_rate_schedule, save_model, train

runner = CliRunner()


def test_reference_architecture():
    model = build_cnn()
    rows = [(layer.name, layer.count_params()) for layer in model.layers]
    assert rows == [("rescaling", 0), ("conv2d_1", 320), ("max_pooling2d_1", 0),
                    ("conv2d_2", 18_496), ("max_pooling2d_2", 0), ("conv2d_3", 73_856),
                    ("flatten", 0), ("dense_1", 138_360), ("dense_2", 1_210)]
    assert model.get_layer("conv2d_3").get_config()["activation"] == "relu"
    assert model.get_layer("dense_2").get_config()["activation"] == "softmax"


def test_layer_lists_and_regularizer():
    model = build_cnn((8, 16), pool_after=(2,), dense_units=(20, 10), n_classes=3, l2=0.01,
                      rescale=None)
    assert [layer.name for layer in model.layers] == [
        "conv2d_1", "conv2d_2", "max_pooling2d_1", "flatten", "dense_1", "dense_2", "dense_3"]
    assert model.output_shape == (None, 3)
    assert model.get_layer("dense_1").kernel_regularizer.get_config()["l2"] == pytest.approx(0.01)
    assert model.get_layer("conv2d_1").kernel_regularizer is None


def test_learning_rate_schedules():
    inverse = learning_rate_schedule("inverse_time", 1e-3, decay_steps=1000, decay_rate=0.5)
    assert float(inverse(0)) == pytest.approx(1e-3)
    assert float(inverse(2000)) == pytest.approx(1e-3 / (1 + 0.5 * 2))
    exponential = learning_rate_schedule("exponential", 1e-3, decay_steps=1000, decay_rate=0.5)
    assert float(exponential(1000)) == pytest.approx(5e-4)
    assert float(exponential(3000)) == pytest.approx(1.25e-4)
    assert learning_rate_schedule("constant", 0.01) == 0.01
    with pytest.raises(CnnvizError, match="unknown schedule 'cosine'"):
        learning_rate_schedule("cosine")


def test_default_schedules_are_the_seed_blogs():
    blog = learning_rate_schedule("InverseTimeDecay")  # Keras's name works too
    for step in (0, 1, 100, 6000):  # the blog's printed rates: lr / (1 + 0.001·step)
        assert float(blog(step)) == pytest.approx(1e-3 / (1 + 0.001 * step))
    halving = learning_rate_schedule("exponential")
    assert float(halving(1000)) == pytest.approx(5e-4)
    with pytest.raises(CnnvizError, match="positive"):
        learning_rate_schedule("inverse_time", decay_steps=0)


def _toy_dataset(n: int = 600) -> Dataset:
    """Two classes: a bright bar in the top half or the bottom half of a noisy 12×12 image."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, 12, 12)).astype(np.uint8)
    for image, label in zip(images, labels, strict=True):
        row = rng.integers(1, 5) + 6 * label
        image[row, 2:10] = 255
    return Dataset("toy", images[:500], labels[:500], images[500:], labels[500:], ("top", "bottom"))


def test_training_learns_and_reports_progress(tmp_path):
    seen = []
    data = _toy_dataset()
    model = build_cnn((4,), pool_after=(1,), dense_units=(8,), n_classes=2,
                      input_shape=(12, 12, 1))
    result = train(data, model=model, epochs=3, batch_size=50, learning_rate=3e-3,
                   decay_steps=10, decay_rate=1.0, validation=None,
                   on_progress=lambda epoch, step, logs: seen.append((epoch, step, logs["lr"])))
    assert result.test_accuracy >= 0.9
    losses = result.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert [(e, s) for e, s, _ in seen][:2] == [(0, 1), (0, 2)] and seen[-1][:2] == (2, 10)
    # InverseTimeDecay(3e-3, 10, 1.0) after 30 steps: 3e-3 / (1 + 30 / 10).
    assert seen[-1][2] == pytest.approx(3e-3 / 4, rel=1e-5)
    path = save_model(result.model, tmp_path / "toy.keras")
    x = data.x_test[:, :, :, None].astype(np.float32)
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0),
                               result.model.predict(x, verbose=0), rtol=1e-6)


def test_train_rejects_bad_settings():
    with pytest.raises(CnnvizError, match="must be positive"):
        train(_toy_dataset(), epochs=0)
    with pytest.raises(CnnvizError, match="must end in .keras or .h5"):
        save_model(build_cnn((2,), (), (2,)), "model.pt")


def test_validation_history_and_learning_rates():
    data = _toy_dataset()
    model = build_cnn((4,), pool_after=(1,), dense_units=(8,), n_classes=2,
                      input_shape=(12, 12, 1))
    result = train(data, model=model, epochs=2, batch_size=50, validation=0.1)
    history = result.history
    assert sorted(history) == ["accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 2 for v in history.values())
    assert result.validation == "50 held-out training images"
    steps = 450 // 50  # per epoch, after holding out 50 of the 500
    assert history["learning_rate"] == pytest.approx(
        [1e-3 / (1 + 0.001 * steps * e) for e in (1, 2)], rel=1e-5)
    held = train(data, model=model, epochs=1, batch_size=50, validation="test")
    assert held.history["val_loss"][0] == pytest.approx(held.test_loss, rel=1e-5)
    with pytest.raises(CnnvizError, match="fraction between 0 and 1"):
        train(data, epochs=1, validation=1.5)


def test_standardizing_layer_centres_the_training_pixels(tmp_path):
    from cnnviz.training.train import pixel_statistics

    data = _toy_dataset()
    pixels = data.x_train[..., None] / 255.0
    mean, variance = pixel_statistics(pixels)
    model = build_cnn((4,), pool_after=(1,), dense_units=(8,), n_classes=2,
                      input_shape=(12, 12, 1), standardize=(mean, variance))
    assert [layer.name for layer in model.layers][:2] == ["rescaling", "standardize"]
    inside = model.get_layer("standardize")(model.get_layer("rescaling")(
        data.x_train[..., None].astype(np.float32)))
    inside = np.asarray(inside, np.float64)
    np.testing.assert_allclose(inside.mean(axis=0), 0.0, atol=1e-5)
    spread = inside.std(axis=0)
    np.testing.assert_allclose(spread[variance > 1e-12], 1.0, rtol=1e-3)
    path = save_model(model, tmp_path / "standard.keras")
    x = data.x_test[..., None].astype(np.float32)
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)


def test_standardizing_statistics_cover_only_the_pixels_trained_on():
    from cnnviz.training.train import pixel_statistics, split_validation, standardizing_statistics

    data = _toy_dataset()
    x, y = data.x_train, data.y_train
    kept = split_validation(x, y, 0.25, seed=4)[0]
    for validation, pixels in ((0.25, kept), ("test", x), (None, x)):
        mean, variance = standardizing_statistics(x, y, (12, 12, 1), validation, seed=4)
        expected = pixel_statistics(pixels[..., None] / 255.0)
        np.testing.assert_allclose(mean, expected[0], rtol=1e-6)
        np.testing.assert_allclose(variance, expected[1], rtol=1e-5)
    assert not np.allclose(standardizing_statistics(x, y, (12, 12, 1), 0.25, seed=4)[0],
                           standardizing_statistics(x, y, (12, 12, 1), None)[0])


def test_train_job_writes_the_history_beside_the_model(tmp_path):
    import json

    from cnnviz.jobs import train_job

    out = tmp_path / "m.keras"
    outcome = train_job(out, conv=[4], pool_after=[1], dense=[8], epochs=2, n_train=400,
                        standardize=True)
    names = sorted(p.name for p in outcome.written)
    assert names == ["m.best.keras", "m.history.html", "m.history.json", "m.history.png",
                     "m.keras", "plotly.min.js"]
    assert load_model(tmp_path / "m.best.keras").get_layer("standardize") is not None
    record = json.loads((tmp_path / "m.history.json").read_text())
    assert record["epochs"] == 2 and len(record["val_accuracy"]) == 2
    assert record["validation"] == "40 held-out training images"
    assert "validation on 40 held-out training images" in outcome.lines[1]
    assert load_model(out).get_layer("standardize") is not None
    with pytest.raises(CnnvizError, match="already exists"):
        train_job(out, conv=[4], epochs=1)


def test_training_keeps_its_epochs_and_ctrl_c_loses_nothing(tmp_path):
    """The last finished epoch (with the optimizer's state) and the best one are kept while a
    run trains; Ctrl-C keeps them and --resume continues to the planned epochs, the learning
    rate's schedule where it was."""
    from cnnviz.jobs import resume_train_job, train_job

    out = tmp_path / "m.keras"

    def ctrl_c_in_the_third_epoch(epoch, step, steps, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    small = {"epochs": 4, "n_train": 300, "conv": [4], "dense": [8], "pool_after": [1]}
    stopped = train_job(out, progress=ctrl_c_in_the_third_epoch, **small)
    assert stopped.interrupted.startswith("kept epoch 2 of 4 in m.checkpoint.keras")
    assert "cnnviz train --resume --out" in stopped.interrupted and not out.exists()
    state = json.loads((tmp_path / "m.checkpoint.json").read_text())
    assert state["epochs"] == 2 and len(state["history"]["loss"]) == 2
    assert state["settings"]["epochs"] == 4 and (tmp_path / "m.best.keras").exists()
    result = runner.invoke(app, ["train", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 1 and "holds an interrupted training run: --resume" \
        in result.stderr
    done = resume_train_job(out)
    history = json.loads((tmp_path / "m.history.json").read_text())
    assert history["epochs"] == 4 and len(history["val_accuracy"]) == 4
    rates = history["learning_rate"]
    assert len(rates) == 4 and all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert out.exists() and not (tmp_path / "m.checkpoint.json").exists()
    assert not (tmp_path / "m.checkpoint.keras").exists() and "best epoch" in done.lines[-1]
    with pytest.raises(CnnvizError, match="nothing to resume: no m.checkpoint.json"):
        resume_train_job(out)


def test_train_refuses_a_folder_or_a_full_disk_before_training(tmp_path, monkeypatch):
    import shutil

    (tmp_path / "dir.keras").mkdir()
    result = runner.invoke(app, ["train", "--epochs", "1", "--force", "--out",
                                 str(tmp_path / "dir.keras")])
    assert result.exit_code == 1 and "dir.keras is a folder: --out names the model file" \
        in result.stderr and "Epoch" not in result.output

    def almost_full(path):
        return shutil._ntuple_diskusage(10**9, 10**9 - 4096, 4096)

    monkeypatch.setattr(shutil, "disk_usage", almost_full)
    result = runner.invoke(app, ["train", "--epochs", "1", "--n-train", "200", "--out",
                                 str(tmp_path / "m.keras")])
    assert result.exit_code == 1 and "has 0.0 MiB free: the model, its checkpoints and " \
        "history need about" in result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "dir.keras"]
