"""GPU benchmark, for a machine with JAX (CUDA) and no TensorFlow: cnnviz under
KERAS_BACKEND=jax on the first device JAX finds.

    KERAS_BACKEND=jax python benchmarks/gpu.py [--steps 100] [--vgg-size 224]
        [--vgg-filters 512] [--vgg-steps 256] [--budget-gib 16] [--precisions float32,bfloat16]

1. The bundled reference CNN's 128-filter gallery of conv2d_3 (the default preset, ``--steps``):
   cold (tracing included) and warm, median of 5 (target: < 0.2 s warm on a GPU).
2. VGG16 (``weights=None``) block4_conv1's filters × ``--vgg-steps`` at ``--vgg-size``²: a
   two-step run first (tracing), then the full ascent; image-steps/s and the ratio to the FLOP
   floor (forward FLOPs up to the layer × 2 per step over the GFLOP/s this device reaches on a
   large convolution).
Each in every precision of ``--precisions`` (float32 and bfloat16: the model's passes in
bfloat16, images and optimizer in float32), the floor being float32's.
It runs on a CPU too (with small ``--vgg-*`` values, for a look): the table names the device.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from functools import partial
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).parent))

from common import ASCENT_FLOPS, device_name, forward_flops, peak_gflops, timed  # noqa: E402

from cnnviz.core.backend import backend_name, keras  # noqa: E402
from cnnviz.core.precision import choose  # noqa: E402
from cnnviz.model.facts import as_facts, load  # noqa: E402
from cnnviz.oip.filters import visualize_filters  # noqa: E402
from cnnviz.oip.presets import preset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--vgg-size", type=int, default=224)
    parser.add_argument("--vgg-filters", type=int, default=512)
    parser.add_argument("--vgg-steps", type=int, default=256)
    parser.add_argument("--budget-gib", type=float, default=16.0,
                        help="memory an ascent batch may take (GiB)")
    parser.add_argument("--precisions", default="float32,bfloat16",
                        help="the ascent's precisions, each measured (comma-separated)")
    args = parser.parse_args()
    budget = int(args.budget_gib * 2**30)
    device = device_name()
    gflops = peak_gflops()

    facts = load()
    side = args.vgg_size
    model = keras().applications.VGG16(include_top=False, weights=None,
                                       input_shape=(side, side, 3))
    vgg = as_facts(model)
    layer, filters = "block4_conv1", list(range(args.vgg_filters))
    image_steps = len(filters) * args.vgg_steps
    small_floor = (forward_flops(facts.model, "conv2d_3") * ASCENT_FLOPS * 128 * args.steps
                   / (gflops * 1e9))
    floor = forward_flops(model, layer) * ASCENT_FLOPS * image_steps / (gflops * 1e9)
    print(f"\ncnnviz on {device}, Keras backend {backend_name()}; a large float32 convolution "
          f"runs at {gflops:,.0f} GFLOP/s here; auto would choose {choose('auto').dtype} "
          f"({choose('auto').reason})\n")
    print("| job | precision | cold s | warm s | image-steps/s | vs float32 FLOP floor |")
    print("|---|---|---|---|---|---|")
    for precision in args.precisions.split(","):
        settings = preset("default", facts, "conv2d_3", (28, 28, 1), seed=0, steps=args.steps,
                          precursors=0,
                          precision=precision)
        small = partial(visualize_filters, facts, "conv2d_3", None, settings, budget=budget)
        cold = timed(small)
        warm = statistics.median(timed(small) for _ in range(5))
        trace = timed(partial(visualize_filters, vgg, layer, filters, preset(
            "default", vgg, layer, (side, side, 3), seed=0, steps=2, precision=precision,
            precursors=0),
            budget=budget))
        full = preset("default", vgg, layer, (side, side, 3), seed=0, steps=args.vgg_steps,
                      precursors=0,
                      precision=precision)
        wall = timed(partial(visualize_filters, vgg, layer, filters, full, budget=budget))
        print(f"| reference CNN conv2d_3: 128 filters × {args.steps} steps, 28×28 | {precision} | "
              f"{cold:.2f} | {warm:.3f} | {128 * args.steps / warm:,.0f} | "
              f"{warm / small_floor:.1f}× |")
        print(f"| VGG16 {layer}: {len(filters)} filters × {args.vgg_steps} steps, {side}×{side} | "
              f"{precision} | {trace:.1f} (2 steps) | {wall:.1f} | {image_steps / wall:,.1f} | "
              f"{wall / floor:.2f}× |", flush=True)

if __name__ == "__main__":
    main()
