"""Precision benchmark: the ascent in float32 and in bfloat16, side by side in one process.

    python benchmarks/precision.py [--steps 100] [--vgg-steps 96] [--pairs 3]
        [--vgg-layers block3_conv3,block4_conv3] [--vgg-filters 16] [--vgg-size 96]
        [--processes 2] [--emulated]

Rows: the bundled CNN's conv2d_3 (all 128 filters, ``--steps``) and the HED VGG16 of
``benchmarks/hed_vgg16.py`` (real pretrained weights; ``--vgg-filters`` filters of each layer at
``--vgg-size`` px, ``--vgg-steps``), the default preset, in float32 and in bfloat16. Per row and
precision, over ``--pairs`` seed pairs (median, range in brackets):
- wall: seconds of a seed pair's first ascent (the first pair's includes tracing; the median is
  a warm one), image-steps/s, and the ratio to the float32 FLOP floor (forward FLOPs up to the
  layer × 2 a step, at the GFLOP/s a large float32 convolution reaches here);
- the quality measures of ``oip_quality.py``, every one in float32 (a bfloat16 ascent's images
  are measured by the float32 model): out (mean output after the activation of the live
  filters), hf (power under 4 px against real images'), r (agreement of a pair's two seeds),
  spec (share of filters their own image excites most), dead.
Then the whole ``cnnviz filters`` process on the first VGG layer, float32 and bfloat16 taking
turns ``--processes`` times each. With ``--emulated``, the same ascent in a child process where
oneDNN may not use its bfloat16 instructions (``ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI``):
float32, bfloat16 and auto, and what auto chose there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).parent))

from common import ASCENT_FLOPS, device_name, forward_flops, peak_gflops, photo_patches  # noqa: E402
from oip_quality import measure, mnist_real  # noqa: E402

from cnnviz.core.precision import choose  # noqa: E402
from cnnviz.data.sources import model_inputs  # noqa: E402
from cnnviz.model.facts import as_facts, load  # noqa: E402
from cnnviz.oip.presets import preset  # noqa: E402

PRECISIONS = ("float32", "bfloat16")
EMULATED_ISA = "AVX512_CORE_VNNI"  # oneDNN below its bfloat16 kernels
TARGETS = ("targets: VGG block3_conv3 whole filters process ≤ 0.65× float32; out within 3 %; "
           "hf, r and spec within the spread of float32's seed pairs; auto never slower than "
           "float32 where bfloat16 is emulated")


def _cell(m: dict, key: str, form: str, scale: float = 1.0) -> str:
    text = form.format(m[key] * scale)
    lo, hi = m[key + "_range"]
    if m["pairs"] > 1 and hi > lo:
        text += f" ({form.format(lo * scale)}–{form.format(hi * scale)})"
    return text


def _within(half: dict, full: dict, key: str) -> bool:
    """bfloat16's median no further from float32's than float32's own seed pairs spread."""
    lo, hi = full[key + "_range"]
    return abs(half[key] - full[key]) <= hi - lo + 1e-12


def rows_of(facts, layer, filters, real_raw, real, steps, size, pairs, gflops) -> list:
    """float32 and bfloat16 measures of one layer, with the FLOP floor of a run."""
    shape, _ = facts.default_size(size)
    count = len(filters) if filters is not None else int(
        facts.model.get_layer(layer).output.shape[-1])
    recipe = preset("default", facts, layer, shape)  # its precursors' short runs count too
    work = count * (steps + recipe.precursors * recipe.precursor_steps)
    floor = forward_flops(facts.model, layer, shape if facts.any_size else None) * \
        ASCENT_FLOPS * work / (gflops * 1e9)
    found = []
    for precision in PRECISIONS:
        m = measure(facts, layer, filters, "default", real_raw, real, steps, size,
                    pairs=pairs, precision=precision)
        m.update(precision=precision, image_steps=work, floor=floor)
        found.append(m)
    return found


def table(title: str, rows: list) -> None:
    print(f"\n{title}\n")
    print("| layer | precision | wall s | ×f32 | image-steps/s | ×floor | out | ×f32 | hf | r | "
          "spec | dead | quality within f32's spread |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for layer, full, m in rows:
        same = [key for key in ("hf", "r", "spec") if _within(m, full, key)]
        out_ok = abs(m["out"] / full["out"] - 1) <= 0.03
        verdict = "—" if m is full else (
            f"out {'met' if out_ok else 'NOT met'}; " +
            ", ".join(f"{k} {'met' if k in same else 'NOT met'}" for k in ("hf", "r", "spec")))
        print(f"| {layer} | {m['precision']} | {_cell(m, 'wall', '{:.1f}')} | "
              f"{m['wall'] / full['wall']:.2f} | {m['image_steps'] / m['wall']:,.0f} | "
              f"{m['wall'] / m['floor']:.2f} | {_cell(m, 'out', '{:.3f}')} | "
              f"{m['out'] / full['out']:.3f} | {_cell(m, 'hf', '{:.2f}')}× | "
              f"{_cell(m, 'r', '{:.2f}')} | {_cell(m, 'spec', '{:.0f}', 100)} % | "
              f"{_cell(m, 'dead', '{:.0f}', 100)} % | {verdict} |")


def whole_process(model: Path, layer: str, size: int, filters: int, steps: int, times: int,
                  env: dict | None = None, precisions=PRECISIONS) -> dict[str, list[float]]:
    """Wall seconds of ``cnnviz filters`` processes, the precisions taking turns."""
    walls: dict[str, list[float]] = {p: [] for p in precisions}
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(times):
            for precision in precisions:
                command = [sys.executable, "-m", "cnnviz.cli", "filters", str(model),
                           "--preprocess", "caffe", "--size", f"{size},{size}", "--layer",
                           layer, "--filters", f"0-{filters - 1}", "--steps", str(steps),
                           "--precision", precision, "--no-reference",
                           "--out", f"{scratch}/{precision}-{i}"]
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True,
                                      env={**os.environ, **(env or {})}, check=False)
                walls[precision].append(time.perf_counter() - start)
                if done.returncode:
                    raise SystemExit(f"cnnviz filters failed: {done.stderr[-2000:]}")
    return walls


def _emulated_child() -> None:
    """In a process started with oneDNN capped below bfloat16: what auto chooses, as JSON."""
    chosen = choose("auto")
    print(json.dumps({"dtype": chosen.dtype, "reason": chosen.reason}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--vgg-steps", type=int, default=96)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--vgg-layers", default="block3_conv3,block4_conv3")
    parser.add_argument("--vgg-filters", type=int, default=16)
    parser.add_argument("--vgg-size", type=int, default=96)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--emulated", action="store_true")
    parser.add_argument("--emulated-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emulated_child:
        _emulated_child()
        return
    from hed_vgg16 import hed_vgg16_path

    gflops = peak_gflops()
    native = choose("auto")
    print(f"{device_name()}; a large float32 convolution runs at {gflops:,.0f} GFLOP/s here; "
          f"auto chooses {native.dtype} ({native.reason})")
    print(TARGETS)
    facts = load()
    raw = mnist_real()
    rows = [("conv2d_3", *rows_of(facts, "conv2d_3", None, raw,
                                  model_inputs(raw, facts.preprocess), args.steps, None,
                                  args.pairs, gflops))]
    vgg = as_facts(load(hed_vgg16_path(), preprocess="caffe"))
    side = args.vgg_size
    photos = photo_patches(side)
    filters = list(range(args.vgg_filters))
    for layer in args.vgg_layers.split(","):
        rows.append((layer, *rows_of(vgg, layer, filters, photos,
                                     model_inputs(photos, vgg.preprocess), args.vgg_steps,
                                     (side, side), args.pairs, gflops)))
    shown = []
    for layer, full, half in rows:
        shown += [(layer, full, full), (layer, full, half)]
    table(f"bundled CNN conv2d_3: 128 filters × {args.steps} steps; HED VGG16: "
          f"{args.vgg_filters} filters × {args.vgg_steps} steps at {side} px; {args.pairs} "
          "seed pairs; each cell the median (range)", shown)

    first = args.vgg_layers.split(",")[0]
    if args.processes:
        walls = whole_process(hed_vgg16_path(), first, side, args.vgg_filters, args.vgg_steps,
                              args.processes)
        full, half = (statistics.median(walls[p]) for p in PRECISIONS)
        print(f"\nwhole `cnnviz filters` process, HED VGG16 {first}, {args.vgg_filters} filters × "
              f"{args.vgg_steps} steps at {side} px, {args.processes} each, taking turns: "
              f"float32 {', '.join(f'{w:.1f}' for w in walls['float32'])} s; bfloat16 "
              f"{', '.join(f'{w:.1f}' for w in walls['bfloat16'])} s; median ratio "
              f"{half / full:.3f} (target ≤ 0.65: {'met' if half / full <= 0.65 else 'NOT met'})")
    if args.emulated:
        env = {"ONEDNN_MAX_CPU_ISA": EMULATED_ISA}
        told = subprocess.run([sys.executable, __file__, "--emulated-child"], capture_output=True,
                              text=True, env={**os.environ, **env}, check=True)
        chose = json.loads(told.stdout.strip().splitlines()[-1])
        walls = whole_process(hed_vgg16_path(), first, side, args.vgg_filters,
                              max(8, args.vgg_steps // 4), 1, env,
                              ("float32", "bfloat16", "auto"))
        print(f"\nwith ONEDNN_MAX_CPU_ISA={EMULATED_ISA} (bfloat16 emulated), the same process at "
              f"{max(8, args.vgg_steps // 4)} steps: float32 {walls['float32'][0]:.1f} s, "
              f"bfloat16 {walls['bfloat16'][0]:.1f} s, auto {walls['auto'][0]:.1f} s; auto chose "
              f"{chose['dtype']} ({chose['reason']}) — target (auto never slower than float32): "
              f"{'met' if walls['auto'][0] <= walls['float32'][0] * 1.05 else 'NOT met'} "
              "(within 5 %, one run each)")


if __name__ == "__main__":
    main()
