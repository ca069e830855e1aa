"""Attribution quality benchmark: every method's displayed map, checked as cnnviz checks it.

    python benchmarks/attribution_quality.py [--images 50] [--skip-rgb]

1. The bundled MNIST CNN on the first N test digits (their true classes explained):
   - the candidate CAM layers for Grad-CAM: the share of the map's positive mass on the
     digit's ink divided by the ink's share of the image (1.0 = chance), deletion and insertion
     areas beside the same ink in random order — the measurement behind the default CAM layer;
   - every method at the default layer: ink ratio, deletion AUC vs random order (lower is
     better), insertion AUC vs random order (higher is better), Spearman after every weight is
     re-drawn (target < 0.5), the cascade from the top layer down, its flags, wall seconds;
   - integrated gradients from each baseline, with the completeness error.
2. An RGB CNN trained here on coloured digits (random bright ink on random dark paper, so colour
   says nothing of the class): the same checks on N coloured test digits, the ink ratio from the
   digit's mask, the cascade in 4 stages.
(`explain --method gradcam` on ResNet50 beside plain Keras: benchmarks/big_model.py.)
Medians over the inputs; every row is measured in this run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from cnnviz.attribution import METHODS, explain, metrics  # noqa: E402
from cnnviz.data import load_mnist  # noqa: E402
from cnnviz.data.sources import model_inputs  # noqa: E402
from cnnviz.model.facts import as_facts, load  # noqa: E402

BASELINES = ("black", "blur", "noise", "mean", "expected")
HEADER = (f"{'method':26s} {'ink ×':>6s} {'deletion':>8s} {'random':>7s} {'insert':>7s} "
          f"{'random':>7s} {'ρ all':>6s} {'cascade from the top':>28s} {'flags':>5s} "
          f"{'wall s':>7s}")


def ink_ratio(shown: np.ndarray, ink: np.ndarray) -> float:
    """Median over images of (positive mass on the ink) / (the ink's share of the image)."""
    positive = np.maximum(shown, 0.0)
    mass = (positive * ink).sum(axis=(1, 2)) / np.maximum(positive.sum(axis=(1, 2)), 1e-12)
    return float(np.median(mass / ink.mean(axis=(1, 2))))


def row(label: str, score: metrics.Scores, ratio: float | None, wall: float) -> str:
    m = score.medians()
    curve = " ".join(f"{rho:.2f}" for _, rho in score.curve())
    return (f"{label:26s} {'' if ratio is None else f'{ratio:.2f}':>6s} {m['deletion']:8.3f} "
            f"{m['random_deletion']:7.3f} {m['insertion']:7.3f} {m['random_insertion']:7.3f} "
            f"{m['randomization']:6.2f} {curve:>28s} {len(score.flags()):5d} {wall:7.1f}")


def bundled(count: int) -> None:
    facts = load()
    digits = load_mnist()
    x = model_inputs(digits.x_test[:count, ..., None], facts.preprocess)
    labels = np.asarray(digits.y_test[:count])
    ink = x[..., 0] > x.min()
    references = model_inputs(digits.x_train[:256, ..., None], facts.preprocess)
    print(f"\n1. bundled MNIST CNN, test digits 0-{count - 1}, true classes; ink covers "
          f"{ink.mean():.1%} of the image")
    print("\nGrad-CAM at each candidate layer (map side in brackets):")
    print(HEADER)
    for layer, side in (("conv2d_1", 26), ("max_pooling2d_1", 13), ("conv2d_2", 11),
                        ("max_pooling2d_2", 5), ("conv2d_3", 3)):
        start = time.perf_counter()
        result = explain(facts, x, ("gradcam",), target=labels, layer=layer)
        wall = time.perf_counter() - start
        score = metrics.evaluate(facts, result, stages=2)["gradcam"]
        print(row(f"gradcam @ {layer} [{side}]", score, ink_ratio(
            result.displayed()["gradcam"], ink), wall))
    print("\nEvery method at the default CAM layer:")
    print(HEADER)
    for baseline in BASELINES:
        methods = METHODS if baseline == "black" else ("integrated_gradients",)
        start = time.perf_counter()
        result = explain(facts, x, methods, target=labels, baseline=baseline,
                         references=references)
        wall = time.perf_counter() - start
        checks = metrics.evaluate(facts, result, baseline=baseline, references=references)
        shown = result.displayed()
        for name, score in checks.items():
            label = name if name != "integrated_gradients" else f"integrated_gradients/{baseline}"
            if name in ("gradcam", "gradcam++", "layercam"):
                label += f" @ {result.meta.layers[0]}"
            print(row(label, score, ink_ratio(shown[name], ink), wall))
            if score.flags():
                print(f"{'':26s}   ⚠ " + "; ".join(score.flags()))
        if baseline == "black":
            print("(wall: all methods together for the images)")
        if "integrated_gradients" in result.maps:
            delta, change = result.completeness()
            print(f"{'':26s}   integrated gradients from {baseline}: completeness error "
                  f"{np.median(np.abs(delta) / np.abs(change)):.2%} of the score change")


def coloured_digits(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Digits (N, 28, 28, 0..255) as colour images in 0..1: a random bright ink colour over a
    random dark background per image; and each image's ink (the digit's mask)."""
    alpha = (np.asarray(x, np.float32) / 255.0)[..., None]
    ink = rng.uniform(0.5, 1.0, (len(x), 1, 1, 3)).astype(np.float32)
    paper = rng.uniform(0.0, 0.45, (len(x), 1, 1, 3)).astype(np.float32)
    return paper * (1 - alpha) + ink * alpha, alpha[..., 0] > 0.3


def colour(count: int, epochs: int = 3) -> None:
    import keras

    digits = load_mnist()
    rng = np.random.default_rng(0)
    train_x, _ = coloured_digits(digits.x_train, rng)
    test_x, ink = coloured_digits(digits.x_test[:count], rng)
    labels = np.asarray(digits.y_test[:count])
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 3)), keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(), keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(), keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")], name="rgb_cnn")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(train_x, np.asarray(digits.y_train), epochs=epochs, batch_size=128, verbose=0)
    accuracy = float(np.mean(np.argmax(model.predict(test_x, verbose=0), 1) == labels))
    facts = as_facts(model, "unit")
    print(f"\n2. an RGB CNN (3 conv layers, trained here {time.perf_counter() - start:.0f} s on "
          f"{len(train_x)} coloured digits: random bright ink on random dark paper), test "
          f"accuracy {accuracy:.1%} on the {count} explained; ink covers {ink.mean():.1%}; "
          "cascade in 4 stages")
    print(HEADER)
    start = time.perf_counter()
    result = explain(facts, test_x, METHODS, target=labels)
    wall = time.perf_counter() - start
    shown = result.displayed()
    for name, score in metrics.evaluate(facts, result, stages=4).items():
        label = name + (f" @ {result.meta.layers[0]}" if name in (
            "gradcam", "gradcam++", "layercam") else "")
        print(row(label, score, ink_ratio(shown[name], ink), wall))
        if score.flags():
            print(f"{'':26s}   ⚠ " + "; ".join(score.flags()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--skip-rgb", action="store_true")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, backend "
          f"{os.environ['KERAS_BACKEND']}")
    bundled(args.images)
    if not args.skip_rgb:
        colour(args.images)


if __name__ == "__main__":
    main()
