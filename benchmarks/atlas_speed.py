"""Atlas benchmark: a whole model's atlas in-process and on a local Ray cluster, side by side,
and VGG16 block by block against the FLOP floor.

    python benchmarks/atlas_speed.py [--images 10000] [--steps 100] [--workers 2] [--no-ray]
        [--vgg-size 224] [--vgg-filters 8] [--vgg-steps 8] [--vgg-images 32] [--no-vgg]

1. The bundled reference CNN's full atlas (every filter of its three convolutions, 224 in all,
   and the statistics of ``--images`` real digits: the bundled test and training digits) with
   ``atlas_job``, the whole command's work: in this process (its time split into ascent,
   statistics and site by the progress it reports) and on a new local Ray cluster of
   ``--workers`` CPUs (cluster start included), then the two atlases compared: the patterns
   must be identical, the statistics within 1e-6, the top-k images identical.
2. VGG16 (``weights=None``: the speed does not depend on the weights) at ``--vgg-size``², for
   the last convolution of each block: the statistics pass over real photo patches (images/s)
   and the default preset's ascent (image-steps/s), each against its FLOP floor: the forward
   FLOPs up to the layer (× 2 for an ascent step: the forward pass and the gradient with
   respect to the input) over the best GFLOP/s this machine reaches on large convolutions
   (measured first, on a quiet machine: anything else running lowers it). Runs on either
   Keras backend: under KERAS_BACKEND=jax nothing imports TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).parent))

from common import (  # noqa: E402
    ASCENT_FLOPS,
    device_name,
    forward_flops,
    peak_gflops,
    photo_patches,
    timed,
)

from cnnviz.atlas.build import AtlasSpec, plan_layers, plan_parts, read_atlas  # noqa: E402
from cnnviz.atlas.stats import map_statistics  # noqa: E402
from cnnviz.core.backend import keras  # noqa: E402
from cnnviz.data import load_mnist  # noqa: E402
from cnnviz.data.readers import ArraySource  # noqa: E402
from cnnviz.jobs.atlas import atlas_job  # noqa: E402
from cnnviz.model.facts import as_facts, conv_layers, get_layer, load  # noqa: E402
from cnnviz.oip.filters import visualize_filters  # noqa: E402
from cnnviz.oip.presets import preset  # noqa: E402


def bundled_digits(count: int) -> ArraySource:
    """The first ``count`` of the bundled digits: the 1,000 test digits, then the training ones."""
    digits = load_mnist()
    images = np.concatenate([digits.x_test, digits.x_train])[:count]
    labels = np.concatenate([digits.y_test, digits.y_train])[:count]
    return ArraySource(images, labels, tuple(str(d) for d in range(10)),
                       name=f"bundled MNIST ({len(images):,})")


def run_atlas(facts, data, spec, out: Path, runner=None) -> tuple[float, list[tuple[float, int]]]:
    """The whole atlas job's wall seconds and its progress as (seconds, units done)."""
    marks: list[tuple[float, int]] = []
    start = time.perf_counter()
    atlas_job(facts, out, spec, data=data, runner=runner,
              progress=lambda done, total: marks.append((time.perf_counter() - start, done)))
    return time.perf_counter() - start, marks


def first_at(marks: list[tuple[float, int]], units: int) -> float:
    """When the progress first reached ``units``."""
    return next(t for t, done in marks if done >= units)


def compare(here, there) -> str:
    """How the cluster's atlas differs from the in-process one (an error when it does)."""
    for layer in here.layers:
        if not np.array_equal(here.filters[layer].images, there.filters[layer].images):
            worst = np.abs(here.filters[layer].images - there.filters[layer].images).max()
            raise SystemExit(f"patterns of {layer} differ (max |Δ| {worst:.3g})")
        if not np.array_equal(here.statistics.top_index[layer],
                              there.statistics.top_index[layer]):
            raise SystemExit(f"top-k images of {layer} differ")
    if not np.array_equal(here.statistics.counts, there.statistics.counts):
        raise SystemExit("class counts differ")
    worst = max(float(np.max(np.abs(a[layer] - b[layer]) / np.maximum(np.abs(a[layer]), 1e-12)))
                for a, b in ((here.statistics.sums, there.statistics.sums),
                             (here.statistics.squares, there.statistics.squares))
                for layer in here.layers)
    if worst > 1e-6:
        raise SystemExit(f"statistics differ: max relative difference {worst:.2g}")
    return (f"patterns identical ({sum(len(r.filters) for r in here.filters.values())} "
            f"filters), top-k identical, statistics max relative difference {worst:.1g}")


def bundled_atlas(args, gflops: float) -> None:
    """Part 1: the bundled model's atlas, in-process and on Ray."""
    facts = load()
    data = bundled_digits(args.images)
    spec = AtlasSpec(steps=args.steps)
    layers = plan_layers(facts, spec.layers)
    plan = plan_parts(facts, data, spec, layers)
    ascent_units = sum(p.units for p in plan if p.layer)
    total_units = sum(p.units for p in plan)
    filters = sum(int(get_layer(facts.model, layer).output.shape[-1]) for layer in layers)
    ascent_floor = sum(forward_flops(facts.model, layer) * ASCENT_FLOPS * args.steps
                       * int(get_layer(facts.model, layer).output.shape[-1])
                       for layer in layers) / (gflops * 1e9)
    stats_floor = forward_flops(facts.model, layers[-1]) * data.size() / (gflops * 1e9)
    with tempfile.TemporaryDirectory() as tmp:
        wall, marks = run_atlas(facts, data, spec, Path(tmp) / "here")
        ascent = first_at(marks, ascent_units)
        done = first_at(marks, total_units)
        stats = done - ascent
        rows = [("in-process", wall, f"{ascent:.1f} s ({ascent / ascent_floor:.1f}× floor)",
                 f"{stats:.1f} s ({data.size() / stats:,.0f} images/s, "
                 f"{stats / stats_floor:.1f}× floor)", f"{wall - done:.1f}")]
        same = ""
        if not args.no_ray:
            from cnnviz.parts.cluster import RayRunner

            ray_wall, ray_marks = run_atlas(facts, data, spec, Path(tmp) / "ray",
                                            RayRunner("local", cpus=args.workers))
            first = next(t for t, done in ray_marks if done > 0)
            rows.append((f"Ray, local cluster of {args.workers} workers", ray_wall,
                         f"first part back after {first:.1f} s (cluster start included)", "", ""))
            same = compare(read_atlas(Path(tmp) / "here", facts, data),
                           read_atlas(Path(tmp) / "ray", facts, data))
    print(f"\n## The bundled model's atlas: {len(layers)} layers, {filters} filters × {args.steps} "
          f"steps, {data.size():,} images; {device_name()}")
    print(f"floors at {gflops:.0f} GFLOP/s: ascent {ascent_floor:.2f} s, statistics "
          f"{stats_floor:.2f} s\n")
    print("| run | wall s | ascent | statistics | site s |")
    print("|---|---|---|---|---|")
    for name, seconds, *cells in rows:
        print(f"| {name} | {seconds:.1f} | " + " | ".join(cells) + " |")
    if same:
        print(f"\nRay against in-process: {same}")


def vgg_blocks(args, gflops: float) -> None:
    """Part 2: VGG16 block by block, statistics and ascent against the FLOP floor."""
    side = args.vgg_size
    model = keras().applications.VGG16(include_top=False, weights=None,
                                       input_shape=(side, side, 3))
    facts = as_facts(model)
    patches = photo_patches(side)
    photos = np.concatenate([patches, patches[:, :, ::-1], patches[:, ::-1]])
    photos = np.resize(photos, (args.vgg_images, *photos.shape[1:]))
    source = ArraySource(photos, name="skimage photo patches")
    filters = list(range(args.vgg_filters))
    print(f"\n## VGG16 (weights=None) at {side}×{side}: per block, its last convolution; "
          f"statistics of {len(photos)} photo patches, the default preset's ascent of "
          f"{len(filters)} filters × {args.vgg_steps} steps; {device_name()}, floor at "
          f"{gflops:.0f} GFLOP/s\n")
    print("| layer | forward GFLOP | statistics images/s | vs floor | ascent cold s | "
          "ascent image-steps/s | vs floor |")
    print("|---|---|---|---|---|---|---|")
    for block in range(1, 6):
        layer = [name for name in conv_layers(model) if name.startswith(f"block{block}_")][-1]
        flops = forward_flops(model, layer)
        map_statistics(facts, source, [layer])  # traced once
        stats = timed(lambda layer=layer: map_statistics(facts, source, [layer]))
        settings = preset("default", facts, layer, (side, side, 3), seed=0, steps=args.vgg_steps,
                          precursors=0)  # the step's rate: no precursors
        cold = timed(lambda layer=layer, s=settings: visualize_filters(facts, layer, filters, s))
        warm = timed(lambda layer=layer, s=settings: visualize_filters(facts, layer, filters, s))
        image_steps = len(filters) * args.vgg_steps
        floor = ASCENT_FLOPS * flops * image_steps / (gflops * 1e9)
        print(f"| {layer} | {flops / 1e9:.2f} | {len(photos) / stats:.1f} | "
              f"{stats * gflops * 1e9 / (flops * len(photos)):.2f}× | {cold:.1f} | "
              f"{image_steps / warm:.2f} | {warm / floor:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--vgg-size", type=int, default=224)
    parser.add_argument("--vgg-filters", type=int, default=8)
    parser.add_argument("--vgg-steps", type=int, default=8)
    parser.add_argument("--vgg-images", type=int, default=32)
    parser.add_argument("--no-vgg", action="store_true")
    args = parser.parse_args()
    gflops = peak_gflops()
    bundled_atlas(args, gflops)
    if not args.no_vgg:
        vgg_blocks(args, gflops)


if __name__ == "__main__":
    main()
