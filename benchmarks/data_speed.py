"""Streaming a folder of JPEGs: cnnviz class patterns against model.predict, side by side.

    python benchmarks/data_speed.py [--images 50000] [--cache DIR]

Generates (once, into --cache) a folder of JPEG images in 10 class subfolders, 3 channels,
sizes 48..160 px, and a small RGB CNN (64×64×3 input). Then, each in its own process so that
peak memory is its own: ``model.predict`` over ``keras.utils.image_dataset_from_directory``
(parallel decode, prefetch) and ``cnnviz.class_patterns`` over the same folder (every map of the
last conv layer and the dense units per class), at 10,000 images and at all of them. Prints a
table: wall seconds of the data pass (model already loaded; the fastest of --repeat runs,
alternated), images/s, throughput relative to predict, and peak RSS. Targets: ≥ 0.8×
predict's throughput, ≤ 1.5 GiB peak RSS at both sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CLASSES = 10
SIDE = 64


def _make_images(args: tuple[Path, int, int]) -> None:
    from PIL import Image

    folder, begin, end = args
    rng = np.random.default_rng(begin)
    yy, xx = np.mgrid[0:160, 0:160] / 160.0
    for i in range(begin, end):
        c = i % CLASSES
        side_h, side_w = (int(v) for v in rng.integers(48, 161, 2))
        angle = np.pi * c / CLASSES
        waves = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * (6 + c) * np.pi)
        base = (127 + 100 * waves[:side_h, :side_w, None] * rng.uniform(0.5, 1.0, 3))
        noise = rng.normal(0, 20, (side_h, side_w, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"class_{c}" / f"{i:06d}.jpg", quality=90)


def make_folder(cache: Path, count: int) -> Path:
    """``count`` JPEGs in class subfolders (made once; a marker file says it is complete)."""
    folder = cache / f"jpegs-{count}"
    if (folder / "complete").exists():
        return folder
    for c in range(CLASSES):
        (folder / f"class_{c}").mkdir(parents=True, exist_ok=True)
    step = 1000
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(_make_images, [(folder, b, min(b + step, count))
                                     for b in range(0, count, step)]))
    (folder / "complete").write_text("ok")
    return folder


def subset(cache: Path, full: Path, count: int) -> Path:
    """``count`` images of ``full``, evenly spread over it (links), for the smaller run."""
    folder = cache / f"jpegs-every-{count}-of-{full.name}"
    if (folder / "complete").exists():
        return folder
    everything = sorted(full.rglob("*.jpg"))
    files = everything[::max(1, len(everything) // count)][:count]  # every class alike
    for path in files:
        target = folder / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(path, target)
    (folder / "complete").write_text("ok")
    return folder


def make_model(cache: Path) -> Path:
    path = cache / "rgb_cnn.keras"
    if path.exists():
        return path
    import keras

    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="classes")(x)
    keras.Model(inputs, outputs, name="bench_rgb_cnn").save(path)
    return path


CHILD = r"""
import json, resource, sys, time
method, model_path, folder = sys.argv[1:4]
import keras
model = keras.models.load_model(model_path, compile=False)
if method == "predict":
    import tensorflow as tf
    start = time.perf_counter()
    data = keras.utils.image_dataset_from_directory(folder, image_size=(64, 64), batch_size=256,
                                                    shuffle=False, verbose=False)
    data = data.map(lambda x, y: x).prefetch(tf.data.AUTOTUNE)
    images = len(model.predict(data, verbose=0))
else:
    import cnnviz
    from cnnviz.data.readers import FolderSource
    facts = cnnviz.as_facts(model)
    start = time.perf_counter()
    result = cnnviz.class_patterns(facts, FolderSource(folder), None, ["last_conv", "classes"])
    images = int(result.counts.sum())
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"images": images, "seconds": seconds, "peak": peak}))
"""


def measure(method: str, model: Path, folder: Path) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", CHILD, method, str(model), str(folder)],
                         capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cnnviz-bench")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each method; the fastest counts (machines are noisy)")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    full = make_folder(args.cache, args.images)
    print(f"data: {args.images:,} JPEGs in {full} ({time.perf_counter() - start:.0f} s to "
          "make or find)", flush=True)
    model = make_model(args.cache)
    folders = [subset(args.cache, full, args.small), full] if args.small < args.images else [full]
    rows = []
    for folder in folders:
        runs: dict[str, list[dict]] = {"predict": [], "cnnviz": []}
        for _ in range(args.repeat):  # alternated, so that both meet the same machine load
            for method in runs:
                runs[method].append(measure(method, model, folder))
        baseline, ours = (min(runs[m], key=lambda r: r["seconds"]) for m in runs)
        for name, run in (("model.predict on image_dataset_from_directory", baseline),
                          ("cnnviz class_patterns on the folder (streaming)", ours)):
            rows.append((name, run, run["images"] / run["seconds"],
                         (run["images"] / run["seconds"]) /
                         (baseline["images"] / baseline["seconds"])))
    print("\n| method | images | wall s | images/s | vs predict | peak RSS GiB |")
    print("|---|---|---|---|---|---|")
    for name, run, speed, ratio in rows:
        print(f"| {name} | {run['images']:,} | {run['seconds']:.1f} | {speed:,.0f} | "
              f"{ratio:.2f}× | {run['peak'] / 2**30:.2f} |")


if __name__ == "__main__":
    main()
