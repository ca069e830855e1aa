"""The float type the ascent's model computes in: float32, or bfloat16 where the device runs it
natively (a CPU with AVX512_BF16 or AMX under TensorFlow's oneDNN kernels; a GPU of compute
capability 8.0 or later). The image variables, the optimizer and the objective stay float32;
what an image reaches is measured in float32."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnviz.core.backend import backend_name, keras
from cnnviz.core.tables import PRECISIONS

# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA) below its bfloat16 kernels
_NO_BF16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                 "AVX512_CORE_VNNI"}
_CPU_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512_BF16"}


@dataclass(frozen=True)
class Precision:
    """The chosen float type of the ascent (``float32`` or ``bfloat16``) and why, in words."""

    dtype: str
    reason: str

    @property
    def reduced(self) -> bool:
        return self.dtype != "float32"


@functools.cache
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bfloat16() -> tuple[bool, str]:
    """Whether the device this process computes on runs bfloat16 natively, and why (what was
    found: the GPU, the CPU feature, or what switches it off)."""
    gpu = _gpu_capability()
    if gpu is not None:
        name, major = gpu
        return major >= 8, f"{name}, compute capability {major}.x" + (
            "" if major >= 8 else " (bfloat16 from 8.0)")
    if backend_name() != "tensorflow":
        return False, "JAX on a CPU computes bfloat16 through float32"
    found = [label for flag, label in _CPU_FLAGS.items() if flag in cpu_flags()]
    if not found:
        return False, "this CPU has no AVX512_BF16 or AMX"
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        return False, "oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0)"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap in _NO_BF16_ISAS:
        return False, f"oneDNN is capped below bfloat16 (ONEDNN_MAX_CPU_ISA={cap})"
    return True, f"this CPU has {' and '.join(found)}"


def _gpu_capability() -> tuple[str, int] | None:
    """The first GPU's name and major compute capability, or ``None`` without a GPU."""
    if backend_name() == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            return None
        capability = str(getattr(gpus[0], "compute_capability", "0"))
        return gpus[0].device_kind, int(capability.partition(".")[0] or 0)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability") or (0, 0)
    return details.get("device_name", "GPU"), int(capability[0])


def choose(precision: str) -> Precision:
    """``float32``, ``bfloat16`` or ``auto`` (bfloat16 where native, else float32) as the
    float type to compute in, with the reason."""
    PRECISIONS.check(precision)
    if precision == "float32":
        return Precision("float32", "asked")
    native, why = native_bfloat16()
    if precision == "bfloat16":
        return Precision("bfloat16", "asked" if native else f"asked; emulated here: {why}")
    return Precision("bfloat16" if native else "float32", f"auto: {why}")


_SWITCH = threading.RLock()


@contextmanager
def computing_in(model: Any, dtype: str) -> Iterator[None]:
    """Meanwhile, every float32 layer of ``model`` (nested ones too; not the models that hold
    them) computes in ``dtype`` with float32 weights (Keras's ``mixed_<dtype>`` policy): a
    function traced here computes so. One switch at a time; the policies are restored after."""
    if dtype == "float32":
        yield
        return
    k = keras()
    with _SWITCH:
        switched = []
        try:
            for layer in model._flatten_layers(include_self=False, recursive=True):
                if isinstance(layer, k.Model | k.layers.InputLayer) or \
                        layer.dtype_policy.name != "float32":
                    continue
                switched.append((layer, layer.dtype_policy))
                layer.dtype_policy = f"mixed_{dtype}"
            yield
        finally:
            for layer, policy in switched:
                layer.dtype_policy = policy
