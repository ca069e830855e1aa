"""What the benchmarks share: the FLOP floor they compare with (the forward FLOPs of a model
up to a layer, and the GFLOP/s this machine reaches on a large convolution, on the Keras
backend in use, CPU or GPU), the device's name and real photo patches. Backend-neutral: under
KERAS_BACKEND=jax nothing here imports TensorFlow."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def forward_flops(model: Any, layer: str, shape: tuple[int, ...] | None = None) -> int:
    """Multiply-adds × 2 of the Conv2D and Dense layers up to ``layer``, for one image (of
    ``shape`` for a model that takes any size; else the model's own)."""
    import cnnviz
    from cnnviz.core.backend import keras
    from cnnviz.model.facts import list_layers

    flops = 0
    for info in list_layers(model):
        weights = cnnviz.get_layer(model, info.name)
        if info.type == "Conv2D":
            kh, kw, cin, cout = weights.kernel.shape
            out = info.output_shape
            if shape is not None:
                out = keras().Model(model.inputs, weights.output).compute_output_shape(
                    (1, *shape))
            flops += 2 * out[1] * out[2] * kh * kw * cin * cout
        elif info.type == "Dense":
            flops += 2 * int(np.prod(weights.kernel.shape))
        if info.name == layer:
            return flops
    raise ValueError(layer)


# FLOPs of one gradient-ascent step per forward FLOP: the forward pass and the gradient with
# respect to the input (one transposed convolution per convolution); no weight gradients.
ASCENT_FLOPS = 2


def conv_gflops(batch: int = 128, side: int = 32, channels: int = 64, repeats: int = 5) -> float:
    """GFLOP/s of a 3×3 convolution (batch × side² × channels → channels, valid), best of
    ``repeats``, compiled on the backend in use and synchronised by reading one number back."""
    from cnnviz.core.backend import backend_name, keras

    ops = keras().ops
    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor(rng.normal(size=(batch, side, side, channels)).astype("float32"))
    w = ops.convert_to_tensor(rng.normal(size=(3, 3, channels, channels)).astype("float32"))
    if backend_name() == "jax":
        import jax

        conv = jax.jit(lambda a: ops.sum(ops.conv(a, w)))
    else:
        import tensorflow as tf

        conv = tf.function(lambda a: ops.sum(ops.conv(a, w)))
    float(conv(x))
    best = min(timed(lambda: float(conv(x))) for _ in range(repeats))
    out = side - 2
    return 2 * batch * out * out * channels * 9 * channels / best / 1e9


def peak_gflops() -> float:
    """The best GFLOP/s of a few convolutions: the small reference CNN's kind (128 images of
    32² × 64) and VGG's kind (16 images of 58² × 128); on a GPU, one large enough to fill it."""
    if not device_name().startswith("CPU"):
        return conv_gflops(batch=64, side=58, channels=256)
    return max(conv_gflops(), conv_gflops(batch=16, side=58, channels=128))


def machine_line() -> str:
    """This machine and the Keras in use, as a benchmark's first line starts."""
    import os
    import platform

    from cnnviz.core.backend import keras

    return (f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores; "
            f"keras {keras().__version__} ({keras().backend.backend()})")


def device_name() -> str:
    """The device the backend computes on, in words."""
    import os
    import platform

    from cnnviz.core.backend import backend_name

    if backend_name() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"{device.device_kind} ({device.platform}, JAX {jax.__version__})"
        return f"CPU, {os.cpu_count()} cores ({platform.machine()}, JAX {jax.__version__})"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"{gpus[0].name} (TensorFlow {tf.__version__})"
    return f"CPU, {os.cpu_count()} cores ({platform.machine()}, TensorFlow {tf.__version__})"


def photo_patches(side: int) -> np.ndarray:
    """Colour patches (uint8) of skimage's photos, ``side`` px, half overlapping."""
    import skimage.data as data
    from skimage.transform import rescale

    patches = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                 "hubble_deep_field"):
        photo = getattr(data, name)()
        photo = rescale(photo, max(256, side) / min(photo.shape[:2]), channel_axis=-1,
                        preserve_range=True, anti_aliasing=True).astype(np.uint8)
        for top in range(0, photo.shape[0] - side + 1, side // 2):
            for left in range(0, photo.shape[1] - side + 1, side // 2):
                patches.append(photo[top:top + side, left:left + side])
    return np.stack(patches)
