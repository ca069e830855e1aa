import zipfile

import numpy as np
import pytest

from cnnviz.core.errors import CnnvizError
from cnnviz.model.facts import (
    get_layer,
    input_range,
    input_shape,
    list_layers,
    load_model,
    reference_model_path,
    resolve_map_layers,
)
from cnnviz.model.graph import feature_model
from cnnviz.training.train import save_model


def test_reference_model_layers(reference_model):
    rows = [(i.name, i.type, i.output_shape, i.maps) for i in list_layers(reference_model)]
    assert rows == [
        ("rescaling", "Rescaling", (None, 28, 28, 1), 1),
        ("conv2d_1", "Conv2D", (None, 26, 26, 32), 32),
        ("max_pooling2d_1", "MaxPooling2D", (None, 13, 13, 32), 32),
        ("conv2d_2", "Conv2D", (None, 11, 11, 64), 64),
        ("max_pooling2d_2", "MaxPooling2D", (None, 5, 5, 64), 64),
        ("conv2d_3", "Conv2D", (None, 3, 3, 128), 128),
        ("flatten", "Flatten", (None, 1152), None),
        ("dense_1", "Dense", (None, 120), None),
        ("dense_2", "Dense", (None, 10), None),
    ]
    assert input_range(reference_model) == (0.0, 255.0)
    assert input_shape(reference_model) == (28, 28, 1)


def test_reference_model_is_trained(reference_model, mnist):
    x = mnist.x_test[:, :, :, None].astype(np.float32)
    accuracy = (np.argmax(reference_model.predict(x, verbose=0), -1) == mnist.y_test).mean()
    assert accuracy >= 0.97


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_save_and_load_both_formats(tmp_path, tiny_model, suffix):
    path = save_model(tiny_model, tmp_path / f"tiny{suffix}")
    back = load_model(path)
    for a, b in zip(tiny_model.get_weights(), back.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).random((2, 6, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(back.predict(x, verbose=0), tiny_model.predict(x, verbose=0))
    assert input_range(back) == (0.0, 1.0)


def test_bad_model_files(tmp_path):
    (tmp_path / "notes.h5").write_text("hello")
    (tmp_path / "notes.keras").write_text("hello")
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "model.txt").write_text("x")
    (tmp_path / "folder.keras").mkdir()
    with zipfile.ZipFile(tmp_path / "broken.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    truncated = reference_model_path().read_bytes()
    (tmp_path / "truncated.keras").write_bytes(truncated[: len(truncated) // 2])
    cases = {
        "missing.keras": "model file not found",
        "folder.keras": "is a directory",
        "empty.keras": r"is empty \(0 bytes\)",
        "notes.h5": "not a valid .h5 file",
        "notes.keras": "not a valid .keras file",
        "model.txt": "expected .keras or .h5, got '.txt'",
        "broken.keras": "could not load model",
        "truncated.keras": "not a valid .keras file|could not load model",
    }
    for name, message in cases.items():
        with pytest.raises(CnnvizError, match=message):
            load_model(tmp_path / name)


def test_nested_listing_and_lookup(nested_model):
    names = [i.name for i in list_layers(nested_model)]
    assert names == ["double", "base", "base/c1", "base/c2", "gap", "head"]
    assert get_layer(nested_model, "base/c2").name == "c2"
    assert resolve_map_layers(nested_model, None) == ["base/c1", "base/c2"]
    with pytest.raises(CnnvizError, match="unknown layer 'base/c3'; did you mean base/c2"):
        get_layer(nested_model, "base/c3")
    with pytest.raises(CnnvizError, match="layer 'head' has no 2-D maps; layers with maps: "
                                          "double, base, base/c1, base/c2"):
        resolve_map_layers(nested_model, ["head"])


def test_feature_model_outputs_in_request_order(tiny_model):
    sub = feature_model(tiny_model, ["pool", "conv"], with_output=True)
    assert [tuple(t.shape) for t in sub.outputs] == [(None, 2, 2, 2), (None, 4, 4, 2), (None, 3)]


def test_unknown_layer_lists_all_when_nothing_is_close(tiny_model):
    with pytest.raises(CnnvizError, match="unknown layer 'zzz'; layers: conv, pool, flat, out"):
        get_layer(tiny_model, "zzz")


def test_lambda_layer_needs_unsafe(tmp_path, k):
    inputs = k.Input((4, 4, 1))
    outputs = k.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    path = tmp_path / "lambda.keras"
    k.Model(inputs, outputs).save(path)
    with pytest.raises(CnnvizError, match="could not load model.*--unsafe"):
        load_model(path)
    model = load_model(path, safe_mode=False)
    np.testing.assert_allclose(model.predict(np.ones((1, 4, 4, 1)), verbose=0), 2.0)
