"""OIP benchmark: every filter of a layer of the reference CNN, three ways, side by side.

    python benchmarks/oip_speed.py [--layer conv2d_3] [--steps 100] [--eager-filters N]

1. the classic recipe: one filter at a time, an eager ``tf.GradientTape`` loop, RMS-normalized
   steps (``--eager-filters N`` times only N filters and scales up, for a quick look);
2. one filter at a time with the step in ``tf.function``;
3. cnnviz: all filters as one batch in one compiled step;
4. the same batched step written by hand in ``tf.nn`` (no Keras layers, no cnnviz): what
   TensorFlow's own kernels take for it, the floor cnnviz's step can approach on this machine.
All three start from the same images and use the same step rule. It prints wall seconds, the
ratios, the FLOP floor (forward FLOPs up to the layer × 3 × images × steps over the GFLOP/s this
machine reaches on a large convolution) and quality: the mean activation of the final in-range
images, dead filters, and the share of live filters that beat their best real test image.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).parent))

from cnnviz.core.backend import keras  # noqa: E402

keras()  # TensorFlow starts with cnnviz's settings, so every row runs under the same ones
import tensorflow as tf  # noqa: E402
from common import conv_gflops, forward_flops, timed  # noqa: E402

import cnnviz  # noqa: E402
from cnnviz.data import images_to_model_input  # noqa: E402
from cnnviz.maps.activations import channel_means  # noqa: E402
from cnnviz.model.facts import input_range  # noqa: E402
from cnnviz.model.graph import feature_model  # noqa: E402
from cnnviz.oip.filters import visualize_filters  # noqa: E402
from cnnviz.oip.param import start_images  # noqa: E402
from cnnviz.oip.settings import Settings  # noqa: E402


def per_filter(model, layer, starts, steps, lr, lo, hi, compiled: bool, filters) -> np.ndarray:
    """One filter at a time: the classic loop (eager) or with the step in tf.function."""
    sub = feature_model(model, [layer], preactivation=True)

    def step(image, f):
        with tf.GradientTape() as tape:
            tape.watch(image)
            score = tf.reduce_mean(sub(image)[..., f])
        grad = tape.gradient(score, image)
        grad /= tf.sqrt(tf.reduce_mean(tf.square(grad))) + 1e-12
        return tf.clip_by_value(image + lr * (hi - lo) * grad, lo, hi)

    step = tf.function(step) if compiled else step
    out = []
    for f in filters:
        image = tf.constant(starts[f:f + 1])
        for _ in range(steps):
            image = step(image, tf.constant(f))
        out.append(image.numpy()[0])
    return np.stack(out)


def hand_written(model, layer, starts, steps, lr, lo, hi) -> tuple[np.ndarray, float]:
    """All filters as one batch, the step written directly in ``tf.nn`` from the model's
    weights (Rescaling, Conv2D and MaxPooling2D layers up to ``layer``, read before its
    activation); the final images and the seconds of the steps (traced before)."""
    ops = []
    for current in model.layers:
        kind = type(current).__name__
        if kind == "Rescaling":
            ops.append(lambda x, s=current.scale, o=current.offset: x * s + o)
        elif kind == "Conv2D":
            kernel, bias = (tf.constant(w.numpy()) for w in current.weights)
            act = (lambda x: x) if current.name == layer else tf.nn.relu
            pad = current.padding.upper()
            ops.append(lambda x, k=kernel, b=bias, a=act, p=pad:
                       a(tf.nn.bias_add(tf.nn.conv2d(x, k, 1, p), b)))
        elif kind == "MaxPooling2D":
            ops.append(lambda x, s=current.pool_size: tf.nn.max_pool2d(x, s, s, "VALID"))
        elif kind != "InputLayer":
            raise SystemExit(f"the hand-written step has no {kind} layer")
        if current.name == layer:
            break

    @tf.function(autograph=False)
    def step(x, channels):
        with tf.GradientTape() as tape:
            tape.watch(x)
            a = x
            for op in ops:
                a = op(a)
            score = tf.reduce_mean(tf.gather(a, channels, axis=3, batch_dims=1), axis=(1, 2))
        grad = tape.gradient(score, x)
        rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=(1, 2, 3), keepdims=True))
        # the score is returned, as cnnviz records it each step (its curves): without it,
        # TensorFlow would skip the last layer's forward pass, which the input gradient of a
        # linear read-out does not need
        return tf.clip_by_value(x + lr * (hi - lo) * grad / (rms + 1e-12), lo, hi), score

    x, channels = tf.constant(starts), tf.range(len(starts))
    step(x, channels)  # traced before the clock starts, as cnnviz's warm run

    def run() -> None:
        nonlocal x
        for _ in range(steps):
            x, score = step(x, channels)
        x = x.numpy()

    seconds = timed(run)
    return x, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="conv2d_3")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--eager-filters", type=int, default=None)
    args = parser.parse_args()
    model = cnnviz.load_model()
    lo, hi = input_range(model)
    n = int(cnnviz.get_layer(model, args.layer).output.shape[-1])
    settings = Settings(steps=args.steps)
    starts = start_images([(f, 0) for f in range(n)], (28, 28, 1), (lo, hi), seed=0,
                          wavelengths=settings.wavelengths, amplitude=settings.amplitude,
                          noise=settings.noise)
    data = cnnviz.load_mnist()
    real = images_to_model_input(data.x_test, (28, 28, 1), (lo, hi))
    best_real = channel_means(model, args.layer, real, preactivation=True).max(axis=0)
    means = channel_means  # quality of any image set: pre-activation mean of its own map

    def quality(images: np.ndarray) -> tuple[float, int, float]:
        act = means(model, args.layer, images, preactivation=True)[np.arange(n), np.arange(n)]
        post = cnnviz.activations(model, images, [args.layer]).maps[args.layer]
        dead = post[np.arange(n), :, :, np.arange(n)].max(axis=(1, 2)) <= 0
        return float(act.mean()), int(dead.sum()), float((act > best_real)[~dead].mean())

    rows = []
    eager_n = args.eager_filters or n
    t = timed(lambda: per_filter(model, args.layer, starts, args.steps, settings.lr, lo, hi,
                                  False, range(eager_n)))
    rows.append(("per-filter eager GradientTape loop" + (f" ({eager_n} filters, scaled)"
                                                         if eager_n < n else ""),
                 t * n / eager_n, None))
    images = {}

    def run_compiled():
        images["tf.function"] = per_filter(model, args.layer, starts, args.steps, settings.lr,
                                           lo, hi, True, range(n))

    rows.append(("per-filter, step in tf.function", timed(run_compiled),
                 quality(images["tf.function"])))
    result = {}

    def run_cnnviz():
        result["r"] = visualize_filters(model, args.layer, settings=settings)

    cold = timed(run_cnnviz)
    warm = timed(run_cnnviz)
    rows.append(("cnnviz, all filters in one batch (cold)", cold, None))
    rows.append(("cnnviz, all filters in one batch (warm)", warm, quality(result["r"].images)))

    by_hand, seconds = hand_written(model, args.layer, starts, args.steps, settings.lr, lo, hi)
    rows.append(("the same batched step hand-written in tf.nn (no Keras)", seconds,
                 quality(by_hand)))
    gflops = conv_gflops()
    floor = forward_flops(model, args.layer) * 3 * n * args.steps / (gflops * 1e9)
    eager = rows[0][1]
    print(f"\nOIP benchmark: {args.layer} of the reference CNN, {n} filters × {args.steps} steps; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TensorFlow {tf.__version__}")
    print(f"FLOP floor: {forward_flops(model, args.layer) / 1e6:.2f} MFLOP forward per image × 3 "
          f"× {n} × {args.steps} at {gflops:.0f} GFLOP/s (large conv) = {floor:.2f} s\n")
    print("| method | wall s | vs eager | vs floor | mean activation | dead | beat best real |")
    print("|---|---|---|---|---|---|---|")
    for name, seconds, q in rows:
        cells = ("", "", "") if q is None else (f"{q[0]:.3f}", f"{q[1]}", f"{q[2]:.1%}")
        print(f"| {name} | {seconds:.2f} | {eager / seconds:.1f}× | {seconds / floor:.2f}× | "
              + " | ".join(cells) + " |")
    print(f"\nbest real test image, mean over filters: {best_real.mean():.3f}")


if __name__ == "__main__":
    main()
