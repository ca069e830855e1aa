"""Diversity: how far ``--diversity N`` pushes a unit's N images apart, and what it costs them.

    python benchmarks/diversity.py [--copies 3] [--weights 0,0.5,1,2] [--seeds 0,1,2]

The bundled CNN's ten class images (``dense_2``, the default preset, ``--steps``), each class
``--copies`` times, pushed apart by lucid's diversity term at each ``--weights`` (0: the same
number of images, each from its own random streams, not pushed). Per weight, medians over the
seeds (their range) of, within each class's images:
- gram: the mean cosine similarity of their Gram matrices at conv2d_1 after its ReLU (what the
  term lowers: the images' stroke statistics);
- pixel r: their mean pairwise correlation;
- p: the model's probability of the intended class;
- read: the share the three independent judges of ``class_images.py`` (trained here on the
  bundled training digits) read as the intended digit, pooled over the judges;
- wall: seconds per seed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).parent))

from class_images import judges  # noqa: E402
from common import machine_line  # noqa: E402

from cnnviz.maps.activations import activations  # noqa: E402
from cnnviz.model.facts import load  # noqa: E402
from cnnviz.oip import quality  # noqa: E402
from cnnviz.oip.filters import visualize_filters  # noqa: E402
from cnnviz.oip.presets import preset  # noqa: E402


def within(values: np.ndarray, copies: int, pair) -> float:
    """The mean of ``pair(a, b)`` over the pairs of each class's ``copies`` rows."""
    groups = values.reshape(-1, copies, *values.shape[1:])
    return float(np.mean([pair(g[i:i + 1], g[j:j + 1]) for g in groups
                          for i, j in combinations(range(copies), 2)]))


def gram_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two images' Gram matrices (1, h, w, c maps)."""
    ga, gb = (np.einsum("nhwc,nhwd->cd", m, m).reshape(-1) for m in (a, b))
    return float(ga @ gb / max(np.linalg.norm(ga) * np.linalg.norm(gb), 1e-30))


def run(facts, readers, copies: int, weight: float, seed: int, steps: int) -> dict:
    settings = preset("default", facts, "dense_2", (28, 28, 1), steps=steps, seed=seed)
    start = time.perf_counter()
    result = visualize_filters(facts, "dense_2", None, settings, diversity=copies,
                               diversity_weight=weight)
    wall = time.perf_counter() - start
    shown = result.meta.display(result.images).astype(np.float32)
    maps = activations(facts, result.images, ["conv2d_1"]).maps["conv2d_1"]
    intended = result.filters
    probability = facts.model.predict(result.images, verbose=0)[np.arange(len(intended)),
                                                                 intended]
    read = np.mean([(model.predict(shown, verbose=0).argmax(1) == intended).mean()
                    for model in readers.values()])
    return {"gram": within(maps, copies, gram_cosine),
            "pixel": within(shown, copies,
                            lambda a, b: float(quality.seed_correlation(a, b)[0])),
            "p": float(np.mean(probability)), "read": float(read), "wall": wall}


def cell(found: list[dict], key: str, form: str, scale: float = 1.0) -> str:
    """"median (lo–hi)" of one measure over the seeds."""
    values = np.array([f[key] for f in found]) * scale
    return (f"{form.format(np.median(values))} ({form.format(values.min())}–"
            f"{form.format(values.max())})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--weights", default="0,0.5,1,2")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"# {machine_line()}; the bundled CNN's "
          f"classes, {args.copies} images each, {args.steps} steps, seeds {seeds}")
    readers = judges(args.epochs)
    facts = load()
    print("\n| weight | gram | pixel r | p (model) | read by the judges | wall s |")
    print("|---|---|---|---|---|---|")
    for weight in (float(w) for w in args.weights.split(",")):
        found = [run(facts, readers, args.copies, weight, seed, args.steps) for seed in seeds]
        print(f"| {weight:g} | {cell(found, 'gram', '{:.3f}')} | "
              f"{cell(found, 'pixel', '{:.2f}')} | {cell(found, 'p', '{:.3f}')} | "
              f"{cell(found, 'read', '{:.0f}', 100)} % | "
              f"{np.median([f['wall'] for f in found]):.1f} |")


if __name__ == "__main__":
    main()
