"""Shared fixtures: tiny hand-built models with known weights, and the bundled assets."""

from __future__ import annotations

import os

# Under JAX the tests compile many tiny programs: XLA's CPU code generation without LLVM's
# optimizations compiles them about a quarter faster (CI's JAX stage 9:34 → 6:47); tests check
# values, never speed. (TensorFlow compiles few XLA programs and runs them longer: its stage
# was 5 % slower with it.) Set before JAX loads; the tests' subprocesses and Ray workers
# inherit it.
if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnviz.core.backend import keras  # noqa: E402
from cnnviz.model.facts import as_facts  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """The tests' pass cache is theirs alone (never the user's ~/.cache/cnnviz), shared by the
    session as a user's runs share theirs."""
    os.environ["CNNVIZ_CACHE"] = str(tmp_path_factory.mktemp("cnnviz-cache"))


@pytest.fixture(scope="session")
def k():
    return keras()


def _set(layer, kernel, bias):
    layer.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])


@pytest.fixture(scope="session")
def tiny_model(k):
    """6×6×1 input → conv (2 filters 3×3, relu) → 2×2 max-pool → flatten → dense 3 softmax.

    Filter 0 sums its 3×3 window; filter 1 takes the centre pixel minus 0.5."""
    model = k.Sequential([
        k.Input((6, 6, 1)),
        k.layers.Conv2D(2, 3, activation="relu", name="conv"),
        k.layers.MaxPooling2D(2, name="pool"),
        k.layers.Flatten(name="flat"),
        k.layers.Dense(3, activation="softmax", name="out"),
    ], name="tiny")
    kernel = np.zeros((3, 3, 1, 2))
    kernel[..., 0, 0] = 1.0
    kernel[1, 1, 0, 1] = 1.0
    _set(model.get_layer("conv"), kernel, [0.0, -0.5])
    dense = np.arange(8 * 3, dtype=np.float64).reshape(8, 3) / 100.0
    _set(model.get_layer("out"), dense, [0.1, 0.0, -0.1])
    return model


@pytest.fixture(scope="session")
def nested_model(k):
    """A functional model with a Sequential base inside: input ×2 → base (conv c1, conv c2)."""
    base = k.Sequential([k.Input((6, 6, 1)),
                         k.layers.Conv2D(2, 3, activation="relu", name="c1"),
                         k.layers.Conv2D(3, 3, name="c2")], name="base")
    _set(base.get_layer("c1"), np.ones((3, 3, 1, 2)) * [1.0, -1.0], [0.0, 1.0])
    _set(base.get_layer("c2"), np.full((3, 3, 2, 3), 0.1), [0.0, 0.5, -0.5])
    inputs = k.Input((6, 6, 1), name="pixels")
    x = k.layers.Rescaling(2.0, name="double")(inputs)
    x = base(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = k.layers.Dense(2, activation="softmax", name="head")(x)
    return k.Model(inputs, outputs, name="outer")


@pytest.fixture(scope="session")
def reference_model():
    from cnnviz.model.facts import load_model

    return load_model()


@pytest.fixture(scope="session")
def mnist():
    from cnnviz.data import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def convs(k):
    """8×8×1 → conv a (5 filters) → conv b (7 filters) → dense 3."""
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(5, 3, activation="relu", name="a"),
                          k.layers.Conv2D(7, 3, activation="relu", name="b"),
                          k.layers.Flatten(), k.layers.Dense(3, name="out")], name="convs")
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return as_facts(model)
