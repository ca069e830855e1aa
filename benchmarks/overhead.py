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
  whole batched ascent with its compile; galleries (render + write) ≤ 1 s.
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
}
WRITES = ("activations", "filters (cold cache)", "filters (warm cache)")


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


def verdict(name: str, row: dict[str, float]) -> tuple[str, bool]:
    """The target this command has, and whether the run met it."""
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
    args = parser.parse_args()
    wanted = [n for n in CASES if not args.only or any(w in n for w in args.only.split(","))]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; median of {args.runs} runs per command\n")
    columns = ["wall", "start-up", *PHASES, "other", "ascent"]
    print(f"| command | {' | '.join(columns)} | target | met |")
    print("|---|" + "---:|" * len(columns) + "---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name in wanted:
            row = measure(name, args.runs, Path(scratch))
            target, met = verdict(name, row)
            cells = " | ".join(f"{row[c]:.2f}" for c in columns)
            print(f"| `cnnviz {name}` | {cells} | {target} | {'yes' if met else 'NO'} |",
                  flush=True)


if __name__ == "__main__":
    main()
