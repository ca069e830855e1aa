"""The ascent in bfloat16: which precision ``auto`` picks and why, the model's passes traced in
bfloat16 with the user's model left as it was, and what an image reaches measured in float32."""

import numpy as np
import pytest

from cnnviz.core import precision
from cnnviz.core.errors import CnnvizError
from cnnviz.core.precision import choose, computing_in, cpu_flags, native_bfloat16
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.settings import Settings


@pytest.fixture
def cpu(monkeypatch):
    """No GPU, TensorFlow's kernels, oneDNN as configured by default; set the CPU's flags."""
    monkeypatch.setattr(precision, "_gpu_capability", lambda: None)
    monkeypatch.setattr(precision, "backend_name", lambda: "tensorflow")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)

    def flags(*found):
        monkeypatch.setattr(precision, "cpu_flags", lambda: set(found))

    return flags


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse avx512f "
                    "avx512_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(str(info)) == {"fpu", "sse", "avx512f", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == set()


def test_auto_takes_bfloat16_only_where_the_cpu_runs_it(cpu, monkeypatch):
    cpu("avx512f", "avx512_bf16")
    assert native_bfloat16() == (True, "this CPU has AVX512_BF16")
    assert choose("auto") == precision.Precision("bfloat16", "auto: this CPU has AVX512_BF16")
    cpu("amx_bf16", "avx512_bf16")
    assert native_bfloat16() == (True, "this CPU has AMX and AVX512_BF16")
    cpu("avx512f", "avx2")
    assert choose("auto") == precision.Precision("float32",
                                                 "auto: this CPU has no AVX512_BF16 or AMX")
    assert choose("bfloat16").dtype == "bfloat16"  # asked: done, and said to be emulated
    assert choose("bfloat16").reason == "asked; emulated here: this CPU has no AVX512_BF16 or AMX"
    assert choose("float32") == precision.Precision("float32", "asked")
    cpu("avx512_bf16")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni")
    assert choose("auto").reason == ("auto: oneDNN is capped below bfloat16 "
                                     "(ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI)")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert choose("auto").dtype == "bfloat16"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert choose("auto") == precision.Precision("float32",
                                                 "auto: oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0)")
    with pytest.raises(CnnvizError, match="unknown precision 'half': use one of float32, "
                                          "bfloat16, auto"):
        choose("half")


def test_auto_on_gpus_and_under_jax_on_a_cpu(cpu, monkeypatch):
    cpu("avx512_bf16")
    monkeypatch.setattr(precision, "_gpu_capability", lambda: ("NVIDIA H100", 9))
    assert choose("auto") == precision.Precision("bfloat16",
                                                 "auto: NVIDIA H100, compute capability 9.x")
    monkeypatch.setattr(precision, "_gpu_capability", lambda: ("Tesla T4", 7))
    assert choose("auto") == precision.Precision(
        "float32", "auto: Tesla T4, compute capability 7.x (bfloat16 from 8.0)")
    monkeypatch.setattr(precision, "_gpu_capability", lambda: None)
    monkeypatch.setattr(precision, "backend_name", lambda: "jax")
    assert choose("auto") == precision.Precision(
        "float32", "auto: JAX on a CPU computes bfloat16 through float32")


def test_settings_check_the_precision():
    assert Settings(precision="bfloat16").step_key() != Settings().step_key()
    with pytest.raises(CnnvizError, match="unknown precision 'fp8'"):
        Settings(precision="fp8")
    assert Settings.from_params(Settings(precision="auto").to_params()).precision == "auto"


def test_computing_in_switches_every_float32_layer_and_restores_them(k, nested_model):
    x = np.full((1, 6, 6, 1), 0.3, np.float32)
    base = nested_model.get_layer("base")
    with computing_in(nested_model, "bfloat16"):
        assert nested_model.get_layer("head").compute_dtype == "bfloat16"
        assert base.get_layer("c1").compute_dtype == "bfloat16"  # inside the nested model
        assert base.get_layer("c1").variable_dtype == "float32"  # weights stay float32
        assert nested_model.compute_dtype == base.compute_dtype == "float32"  # containers
        assert k.backend.standardize_dtype(base.get_layer("c1")(x).dtype) == "bfloat16"
    layers = [nested_model, *nested_model._flatten_layers(include_self=False, recursive=True)]
    assert {layer.dtype_policy.name for layer in layers} == {"float32"}
    assert k.backend.standardize_dtype(base.get_layer("c1")(x).dtype) == "float32"


def test_computing_in_leaves_layers_of_other_types_alone(k):
    half = k.layers.Dense(2, dtype="float16", name="half")
    model = k.Sequential([k.Input((3,)), k.layers.Dense(2, name="full"), half])
    with computing_in(model, "bfloat16"):
        assert model.get_layer("full").compute_dtype == "bfloat16"
        assert half.compute_dtype == "float16"
    with computing_in(model, "float32"):
        assert model.get_layer("full").compute_dtype == "float32"


@pytest.fixture(scope="module")
def watched(k):
    """8×8×1 → a layer that records the dtype it is traced with → conv "c" (4 filters 3×3 of
    random weights, linear)."""

    class Watch(k.layers.Layer):
        seen: list[str] = []

        def call(self, x):
            Watch.seen.append(k.backend.standardize_dtype(x.dtype))
            return x

    inputs = k.Input((8, 8, 1))
    x = Watch(name="watch")(k.layers.Rescaling(1.0, name="same")(inputs))
    outputs = k.layers.Conv2D(4, 3, name="c")(x)
    model = k.Model(inputs, outputs, name="watched")
    rng = np.random.default_rng(3)
    model.get_layer("c").set_weights([rng.normal(size=(3, 3, 1, 4)).astype(np.float32),
                                      rng.normal(size=4).astype(np.float32)])
    return model, Watch.seen


def test_a_bfloat16_ascent_is_traced_in_bfloat16_and_measured_in_float32(k, watched):
    model, seen = watched
    settings = Settings(steps=6, param="pixel", lr=0.05, seed=1)
    seen.clear()
    full = visualize_filters(model, "c", None, settings, objective="channel")
    assert set(seen) == {"float32"}
    seen.clear()
    half = visualize_filters(model, "c", None, Settings(**{**settings.__dict__,
                                                           "precision": "bfloat16"}),
                             objective="channel")
    assert "bfloat16" in seen  # the ascent's passes
    assert seen[-1] == "float32"  # the final measurement
    assert half.params["precision"] == "bfloat16" and half.params["precision_reason"]
    assert "ascent in bfloat16" in half.summary()
    assert full.params["precision"] == "float32"
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    # what each image reaches: the float32 model's value of the image, not the bfloat16 one
    own = np.arange(4)
    maps = np.asarray(model(half.images)).mean(axis=(1, 2))[own, own]
    assert np.allclose(half.output, maps, rtol=1e-6, atol=0)
    with computing_in(model, "bfloat16"):
        rounded = np.asarray(k.ops.cast(model(half.images), "float32")).mean(axis=(1, 2))
    assert np.abs(rounded[own, own] / half.output - 1).max() > 1e-4
    # six bfloat16 steps go nearly where float32 steps go (pixels in 0..255)
    assert np.abs(half.images - full.images).max() < 0.05 * 255


def test_the_filters_command_and_the_atlas_take_a_precision(tmp_path):
    from typer.testing import CliRunner

    from cnnviz.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["filters", "--precision", "half", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "unknown precision 'half'" in bad.output
    assert not (tmp_path / "x").exists()
    done = runner.invoke(app, ["filters", "--precision", "bfloat16", "--filters", "0-3",
                               "--steps", "4", "--no-reference", "--out", str(tmp_path / "f")])
    assert done.exit_code == 0, done.output
    assert "ascent in bfloat16" in done.output
    from cnnviz.results import FilterResult

    result = FilterResult.load(tmp_path / "f" / "filters.npz")
    assert result.params["precision"] == "bfloat16"
    assert "outputs measured in float32" in (tmp_path / "f" / "filters.html").read_text()


def test_atlas_parts_ascend_in_the_spec_precision(reference_model):
    from cnnviz.atlas.build import AtlasSpec, compute_part
    from cnnviz.model.facts import as_facts
    from cnnviz.parts.engine import Part

    spec = AtlasSpec(("conv2d_3",), steps=3, precision="bfloat16")
    found = compute_part(as_facts(reference_model), None, spec, ["conv2d_3"],
                         Part("conv2d_3", 0, 2, 3))
    assert found.params["precision"] == "bfloat16"
    assert found.filters.tolist() == [0, 1]
