"""`cnnviz layers` from a .keras file's configuration alone: the same table as the loaded
model gives, without TensorFlow; what it cannot tell goes to Keras."""

import subprocess
import sys

import pytest

from cnnviz.model.facts import load, reference_model_path
from cnnviz.model.receptive import config_rows, layer_rows
from cnnviz.model.static import read_config_model


def _same_rows(path, size=None):
    static = read_config_model(path, size)
    assert static is not None
    assert config_rows(static) == layer_rows(load(path, run=False), size)
    return static


def test_the_bundled_model_reads_the_same_from_its_configuration():
    static = _same_rows(reference_model_path())
    assert static.name == "cnnviz_reference_cnn" and static.input_shape == (None, 28, 28, 1)


@pytest.fixture(scope="module")
def branchy(k, tmp_path_factory):
    """Branches, merges, padding, cropping, upsampling, strides, dilation, depthwise and
    separable convolutions, reshape and global pooling."""
    x = k.Input((31, 29, 3), name="pixels")
    a = k.layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(x)
    a = k.layers.BatchNormalization(name="bn")(a)
    b = k.layers.ZeroPadding2D(((2, 3), (2, 3)), name="pad")(a)
    b = k.layers.Conv2D(8, 3, dilation_rate=2, name="dilated")(b)
    b = k.layers.Cropping2D(((0, 1), (1, 0)), name="crop")(b)
    c = k.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=1, name="depthwise")(a)
    merged = k.layers.Add(name="add")([b, c])
    d = k.layers.SeparableConv2D(6, 3, padding="same", name="separable")(merged)
    e = k.layers.UpSampling2D(2, name="up")(d)
    e = k.layers.AveragePooling2D(3, strides=2, padding="valid", name="avg")(e)
    both = k.layers.Concatenate(name="cat")([e, k.layers.Conv2D(4, 1, name="side")(e)])
    pooled = k.layers.GlobalAveragePooling2D(name="gap")(both)
    out = k.layers.Dense(6, name="dense")(pooled)
    out = k.layers.Reshape((2, 3), name="reshape")(out)
    model = k.Model(x, out, name="branchy")
    path = tmp_path_factory.mktemp("static") / "branchy.keras"
    model.save(path)
    return path


def test_a_graph_with_branches_reads_the_same(branchy):
    static = _same_rows(branchy)
    assert [r[0] for r in config_rows(static)][:3] == ["stem", "bn", "pad"]


@pytest.fixture(scope="module")
def nested_any_size(k, tmp_path_factory):
    """A Sequential around a functional base that takes any size (as VGG16(include_top=False)
    with (None, None, 3) inputs)."""
    x = k.Input((None, None, 3), name="image")
    y = k.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1")(x)
    y = k.layers.MaxPooling2D(2, name="block1_pool")(y)
    y = k.layers.Conv2D(6, 3, activation="relu", name="block2_conv1")(y)
    base = k.Model(x, y, name="base")
    model = k.Sequential([k.Input((None, None, 3)), base,
                          k.layers.GlobalMaxPooling2D(name="gmp"),
                          k.layers.Dense(3, name="head")], name="wrapped")
    path = tmp_path_factory.mktemp("static") / "nested.keras"
    model.save(path)
    return path


def test_nested_models_of_any_size_read_the_same(nested_any_size):
    default = _same_rows(nested_any_size)  # 224×224 for colour, as the ascent's default
    assert default.any_size and default.input_shape == (None, 224, 224, 3)
    sized = _same_rows(nested_any_size, (40, 50))
    rows = {r[0]: r for r in config_rows(sized)}
    assert rows["base/block2_conv1"][2] == "(None, 18, 23, 6)"
    assert rows["base/block2_conv1"][4:] == ("8×8", "2")


def test_what_the_configuration_cannot_tell_goes_to_keras(k, tmp_path):
    x = k.Input((8, 8, 1))
    up = k.layers.Conv2DTranspose(2, 3, name="transposed")(x)  # a type this reader skips
    k.Model(x, up).save(tmp_path / "transposed.keras")
    assert read_config_model(tmp_path / "transposed.keras") is None
    y = k.layers.Conv2D(2, 3, name="c")(x)
    k.Model(x, [y, k.layers.Flatten()(y)]).save(tmp_path / "two_outputs.keras")
    assert read_config_model(tmp_path / "two_outputs.keras") is None
    k.Model(x, y).save(tmp_path / "fixed.keras")
    assert read_config_model(tmp_path / "fixed.keras") is not None
    assert read_config_model(tmp_path / "fixed.keras", (9, 9)) is None  # Keras says why not
    (tmp_path / "junk.keras").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    assert read_config_model(tmp_path / "junk.keras") is None


def test_layers_runs_without_tensorflow(branchy):
    code = ("import sys\nsys.argv = ['cnnviz', 'layers', sys.argv[1]]\n"
            "from cnnviz.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED', sorted({'tensorflow', 'keras', 'jax', 'matplotlib'} "
            "& set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, str(branchy)], capture_output=True,
                         text=True, check=True, env={"COLUMNS": "200", "PATH": ""}).stdout
    assert "separable" in out and "IMPORTED []" in out
