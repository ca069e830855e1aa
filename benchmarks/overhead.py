"""Where each command's wall time goes, whole process, side by side in one run.

    python benchmarks/overhead.py [--runs 3] [--only filters,layers]

Each command runs ``--runs`` times as its own process (``python -m cnnviz.cli``, as a user
runs it) into a fresh output folder; the table gives the median wall time and the median of
each phase the command records (``CNNVIZ_PHASES``): start-up (interpreter, cnnviz's command
line and argument parsing: wall minus what the command recorded), import (TensorFlow and
Keras), load (model and data), compile (tracing compiled functions), compute, render
(figures, pages), write (files), other. ``filters`` runs twice: with an empty pass cache (the
first run on a machine) and with the cache the first run left. The last columns check the
targets of issue 12:

- every ``--help`` ≤ 0.3 s wall;
- ``layers`` ≤ 2 s wall, without TensorFlow (no import phase);
- ``activations`` ≤ 2 s after the import (wall minus start-up and import);
- ``filters`` (default layer, 100 steps) ≤ 1.3 × (import + ascent), the ascent being the
  whole batched ascent with its compile; galleries (render + write) ≤ 1 s;
- the same job as tf-keras-vis (``benchmarks/tfkv_job.py``: conv2d_3, 128 filters, 100
  RMS-normalized steps, no modifiers or regularizers, a PNG gallery; ``filters --preset
  classic --no-reference`` here), whole process: ≥ 3× faster. tf-keras-vis needs Keras 2
  (``pip install tf-keras tf-keras-vis``, any interpreter with TensorFlow: ``--tfkv-python``);
  without it that row says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = ("import", "load", "compile", "compute", "render", "write")

CASES = {
    "--help": ["--help"],
    "filters --help": ["filters", "--help"],
    "layers": ["layers"],
    "activations": ["activations", "--digit", "6"],
    "filters (cold cache)": ["filters"],
    "filters (warm cache)": ["filters"],
    "filters --preset classic --no-reference": ["filters", "--preset", "classic",
                                                "--no-reference"],
}
TFKV = "tf-keras-vis, the same job"
WRITES = ("activations", "filters (cold cache)", "filters (warm cache)",
          "filters --preset classic --no-reference")


def run_once(args: list[str], out: Path | None, cache: Path) -> dict[str, float]:
    """One process: its wall time and the phases it recorded."""
    with tempfile.TemporaryDirectory() as scratch:
        record = Path(scratch) / "phases.json"
        env = {**os.environ, "CNNVIZ_PHASES": str(record), "CNNVIZ_CACHE": str(cache),
               "COLUMNS": "200"}
        command = [sys.executable, "-m", "cnnviz.cli", *args]
        if out is not None:
            command += ["--out", str(out)]
        begin = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - begin
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
        phases = json.loads(record.read_text()) if record.exists() else {"total": 0.0}
    spans = phases.pop("spans", {})
    recorded = phases.pop("total")
    row = {"wall": wall, "start-up": wall - recorded,
           **{p: phases.get(p, 0.0) for p in PHASES}}
    row["other"] = recorded - sum(phases.values())
    row["ascent"] = spans.get("ascent", 0.0)
    return row


def measure(name: str, runs: int, root: Path) -> dict[str, float]:
    """Median of each column over ``runs`` processes."""
    rows = []
    warm = root / "warm-cache"
    for i in range(runs):
        cache = warm if "warm" in name else root / f"cold-{name}-{i}"
        if "warm" in name and not warm.exists():  # the first run on this machine fills it
            run_once(CASES[name], root / "fill", warm)
        out = root / f"{name}-{i}".replace(" ", "_") if name in WRITES else None
        rows.append(run_once(CASES[name], out, cache))
    return {key: statistics.median(r[key] for r in rows) for key in rows[0]}


def tfkv(python: str, runs: int, root: Path) -> float | None:
    """Median wall seconds of tf-keras-vis doing the job; ``None`` where it is not installed."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    probe = subprocess.run([python, "-c", "import tf_keras, tf_keras_vis"], env=env,
                           capture_output=True)
    if probe.returncode != 0:
        return None
    job = Path(__file__).with_name("tfkv_job.py")
    walls = []
    for i in range(runs):
        begin = time.perf_counter()
        done = subprocess.run([python, str(job), str(root / f"tfkv-{i}")], env=env,
                              capture_output=True, text=True)
        walls.append(time.perf_counter() - begin)
        if done.returncode != 0:
            raise SystemExit(f"tf-keras-vis failed:\n{done.stderr[-2000:]}")
    return statistics.median(walls)


def verdict(name: str, row: dict[str, float]) -> tuple[str, bool]:
    """The target this command has, and whether the run met it."""
    if "classic" in name:
        return "see the tf-keras-vis row", True
    if name.endswith("--help"):
        return f"wall {row['wall']:.2f} ≤ 0.30 s", row["wall"] <= 0.3
    if name == "layers":
        return (f"wall {row['wall']:.2f} ≤ 2 s, no import",
                row["wall"] <= 2.0 and row["import"] == 0.0)
    if name == "activations":
        after = row["wall"] - row["start-up"] - row["import"]
        return f"after import {after:.2f} ≤ 2 s", after <= 2.0
    bound = 1.3 * (row["import"] + row["ascent"])
    galleries = row["render"] + row["write"]
    return (f"wall {row['wall']:.2f} ≤ 1.3×(import+ascent) = {bound:.2f} s; "
            f"galleries {galleries:.2f} ≤ 1 s", row["wall"] <= bound and galleries <= 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated case names (substrings)")
    parser.add_argument("--tfkv-python", default=sys.executable,
                        help="an interpreter with tf-keras and tf-keras-vis")
    args = parser.parse_args()
    wanted = [n for n in CASES if not args.only or any(w in n for w in args.only.split(","))]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; median of {args.runs} runs per command\n")
    columns = ["wall", "start-up", *PHASES, "other", "ascent"]
    print(f"| command | {' | '.join(columns)} | target | met |")
    print("|---|" + "---:|" * len(columns) + "---|---|")
    classic = None
    with tempfile.TemporaryDirectory() as scratch:
        for name in wanted:
            row = measure(name, args.runs, Path(scratch))
            target, met = verdict(name, row)
            cells = " | ".join(f"{row[c]:.2f}" for c in columns)
            print(f"| `cnnviz {name}` | {cells} | {target} | {'yes' if met else 'NO'} |",
                  flush=True)
            classic = row["wall"] if "classic" in name else classic
        if classic is not None:
            theirs = tfkv(args.tfkv_python, args.runs, Path(scratch))
            blank = " | ".join("" for _ in columns[1:])
            if theirs is None:
                print(f"| {TFKV} | not installed | {blank} | pip install tf-keras "
                      "tf-keras-vis (--tfkv-python) | |")
            else:
                ratio = theirs / classic
                print(f"| {TFKV} | {theirs:.2f} | {blank} | cnnviz {ratio:.1f}× faster "
                      f"(≥ 3×) | {'yes' if ratio >= 3 else 'NO'} |")


if __name__ == "__main__":
    main()
