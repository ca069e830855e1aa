"""OIP quality benchmark: every preset on every layer, side by side, on measures that need no eye.

    python benchmarks/oip_quality.py [--steps 100] [--vgg] [--vgg-filters 8] [--vgg-size 96]

Per preset × layer of the bundled MNIST CNN (all filters; with ``--vgg`` also a real pretrained
VGG16, ``benchmarks/hed_vgg16.py``, on skimage's colour photos) it prints:
- objective (auto: centre unit where the receptive field is ≤ half the image, else map mean);
- out: mean output after the ReLU (the objective's measure) of the live filters, and its
  ratio to the classic preset's;
- dead: share of filters whose map stays zero after the ReLU for their own image;
- beat / reach: share of live filters whose image makes them output more than (at least as
  much as) their best real image, on the same measure (map mean; for the centre unit, the real
  images' strongest unit);
- clip: share of pixels within 1% of the value range's ends (real images' in brackets);
- hf: power at wavelengths under 4 px relative to real images' (stripes, speckle);
- r: median correlation of the same filter's image from seeds 0 and 1;
- spec: share of live filters whose own image excites them most among all the images;
- robust: median share of the output kept under ±2 px shifts and 0.9–1.1 zooms;
- wall: seconds of the seed-0 ascent (compile included), and its ratio to classic's.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).parent))

from common import photo_patches  # noqa: E402

from cnnviz.core.tables import PRESETS  # noqa: E402
from cnnviz.data.sources import model_inputs  # noqa: E402
from cnnviz.maps.activations import channel_means  # noqa: E402
from cnnviz.model.facts import as_facts, conv_layers, load  # noqa: E402
from cnnviz.oip import quality  # noqa: E402
from cnnviz.oip.filters import visualize_filters  # noqa: E402
from cnnviz.oip.presets import objective_kind, preset  # noqa: E402

TARGETS = ("targets for default on conv2d_3: hf ≤ 1.5×, r ≥ 0.5, spec ≥ 95%, dead ≤ 1%, "
           "beat ≥ 90%, out ≥ 70% of classic, wall ≤ 2× classic")


def mnist_real() -> np.ndarray:
    from cnnviz.data import load_mnist

    digits = load_mnist()
    return np.concatenate([digits.x_train, digits.x_test])[..., None]


def measure(facts, layer, filters, name, real_raw, real, steps, size, colour="auto"):
    shape, _ = facts.default_size(size)
    kind = objective_kind(facts, layer, shape)
    settings = preset(name, facts, layer, shape, steps=steps, colour=colour)
    start = time.perf_counter()
    run = visualize_filters(facts, layer, filters, settings, reference_images=real_raw,
                            size=size)
    wall = time.perf_counter() - start
    other = visualize_filters(facts, layer, filters, replace(settings, seed=1), size=size)
    live = ~run.dead
    reduce = "centre" if kind == "neuron" else "mean"
    values = channel_means(facts, layer, run.images, reduce=reduce)
    hf_real = quality.high_frequency_share(real).mean()
    return {
        "objective": kind, "out": run.output[live].mean(), "dead": run.dead.mean(),
        "beat": run.beats_real[live].mean(), "reach": run.reaches_real[live].mean(),
        "clip": quality.clipped_share(run.images, facts.value_range).mean(),
        "clip_real": quality.clipped_share(real, facts.value_range).mean(),
        "hf": quality.high_frequency_share(run.images).mean() / hf_real,
        "r": np.median(quality.seed_correlation(run.images, other.images)[live]),
        "spec": quality.specificity(values, run.filters)[live].mean(),
        "robust": np.median(quality.robustness(facts, layer, run.images, run.filters,
                                               reduce=reduce)[live]),
        "wall": wall, "images": run.images,
    }


def table(title, rows) -> None:
    print(f"\n{title}")
    print(f"{'layer':16s} {'preset':12s} {'objective':9s} {'out':>6s} {'×cls':>5s} "
          f"{'dead':>5s} {'beat':>5s} {'reach':>5s} {'clip':>10s} {'hf':>6s} {'r':>5s} "
          f"{'spec':>5s} {'robust':>6s} {'wall':>6s} {'×cls':>5s}")
    for layer, name, m, base in rows:
        print(f"{layer:16s} {name:12s} {m['objective']:9s} {m['out']:6.3f} "
              f"{m['out'] / base['out']:5.2f} {m['dead']:5.0%} {m['beat']:5.0%} "
              f"{m['reach']:5.0%} {m['clip']:4.0%} [{m['clip_real']:3.0%}] {m['hf']:5.2f}× "
              f"{m['r']:5.2f} {m['spec']:5.0%} {m['robust']:6.2f} {m['wall']:5.1f}s "
              f"{m['wall'] / base['wall']:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--vgg", action="store_true", help="add the pretrained VGG16")
    parser.add_argument("--vgg-only", action="store_true", help="only the VGG16 rows")
    parser.add_argument("--vgg-layers", default="block2_conv2,block3_conv3,block4_conv3")
    parser.add_argument("--vgg-filters", type=int, default=8)
    parser.add_argument("--vgg-size", type=int, default=96)
    parser.add_argument("--save", type=Path, help="write each run's images here (npz)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"backend {os.environ['KERAS_BACKEND']}, {args.steps} steps")
    facts = load()
    raw = mnist_real()
    real = model_inputs(raw, facts.preprocess)
    rows, saved = [], {}
    for layer in [] if args.vgg_only else conv_layers(facts.model):
        base = None
        for name in ("classic", *[p for p in PRESETS.names() if p != "classic"]):
            m = measure(facts, layer, None, name, raw, real, args.steps, None)
            base = base or m
            rows.append((layer, name, m, base))
            saved[f"{layer}/{name}"] = m["images"]
    if rows:
        table(f"bundled MNIST CNN, all filters; {TARGETS}", rows)
    if args.vgg or args.vgg_only:
        from hed_vgg16 import hed_vgg16_path

        vgg = as_facts(load(hed_vgg16_path(), preprocess="caffe"))
        size = (args.vgg_size, args.vgg_size)
        raw = photo_patches(args.vgg_size)
        real = model_inputs(raw, vgg.preprocess)
        rows = []
        for layer in args.vgg_layers.split(","):
            filters = list(range(args.vgg_filters))
            base = measure(vgg, layer, filters, "classic", raw, real, args.steps, size)
            rows.append((layer, "classic", base, base))
            for label, colour in (("default", "auto"), ("default-rgb", "none")):
                m = measure(vgg, layer, filters, "default", raw, real, args.steps, size, colour)
                rows.append((layer, label, m, base))
                saved[f"vgg/{layer}/{label}"] = m["images"]
            saved[f"vgg/{layer}/classic"] = base["images"]
        table(f"HED VGG16 (caffe), filters 0-{args.vgg_filters - 1}, {args.vgg_size} px, "
              f"{len(raw)} photo patches; default-rgb: without colour decorrelation", rows)
    if args.save:
        np.savez_compressed(args.save, **saved)


if __name__ == "__main__":
    main()
