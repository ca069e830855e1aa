"""Write the tutorial notebooks in notebooks/: ``python scripts/make_notebooks.py`` writes
their cells; ``--execute`` also runs each on full settings and keeps its outputs, trimmed to
what any viewer shows (each figure's PNG and plain text, printed text; no plotly JSON, no
HTML, no warnings), so GitHub, nbviewer and exports show the figures.

Each notebook reads ``CNNVIZ_QUICK=1`` (set by the tests) to run on small settings. Cells
written ``"md:..."`` are markdown, the others code; ``"=:..."`` marks a code cell whose
output is the same on quick settings (the tests compare it with the committed one).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
SAME = "same-when-quick"  # the tag of a cell whose output does not depend on CNNVIZ_QUICK
KEPT = ("image/png", "text/plain")  # what a committed output keeps of a display

SETUP = """import os
QUICK = os.environ.get("CNNVIZ_QUICK") == "1"   # the tests run every notebook on small settings
import numpy as np
import cnnviz"""

NOTEBOOKS = {
    "01_training.ipynb": [
        "md:# 01 · Training the reference CNN\n\nThe classic Conv32-Pool-Conv64-Pool-Conv128-"
        "Dense120-Dense10 network, trained with RMSprop (momentum), an InverseTimeDecay schedule "
        "and L2 on the dense layers, on the bundled MNIST sample (9,000 train / 1,000 test).",
        SETUP,
        """=:data = cnnviz.load_mnist()
model = cnnviz.build_cnn(conv_filters=(32, 64, 128), pool_after=(1, 2), dense_units=(120,),
                         l2=5e-4)
model.summary()""",
        """result = cnnviz.train(data, model=model, epochs=1 if QUICK else 5,
                      n_train=1024 if QUICK else None, schedule="inverse_time")
print(f"test accuracy {result.test_accuracy:.3f}")""",
        """cnnviz.plot.history(result)""",
        """=:import tempfile
path = cnnviz.save_model(result.model, tempfile.mkdtemp() + "/my_cnn.keras")
cnnviz.list_layers(cnnviz.load_model(path))[:3]""",
    ],
    "02_activations.ipynb": [
        "md:# 02 · Activation maps\n\nEvery map of every conv and pooling layer for one "
        "handwritten digit, as an interactive plotly figure: pick a layer, hover a pixel.",
        SETUP,
        """=:model = cnnviz.load()                 # model facts: the bundled reference CNN and
print(model.preprocess.name)           # how it wants its pixels (0..255: it rescales itself)
choice = cnnviz.select_input(model.image_shape(), model.preprocess, digit=6)
acts = cnnviz.activations(model, choice.image[None], data=choice.source)
print(choice.source, "→ predicted", int(acts.predictions[0]))
{name: maps.shape for name, maps in acts.maps.items()}""",
        """import cnnviz
cnnviz.plot.activations(acts)""",
        """cnnviz.plot.prediction(acts)""",
        "md:The PNG grids of the command line are matplotlib figures: cnnviz builds them without "
        "touching pyplot's global state, so your own `plt` plots keep showing inline.",
        """from cnnviz.render import grids
grids.map_grid(acts.maps["conv2d_1"][0], title="conv2d_1", scale="per-map")""",
        """import matplotlib.pyplot as plt
plt.figure(figsize=(4, 2.5))
plt.hist(acts.maps["conv2d_1"][0].ravel(), bins=40)
plt.title("conv2d_1 activations")
plt.show()""",
    ],
    "03_filters.ipynb": [
        "md:# 03 · Optimal input patterns\n\nFor every filter of conv2d_3, the image that "
        "activates it most — all 128 at once, as one batch — beside the real digits that excite "
        "it most. The `default` preset ascends in decorrelated Fourier coefficients with random "
        "shifts, zooms and turns; `classic` is the seed blog's pixel ascent.",
        SETUP,
        """import cnnviz
from cnnviz.oip import objectives
model = cnnviz.load()
test_images = cnnviz.load_mnist().x_test
settings = cnnviz.preset("default", model, "conv2d_3", model.image_shape(),
                         steps=10 if QUICK else 100, seed=0)
filters = list(range(16)) if QUICK else None
result = cnnviz.visualize_filters(model, "conv2d_3", filters, settings,
                                  reference_images=test_images, examples=5,
                                  data="bundled test digits")
print(result.summary())""",
        "cnnviz.plot.filters(result, order=\"activation\")",
        "md:conv2d_1 sees 3×3 pixels: its map mean is maximized by a flat image, so by default "
        "its centre unit is maximized and the gallery shows that unit's receptive field "
        "(`cnnviz.receptive_field`).",
        """early = cnnviz.visualize_filters(model, "conv2d_1", None,
                                  cnnviz.preset("default", model, "conv2d_1", (28, 28, 1),
                                                steps=10 if QUICK else 100),
                                  reference_images=test_images, data="bundled test digits")
field, stride = cnnviz.receptive_field(model, "conv2d_1").describe()
print(f"conv2d_1 sees {field} pixels, stride {stride}")
print(early.summary())
cnnviz.plot.filters(early)""",
        "md:Objectives combine with `+`, `-` and `*`: here filter 5 of conv2d_3 plus a little "
        "DeepDream on conv2d_2, starting from a real six.",
        """goal = objectives.channel("conv2d_3") + 0.1 * objectives.layer("conv2d_2")
six = cnnviz.select_input(model.image_shape(), model.preprocess, digit=6).image
dreamy = cnnviz.preset("default", model, "conv2d_3", (28, 28, 1),
                       steps=10 if QUICK else 100, start="image")
dream = cnnviz.visualize_filters(model, "conv2d_3", [5, 9], dreamy, objective=goal,
                                 start_image=six)
cnnviz.plot.filters(dream)""",
    ],
    "04_patterns_and_attribution.ipynb": [
        "md:# 04 · Class patterns and attribution\n\nWhich maps fire for which class, and which "
        "pixels drove a prediction.",
        SETUP,
        """import cnnviz
model = cnnviz.load()
data = cnnviz.load_mnist()
x, y = data.x_test, data.y_test
if QUICK:
    x, y = x[:300], y[:300]
patterns = cnnviz.class_patterns(model, x, y, ["conv2d_3", "dense_1", "dense_2"],
                                 data="bundled MNIST test split")
patterns.top_maps("conv2d_3", 5)""",
        """cnnviz.plot.patterns(patterns)""",
        """choice = cnnviz.select_input(model.image_shape(), model.preprocess, digit=6)
explained = cnnviz.explain(model, choice.image[None], data=choice.source)
explained.save(os.path.join(os.getcwd(), "six_explained.npz"))   # npz + json, like every result
cnnviz.plot.attributions(explained)""",
        """ig, delta = cnnviz.IntegratedGradients(model).attribute(
    choice.image[None], target=6, baseline="blur", return_delta=True)
print(f"sum of attributions {float(ig.sum()):.4f}, completeness error {float(delta[0]):.4f}")""",
        "md:Do the maps show what the model learned? Deleting the pixels each map ranks first "
        "should lower the probability faster than deleting the ink at random, and each map "
        "should change when the weights are randomized (Spearman well under 0.5).",
        """from cnnviz.attribution import metrics
n = 3 if QUICK else 50
sample = cnnviz.explain(model, cnnviz.images_to_model_input(x[:n], (28, 28, 1),
                                                            model.preprocess), target=y[:n])
for name, score in metrics.evaluate(model, sample, stages=2 if QUICK else 8).items():
    print(score.line(name))""",
    ],
    "05_blog_series.ipynb": [
        "md:# 05 · The blog series end to end\n\ncnnviz grew from a blog series, *A simple CNN "
        "for the MNIST dataset* (parts I–XII): train a Conv32-Pool-Conv64-Pool-Conv128 → Dense "
        "→ Dense10 network with RMSprop, momentum, an inverse-time learning rate and L2 on the "
        "dense layers; watch the learning rate and the training and validation curves; look at "
        "the 128 3×3 maps of the last conv layer for a digit; search the input patterns each "
        "map answers most (OIPs), starting from random fluctuations on four length scales; "
        "average the maps per class; dream from a real digit. Here all of it on the bundled "
        "digits, with the filters snapshotted while the network learns.",
        SETUP,
        "md:## Training as the blog did it\n\nThe blog's printed learning rates are "
        "lr / (1 + 0.001 · step), the default `inverse_time` schedule. A tenth of the training "
        "images is held out to validate on after each epoch. `FilterSnapshots` keeps the "
        "patterns of conv2d_2's filters before training and after every few epochs. (This "
        "notebook trains 20 epochs; `cnnviz train --epochs 80` reached 98.70 % on the 1,000 "
        "test digits, 98.33 % best validation accuracy — the blog, with the full 60,000 "
        "digits, 99.35 %.)",
        """import tempfile
from cnnviz.training.callbacks import FilterSnapshots
data = cnnviz.load_mnist()
model = cnnviz.build_cnn(conv_filters=(32, 64, 128), pool_after=(1, 2), dense_units=(120,),
                         l2=5e-4)
epochs = 2 if QUICK else 20
snapshots = tempfile.mkdtemp()
watch = FilterSnapshots("conv2d_2", snapshots, every=1 if QUICK else 4,
                        steps=5 if QUICK else 50, filters=list(range(16)))
result = cnnviz.train(data, model=model, epochs=epochs, n_train=1024 if QUICK else None,
                      momentum=0.5, schedule="inverse_time", validation=0.1,
                      callbacks=[watch])
print(f"test accuracy {result.test_accuracy:.4f}; validation accuracy per epoch:",
      [round(v, 4) for v in result.history["val_accuracy"]])""",
        """import cnnviz
cnnviz.plot.history(result)""",
        "md:## The maps of a six\n\nThe 128 maps of conv2d_3 are 3×3: each says where in the "
        "digit its filter found what it looks for.",
        """trained = cnnviz.as_facts(result.model)
six = cnnviz.select_input(trained.image_shape(), trained.preprocess, digit=6)
acts = cnnviz.activations(trained, six.image[None], data=six.source)
print(six.source, "→ predicted", int(acts.predictions[0]))
cnnviz.plot.activations(acts)""",
        "md:## OIPs from four length scales\n\nThe blog started its search from random "
        "fluctuations on length scales of 14, 7, 3.5 and 1.75 pixels. One scale at a time, for "
        "the first filters of each conv layer (the classic pixel ascent of the blog):",
        """from cnnviz.render import sheet
scales = (14.0, 7.0, 3.5, 1.75)
shown = list(range(4)) if QUICK else list(range(8))
by_scale = {}
for layer in ("conv2d_1", "conv2d_2", "conv2d_3"):
    for scale in scales:
        settings = cnnviz.preset("classic", trained, layer, (28, 28, 1), wavelengths=(scale,),
                                 steps=10 if QUICK else 100, seed=0)
        by_scale[layer, scale] = cnnviz.visualize_filters(trained, layer, shown, settings)
        print(f"{layer}, start on a {scale:>5} px scale: mean output "
              f"{by_scale[layer, scale].output.mean():.3f}")
last = by_scale["conv2d_3", 1.75]""",
        """# conv2d_3's first filters (columns) from each length scale (rows)
rows = [by_scale["conv2d_3", scale] for scale in scales]
sheet.image_gallery(np.concatenate([r.meta.display(r.patterns()) for r in rows]),
                    [f"{f} · {scale} px: {v:.2f}" for r, scale in zip(rows, scales)
                     for f, v in zip(r.filters, r.output)],
                    value_range=(0, 1), columns=len(shown),
                    title="conv2d_3: one start scale per row")""",
        "md:With precursors: several short runs per filter from different starts, the best one "
        "continued — the blog's way out of poor local optima.",
        """settings = cnnviz.preset("classic", trained, "conv2d_3", (28, 28, 1), precursors=4,
                         precursor_steps=5 if QUICK else 20, steps=10 if QUICK else 100)
precursed = cnnviz.visualize_filters(trained, "conv2d_3", shown, settings)
print("mean output with precursors", round(float(precursed.output.mean()), 3),
      "without", round(float(last.output.mean()), 3))
cnnviz.plot.filters(precursed)""",
        "md:## Class-averaged maps\n\nEach map of conv2d_3 averaged, position by position, "
        "over all test images of a class — and each class's difference from the average over "
        "all classes.",
        """x, y = data.x_test, data.y_test
if QUICK:
    x, y = x[:300], y[:300]
averaged = cnnviz.class_patterns(trained, x, y, "conv2d_3", map_images=True,
                                 data="bundled test digits")
cnnviz.plot.class_maps(averaged, "conv2d_3")""",
        """cnnviz.plot.class_maps(averaged, "conv2d_3", difference=True)""",
        "md:## Dreaming from a digit\n\nDeepDream: the whole of conv2d_2 amplified, starting "
        "from the six.",
        """dreamy = cnnviz.preset("default", trained, "conv2d_2", (28, 28, 1), start="image",
                       steps=10 if QUICK else 100)
dream = cnnviz.visualize_filters(trained, "conv2d_2", None, dreamy, objective="layer",
                                 start_image=six.image)
cnnviz.plot.filters(dream)""",
        "md:## Filters while the network learned\n\nThe snapshots `FilterSnapshots` kept: "
        "press play (epoch 0 is the untrained network).",
        """from pathlib import Path
from cnnviz.results import FilterResult
kept = [FilterResult.load(p) for p in sorted(Path(snapshots, "conv2d_2").glob("epoch_*.npz"))]
print(len(kept), "snapshots, epochs", [r.params["epoch"] for r in kept])
cnnviz.plot.evolution(kept)""",
    ],
}


def notebooks() -> dict[str, str]:
    """Each notebook's file name and its text, unexecuted."""
    texts = {}
    for name, cells in NOTEBOOKS.items():
        notebook = new_notebook()
        for i, text in enumerate(cells):
            if text.startswith("md:"):
                cell = new_markdown_cell(text[3:])
            else:
                cell = new_code_cell(text.removeprefix("=:"))
                if text.startswith("=:"):
                    cell.metadata["tags"] = [SAME]
            cell.id = f"{name[:2]}-{i}"  # stable ids: the files change with the cells
            notebook.cells.append(cell)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                           "language": "python"}
        texts[name] = nbformat.writes(notebook) + "\n"
    return texts


def sources_digest(notebook: nbformat.NotebookNode) -> str:
    """A digest of a notebook's code: what its kept outputs were computed from."""
    code = "\0".join(c.source for c in notebook.cells if c.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def trimmed(output: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """What a committed notebook keeps of an output: a display's PNG and plain text, printed
    text; nothing of warnings (stderr) or transient data."""
    if output.output_type == "stream":
        return output if output.name == "stdout" else None
    if output.output_type in ("display_data", "execute_result"):
        output.data = {k: v for k, v in output.data.items() if k in KEPT}
        output.metadata = {k: v for k, v in output.get("metadata", {}).items() if k in KEPT}
        return output if output.data else None
    return output


def kept_outputs(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """A cell's outputs as committed: each :func:`trimmed`, consecutive printed text joined."""
    kept: list[nbformat.NotebookNode] = []
    for output in outputs:
        output = trimmed(output)
        if output is None:
            continue
        if kept and output.output_type == "stream" and kept[-1].output_type == "stream":
            kept[-1].text += output.text
        else:
            kept.append(output)
    return kept


def execute(text: str, quick: bool = False, trim: bool = True) -> nbformat.NotebookNode:
    """Run a notebook (in a scratch folder; quick settings with ``quick``), its outputs
    trimmed to what is committed (``trim``)."""
    import nbclient

    notebook = nbformat.reads(text, as_version=4)
    os.environ["CNNVIZ_QUICK"] = "1" if quick else "0"
    with tempfile.TemporaryDirectory() as scratch:
        nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": scratch}}).execute()
    if trim:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = kept_outputs(cell.outputs)
    notebook.metadata["cnnviz"] = {"outputs": "full settings" if not quick else "quick",
                                   "sources": sources_digest(notebook)}
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true",
                        help="run each notebook on full settings and keep its outputs")
    parser.add_argument("names", nargs="*", help="only these notebooks (file names)")
    args = parser.parse_args()
    FOLDER.mkdir(exist_ok=True)
    for name, text in notebooks().items():
        if args.names and name not in args.names:
            continue
        if args.execute:
            text = nbformat.writes(execute(text)) + "\n"
        (FOLDER / name).write_text(text)
        print(f"wrote notebooks/{name}", file=sys.stderr)


if __name__ == "__main__":
    main()
