import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from cnnviz.core.errors import CnnvizError
from cnnviz.data import (
    load_fashion_mnist,
    load_mnist,
    read_idx,
    read_image,
    to_model_input,
    to_unit_range,
)
from cnnviz.data.inputs import pick_digit, select_input


def test_bundled_mnist_sample(mnist):
    assert mnist.x_train.shape == (9000, 28, 28) and mnist.x_test.shape == (1000, 28, 28)
    assert mnist.x_train.dtype == np.uint8 and mnist.y_train.dtype == np.int64
    assert sorted(set(mnist.y_test.tolist())) == list(range(10))
    assert np.bincount(mnist.y_train, minlength=10).sum() + len(mnist.y_test) == 10_000
    assert mnist.x_test.max() == 255 and mnist.x_test.min() == 0
    # Real digits: ink covers a minority of the 28×28 field, centred as in MNIST.
    ink = (mnist.x_test > 127).mean(axis=0)
    assert 0.05 < (mnist.x_test > 127).mean() < 0.25
    assert ink[10:18, 10:18].mean() > 10 * ink[:3, :].mean()


def test_unknown_mnist_source():
    with pytest.raises(CnnvizError, match="unknown MNIST source 'web'"):
        load_mnist("web")


def test_pick_digit_is_deterministic_and_of_the_class(mnist):
    for digit in range(10):
        index = pick_digit(mnist.y_test, digit, seed=5)
        assert mnist.y_test[index] == digit
        assert index == pick_digit(mnist.y_test, digit, seed=5)
    assert len({pick_digit(mnist.y_test, 6, seed=s) for s in range(20)}) > 1
    for bad in (11, -1):
        with pytest.raises(CnnvizError, match=f"class must be 0..9, got {bad}"):
            pick_digit(mnist.y_test, bad)


def _write_idx(path, array, gz=True):
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_read_idx_round_trip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", images)
    _write_idx(tmp_path / "b.idx", images, gz=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.idx"), images)
    (tmp_path / "bad.idx").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(CnnvizError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02")
    with pytest.raises(CnnvizError, match="holds 2 bytes of data, expected 5"):
        read_idx(tmp_path / "short.idx")


def test_fashion_mnist_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 256, (3, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", x_train)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 9]))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x_test)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([5, 6, 7]))
    data = load_fashion_mnist(tmp_path)
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.y_test, [5, 6, 7])
    assert data.class_names[9] == "Ankle boot"
    with pytest.raises(CnnvizError, match="Fashion-MNIST not found.*dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_to_unit_range():
    np.testing.assert_array_equal(to_unit_range(np.array([0, 51, 255], np.uint8)), [0, 0.2, 1])
    np.testing.assert_array_equal(to_unit_range(np.array([0, 65535], np.uint16)), [0, 1])
    np.testing.assert_array_equal(to_unit_range(np.array([True, False])), [1, 0])
    np.testing.assert_array_equal(to_unit_range(np.array([-2.0, 0.0, 2.0])), [0, 0.5, 1])
    with pytest.raises(CnnvizError, match="NaN"):
        to_unit_range(np.array([0.0, np.nan]))


def test_to_model_input_converts_channels_size_and_range():
    rgb = np.zeros((4, 4, 3))
    rgb[...] = [0.2, 0.4, 0.6]
    grey = to_model_input(rgb, (4, 4, 1), (0.0, 1.0))
    assert grey.shape == (4, 4, 1) and grey.dtype == np.float32
    np.testing.assert_allclose(grey, 0.2125 * 0.2 + 0.7154 * 0.4 + 0.0721 * 0.6, rtol=1e-6)
    rgba = np.concatenate([rgb, np.full((4, 4, 1), 0.3)], axis=-1)
    np.testing.assert_array_equal(to_model_input(rgba, (4, 4, 1)), grey)
    big = np.full((56, 40), 0.5)
    np.testing.assert_allclose(to_model_input(big, (28, 28, 1), (0.0, 255.0)), 127.5, rtol=1e-6)
    colour = to_model_input(np.full((3, 3), 0.25), (3, 3, 3), (-1.0, 1.0))
    np.testing.assert_allclose(colour, -0.5)
    assert colour.shape == (3, 3, 3)
    inverted = to_model_input(np.array([[0.0, 1.0]]), (1, 2, 1), invert=True)
    np.testing.assert_array_equal(inverted[..., 0], [[1.0, 0.0]])
    with pytest.raises(CnnvizError, match="cannot use an image of shape"):
        to_model_input(np.zeros((2, 2, 5)), (2, 2, 1))


def test_read_image_files(tmp_path):
    pixels = np.arange(0, 256, 16, dtype=np.uint8).reshape(4, 4)
    Image.fromarray(pixels).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_image(tmp_path / "grey.png"), pixels / 255.0)
    deep = (np.arange(16, dtype=np.uint16) * 4000).reshape(4, 4)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_allclose(read_image(tmp_path / "deep.png"), deep / 65535.0)
    Image.fromarray(np.zeros((5, 5, 4), np.uint8)).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png").shape == (5, 5, 4)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(CnnvizError, match="empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(CnnvizError, match="cannot read image"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(CnnvizError, match="image file not found"):
        read_image(tmp_path / "missing.png")


def test_select_input(tmp_path, mnist):
    choice = select_input((28, 28, 1), (0.0, 255.0), digit=3, dataset=mnist, seed=2)
    assert choice.label == 3 and choice.image.shape == (28, 28, 1)
    index = pick_digit(mnist.y_test, 3, seed=2)
    np.testing.assert_array_equal(choice.image[..., 0], mnist.x_test[index].astype(np.float32))
    assert select_input((28, 28, 1), digit=None, dataset=mnist).label == 6
    by_index = select_input((28, 28, 1), index=10, dataset=mnist)
    assert by_index.label == mnist.y_test[10] and by_index.image.max() <= 1.0
    Image.fromarray(np.full((64, 48, 3), 255, np.uint8)).save(tmp_path / "white.png")
    image = select_input((28, 28, 1), (0.0, 255.0), image=tmp_path / "white.png", invert=True)
    assert image.label is None and image.image.shape == (28, 28, 1)
    np.testing.assert_allclose(image.image, 0.0, atol=1e-4)
    with pytest.raises(CnnvizError, match="choose one input"):
        select_input((28, 28, 1), digit=1, index=2, dataset=mnist)
    with pytest.raises(CnnvizError, match=r"index 1000 is outside the test split \(0..999\)"):
        select_input((28, 28, 1), index=1000, dataset=mnist)


def test_keras_source_offline_gives_a_clear_error(monkeypatch, k):
    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(k.datasets.mnist, "load_data", offline)
    with pytest.raises(CnnvizError, match="needs the internet once.*source='bundled'"):
        load_mnist("keras")


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    import errno

    from cnnviz.core.fileio import write_bytes

    target = write_bytes(tmp_path / "result.bin", b"old")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_bytes", full)
    with pytest.raises(CnnvizError, match="could not write .*result.bin: No space left"):
        write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.bin"]  # no temporary left over
