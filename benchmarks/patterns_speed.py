"""Class-pattern throughput: ``class_patterns`` against plain ``model.predict``, side by side.

    python benchmarks/patterns_speed.py [--layers conv2d_3,dense_1,dense_2] [--repeats 3]

Both see the same 10,000 bundled MNIST digits (train and test splits together). ``predict`` gets
them already converted to the model's input; ``class_patterns`` converts each batch itself as it
streams, and accumulates per-class sums. Prints the best of ``--repeats`` runs of each, and the
ratio (target ≥ 0.8).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from cnnviz.core.backend import keras

keras()
import cnnviz  # noqa: E402
from cnnviz.data import images_to_model_input  # noqa: E402
from cnnviz.maps.patterns import class_patterns  # noqa: E402


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="conv2d_3,dense_1,dense_2")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = cnnviz.load_model()
    data = cnnviz.load_mnist()
    images = np.concatenate([data.x_train, data.x_test])
    labels = np.concatenate([data.y_train, data.y_test])
    ready = images_to_model_input(images, (28, 28, 1), cnnviz.input_range(model))
    layers = args.layers.split(",")
    model.predict(ready[:512], batch_size=256, verbose=0)
    class_patterns(model, images[:512], labels[:512], layers)
    plain = best_of(args.repeats, lambda: model.predict(ready, batch_size=256, verbose=0))
    ours = best_of(args.repeats, lambda: class_patterns(model, images, labels, layers))
    print(f"\nclass patterns over {len(images):,} images, layers {', '.join(layers)}; "
          f"{platform.machine()}, {os.cpu_count()} cores, best of {args.repeats}\n")
    print("| method | wall s | images/s | throughput vs predict |")
    print("|---|---|---|---|")
    for name, seconds in (("model.predict (pre-converted input)", plain),
                          ("cnnviz class_patterns (streaming, converts each batch)", ours)):
        print(f"| {name} | {seconds:.2f} | {len(images) / seconds:,.0f} | "
              f"{plain / seconds:.2f}× |")


if __name__ == "__main__":
    main()
