"""Class-image plausibility: are the bundled CNN's class images read as their digit by
classifiers that are not the model being visualized?

    python benchmarks/class_images.py [--steps 100] [--seeds 0,1,2] [--epochs 4]

Three judges of other architectures are trained here, with fixed seeds, on the bundled training
digits (9,000; never on the model's own outputs): a linear softmax on the pixels, a two-layer
perceptron, and an all-convolutional net with strided 5×5 convolutions and global average
pooling (the reference CNN has 3×3 convolutions, max pooling and a dense head). Each judge's
accuracy on the bundled test digits is printed first. Then, per preset and seed, the ten class
images of ``dense_2`` (each class logit before the softmax, ``visualize_filters``) are shown to
every judge, and to the model itself; the table gives the share read as the intended digit,
with the median over seeds; ``default --ink 0`` is the default preset without its ink penalty
(what a grey model's class images pay for ink on a dark background). Target (issue 23): every
independent judge ≥ 90 % for the default preset.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))

from common import machine_line  # noqa: E402

from cnnviz.core.backend import keras  # noqa: E402
from cnnviz.data import load_mnist  # noqa: E402
from cnnviz.model.facts import load  # noqa: E402
from cnnviz.oip.filters import visualize_filters  # noqa: E402
from cnnviz.oip.presets import preset  # noqa: E402

TARGET = "target for default: every independent judge ≥ 90 % (median over seeds)"


def judges(epochs: int) -> dict[str, object]:
    """The three judges, trained on the bundled training digits (inputs 0..1)."""
    k = keras()
    k.utils.set_random_seed(0)
    data = load_mnist()
    x, y = data.x_train[..., None].astype(np.float32) / 255, data.y_train
    made = {
        "linear": k.Sequential([k.Input((28, 28, 1)), k.layers.Flatten(),
                                k.layers.Dense(10, activation="softmax")]),
        "mlp": k.Sequential([k.Input((28, 28, 1)), k.layers.Flatten(),
                             k.layers.Dense(256, activation="relu"),
                             k.layers.Dense(10, activation="softmax")]),
        "allconv": k.Sequential([
            k.Input((28, 28, 1)), k.layers.Conv2D(32, 5, strides=2, activation="relu"),
            k.layers.Conv2D(64, 5, strides=2, activation="relu"),
            k.layers.Conv2D(10, 1), k.layers.GlobalAveragePooling2D(),
            k.layers.Activation("softmax")]),
    }
    test_x = data.x_test[..., None].astype(np.float32) / 255
    for name, model in made.items():
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, y, epochs=epochs, batch_size=128, verbose=0)
        accuracy = float((model.predict(test_x, verbose=0).argmax(1) == data.y_test).mean())
        print(f"judge {name}: accuracy on the 1,000 bundled test digits {accuracy:.1%}")
    return made


VARIANTS = (("default", {}), ("default --ink 0", {"ink": 0.0}), ("classic", {}))


def class_images(facts, name: str, seed: int, steps: int, **overrides) -> np.ndarray:
    """The ten class images (display pixels 0..1) of one preset and seed."""
    settings = preset(name.split()[0], facts, "dense_2", (28, 28, 1), steps=steps, seed=seed,
                      **overrides)
    result = visualize_filters(facts, "dense_2", None, settings)
    return result.meta.display(result.images).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"# {machine_line()}; {args.steps} steps, seeds {seeds}")
    readers = judges(args.epochs)
    facts = load()
    print(f"\n| preset | reader | read as intended, per seed | median | {TARGET} |")
    print("|---|---|---|---|---|")
    for name, overrides in VARIANTS:
        start = time.perf_counter()
        shown = {seed: class_images(facts, name, seed, args.steps, **overrides)
                 for seed in seeds}
        wall = (time.perf_counter() - start) / len(seeds)
        for reader, model in [("the model itself", None), *readers.items()]:
            shares = []
            for images in shown.values():
                if model is None:
                    inputs = facts.preprocess.to_model(images)
                    read = facts.model.predict(inputs, verbose=0).argmax(1)
                else:
                    read = model.predict(images, verbose=0).argmax(1)
                shares.append(float((read == np.arange(10)).mean()))
            met = "" if model is None else ("met" if np.median(shares) >= 0.9 else "not met")
            print(f"| {name} | {reader} | {' · '.join(f'{s:.0%}' for s in shares)} | "
                  f"{np.median(shares):.0%} | {met if name == 'default' else ''} |")
        print(f"| {name} | wall per seed (10 classes) | {wall:.1f} s | | |")


if __name__ == "__main__":
    main()
