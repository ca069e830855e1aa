"""Big-model benchmark: the commands a newcomer runs first, on ResNet50 (random weights) at 224 px.

    python benchmarks/big_model.py [--repeats 3]

Fresh processes, side by side in one run: a plain Keras process that loads the same .keras file
and predicts the photo once (the yardstick), `cnnviz activations` with no `--layers`, and
`cnnviz explain --method gradcam`; per command the median wall seconds (and the runs), its ratio
to the yardstick, its peak resident memory and the size of the folder it wrote; then how fast a
bad option value is refused (and that TensorFlow was not imported). Targets (issue "Big models
and a newcomer's first hour"): activations ≤ 30 MB, ≤ 2.5 GiB, ≤ 4× the yardstick; explain
≤ 4×; a bad option ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def run(command: list[str]) -> float:
    """Wall seconds of one fresh process."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return time.perf_counter() - start


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    import keras
    from PIL import Image
    from skimage import data as photos

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    model_path = folder / "resnet50.keras"
    keras.applications.ResNet50(weights=None).save(model_path)
    Image.fromarray(photos.chelsea()).save(folder / "cat.png")
    cnnviz = str(Path(sys.executable).with_name("cnnviz"))
    plain = (f"import keras, numpy as np; from PIL import Image; "
             f"m = keras.models.load_model({str(model_path)!r}); "
             f"x = np.asarray(Image.open({str(folder / 'cat.png')!r}).resize((224, 224)), "
             "np.float32)[None]; m.predict(x, verbose=0)")
    commands = {
        "plain Keras: load + predict": lambda i: [sys.executable, "-c", plain],
        "cnnviz activations": lambda i: [cnnviz, "activations", str(model_path), "--image",
                                         str(folder / "cat.png"), "--out",
                                         str(folder / f"act{i}")],
        "cnnviz explain --method gradcam": lambda i: [
            cnnviz, "explain", str(model_path), "--image", str(folder / "cat.png"),
            "--method", "gradcam", "--out", str(folder / f"exp{i}")],
    }
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TensorFlow backend; ResNet50 (random weights) at 224 px, {args.repeats} runs each\n")
    walls: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, float] = {}
    for i in range(args.repeats):
        for name, command in commands.items():
            walls[name].append(run(command(i)))
    for name, command in commands.items():  # peak memory: one more run each, alone
        peaks[name] = peak_of(command(args.repeats))
    base = float(np.median(walls["plain Keras: load + predict"]))
    print(f"{'command':34s} {'median s':>9s} {'runs':>18s} {'× plain':>8s} {'peak GiB':>9s} "
          f"{'folder MB':>10s}")
    for name, values in walls.items():
        size = {"cnnviz activations": folder_mb(folder / "act0"),
                "cnnviz explain --method gradcam": folder_mb(folder / "exp0")}.get(name)
        print(f"{name:34s} {np.median(values):9.1f} "
              f"{', '.join(f'{v:.1f}' for v in values):>18s} {np.median(values) / base:8.2f} "
              f"{peaks[name]:9.2f} {'' if size is None else f'{size:.1f}':>10s}")
    code = ("import sys, time\nfrom typer.testing import CliRunner\nfrom cnnviz.cli import app\n"
            "start = time.perf_counter()\n"
            "r = CliRunner().invoke(app, ['explain', '--method', 'gradcm'])\n"
            "print(r.exit_code, round(time.perf_counter() - start, 3), "
            "'tensorflow' in sys.modules)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    total = time.perf_counter() - start
    print(f"\na bad option value (explain --method gradcm): refused in {total:.2f} s as a whole "
          f"process (exit code, seconds inside, TensorFlow imported: {out.strip()})")


def peak_of(command: list[str]) -> float:
    """Peak resident memory (GiB) of one fresh process, read from /usr/bin/time."""
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True,
                          text=True)
    return int(done.stderr.strip().splitlines()[-1]) / 2**20


if __name__ == "__main__":
    main()
