import numpy as np
import pytest

from cnnviz.data import Dataset
from cnnviz.errors import CnnvizError
from cnnviz.models import load_model
from cnnviz.train import build_cnn, learning_rate_schedule, save_model, train


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
                   decay_steps=10, decay_rate=1.0,
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
