"""Scaling benchmark: how the ascent's cost grows with the work, against the FLOP floor, and
the memory plan's prediction beside the memory measured.

    python benchmarks/scaling.py [--precision float32] [--plot docs/scaling.png]

On the HED VGG16 of ``benchmarks/hed_vgg16.py`` (real pretrained weights, any input size), one
axis at a time from a base of block4_conv1, 16 filters, 64 px, 8 steps (the default preset):
filters 16–512, steps 4–64, image side 28–224 px, depth (block1_conv2 … block5_conv3). Each
configuration runs in a process of its own: a two-step ascent first (tracing, and the memory of
the chunk's step), then the ascent timed warm. Printed per configuration: the FLOP floor
(forward FLOPs up to the layer × 2 a step, at the GFLOP/s a large float32 convolution reaches
here), the warm wall and its ratio to the floor, image-steps/s, and memory: the plan's
prediction for a chunk (``memory_plan``: the activations up to the layer × 3, per image, times
the images of a chunk) beside the peak resident memory the ascent added to the process. With
``--plot`` a log-log figure of wall and floor along each axis.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).parent))

BASE = {"layer": "block4_conv1", "filters": 16, "side": 64, "steps": 8}
AXES = {
    "filters": [16, 32, 64, 128, 256, 512],
    "steps": [4, 8, 16, 32, 64],
    "side": [28, 64, 96, 128, 224],
    "layer": ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"],
}


def _rss() -> int:
    """Resident bytes now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(config: dict) -> dict:
    """One configuration, measured in this (fresh) process."""
    from common import ASCENT_FLOPS, forward_flops
    from hed_vgg16 import hed_vgg16_path

    from cnnviz.model.facts import as_facts, load
    from cnnviz.oip.filters import visualize_filters
    from cnnviz.oip.presets import preset
    from cnnviz.oip.settings import DEFAULT_BUDGET, memory_plan

    vgg = as_facts(load(hed_vgg16_path(), preprocess="caffe"))
    layer, side, steps = config["layer"], config["side"], config["steps"]
    shape = (side, side, 3)
    filters = list(range(config["filters"]))
    plan = memory_plan(vgg.model, layer, len(filters), None, DEFAULT_BUDGET, shape, steps)
    before = _rss()
    # the step's cost: no precursors (the default's two short runs would add 40 image-steps)
    warmup = preset("default", vgg, layer, shape, steps=2, precision=config["precision"],
                    precursors=0)
    visualize_filters(vgg, layer, filters, warmup, size=(side, side))
    settings = preset("default", vgg, layer, shape, steps=steps, precision=config["precision"],
                      precursors=0)
    start = time.perf_counter()
    visualize_filters(vgg, layer, filters, settings, size=(side, side))
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {**config, "wall": wall, "chunk": plan.chunk, "chunks": plan.chunks,
            "planned": plan.per_image * plan.chunk, "added": peak - before,
            "flops": forward_flops(vgg.model, layer, shape) * ASCENT_FLOPS * len(filters) * steps}


def run_child(config: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"configuration {config} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], path: Path, gflops: float, precision: str) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    for ax, axis in zip(axes, AXES, strict=True):
        shown = [r for r in rows if r["axis"] == axis]
        x = list(range(len(shown))) if axis == "layer" else [r[axis] for r in shown]
        ax.plot(x, [r["wall"] for r in shown], "o-", label=f"measured ({precision})")
        ax.plot(x, [r["flops"] / (gflops * 1e9) for r in shown], "s--", color="grey",
                label="float32 FLOP floor")
        if axis == "layer":
            ax.set_xticks(x, [r["layer"].replace("_conv", "\nconv") for r in shown],
                          fontsize=7)
            ax.set_yscale("log")
        else:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(x, [str(v) for v in x])
            ax.minorticks_off()
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter(""))
        ax.set_xlabel({"side": "image side (px)", "layer": "depth"}.get(axis, axis))
        ax.set_ylabel("seconds")
        ax.grid(alpha=0.3, which="both")
        ax.set_title(f"along {axis}", fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"HED VGG16 ascent cost, base {BASE['layer']}, {BASE['filters']} filters, "
                 f"{BASE['side']} px, {BASE['steps']} steps", fontsize=11)
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--axes", default=",".join(AXES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    from common import device_name, peak_gflops

    gflops = peak_gflops()
    print(f"{device_name()}; a large float32 convolution runs at {gflops:,.0f} GFLOP/s here; "
          f"the ascent in {args.precision}\n")
    print("| axis | layer | filters | side | steps | floor s | wall s | ×floor | image-steps/s | "
          "chunk | plan MiB | measured MiB | measured / plan |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for axis in args.axes.split(","):
        for value in AXES[axis]:
            config = {**BASE, axis: value, "precision": args.precision}
            row = {**run_child(config), "axis": axis}
            rows.append(row)
            floor = row["flops"] / (gflops * 1e9)
            image_steps = row["filters"] * row["steps"]
            print(f"| {axis} | {row['layer']} | {row['filters']} | {row['side']} | "
                  f"{row['steps']} | {floor:.2f} | {row['wall']:.2f} | {row['wall'] / floor:.2f} | "
                  f"{image_steps / row['wall']:,.0f} | {row['chunk']}×{row['chunks']} | "
                  f"{row['planned'] / 2**20:,.0f} | {row['added'] / 2**20:,.0f} | "
                  f"{row['added'] / row['planned']:.2f} |", flush=True)
    if args.plot:
        plot(rows, args.plot, gflops, args.precision)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
