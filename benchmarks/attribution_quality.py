"""Attribution quality benchmark: every method's displayed map, checked on real test digits.

    python benchmarks/attribution_quality.py [--images 50] [--steps 20]

For the bundled MNIST CNN and the first N test digits (their true classes explained), per
method (integrated gradients once per baseline) it prints medians over the images of:
- deletion AUC of the class probability, deleting the pixels the map ranks first (only pixels
  that differ from black can be deleted, so the curve runs over the ink), beside the AUC of
  deleting the same ink in random order (lower is better; target: below random);
- insertion AUC (higher is better);
- Spearman correlation of the displayed map before and after every kernel of the model is
  redrawn at random (target: < 0.5), and the same for |map| — what cnnviz showed before signed
  display, for comparison;
- for integrated gradients, the completeness error relative to the score change;
- wall seconds of the attribution and of the checks.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from cnnviz.attribution import (  # noqa: E402
    METHODS,
    explain,
    metrics,  # noqa: E402
)
from cnnviz.data import load_mnist  # noqa: E402
from cnnviz.data.sources import model_inputs  # noqa: E402
from cnnviz.model.facts import load  # noqa: E402
from cnnviz.results import to_display  # noqa: E402

BASELINES = ("black", "blur", "noise", "mean", "expected")


def abs_spearman(facts, result, baseline, references, seed=0) -> dict[str, float]:
    """Median Spearman of |map| before and after randomizing the weights, per method."""
    shuffled = load_randomized(facts, seed)
    layer = result.meta.layers[0] if result.meta.layers else None
    again = explain(shuffled, result.inputs, tuple(result.methods),
                    target=result.targets, layer=layer, baseline=baseline,
                    references=references)
    out = {}
    for name in result.methods:
        before = to_display(result.maps[name], signed=False)
        after = to_display(again.maps[name], signed=False)
        out[name] = float(np.median([metrics.spearman(b, a) for b, a in
                                     zip(before, after, strict=True)]))
    return out


def load_randomized(facts, seed):
    from cnnviz.model.facts import as_facts

    return as_facts(metrics.randomized(facts.model, seed), facts.preprocess)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20, help="points on each curve - 1")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, backend "
          f"{os.environ['KERAS_BACKEND']}; bundled MNIST CNN, test digits 0-{args.images - 1}, "
          "true classes explained")
    facts = load()
    digits = load_mnist()
    x = model_inputs(digits.x_test[:args.images, ..., None], facts.preprocess)
    labels = np.asarray(digits.y_test[:args.images])
    references = model_inputs(digits.x_train[:256, ..., None], facts.preprocess)
    print(f"{'method':34s} {'deletion':>8s} {'random':>7s} {'ok':>3s} {'insert':>7s} "
          f"{'ρ shown':>8s} {'ok':>3s} {'ρ |map|':>8s} {'complete':>9s} {'wall s':>7s} "
          f"{'checks s':>8s}")
    for baseline in BASELINES:
        methods = METHODS if baseline == "black" else ("integrated_gradients",)
        start = time.perf_counter()
        result = explain(facts, x, methods, target=labels, baseline=baseline,
                         references=references)
        wall = time.perf_counter() - start
        start = time.perf_counter()
        checks = metrics.evaluate(facts, result, steps=args.steps, baseline=baseline,
                                  references=references)
        checked = time.perf_counter() - start
        absolute = abs_spearman(facts, result, baseline, references)
        for name, score in checks.items():
            label = name if name != "integrated_gradients" else f"integrated_gradients/{baseline}"
            complete = ""
            if name == "integrated_gradients":
                delta, change = result.completeness()
                complete = f"{np.median(np.abs(delta) / np.abs(change)):.2%}"
            d, r, inserted, rho = score.medians()
            print(f"{label:34s} {d:8.3f} {r:7.3f} {'yes' if score.deletes_better else 'NO':>3s} "
                  f"{inserted:7.3f} {rho:8.2f} "
                  f"{'yes' if score.changes else 'NO':>3s} {absolute[name]:8.2f} {complete:>9s} "
                  f"{wall:7.1f} {checked:8.1f}")


if __name__ == "__main__":
    main()
