"""The tutorial notebooks: written by scripts/make_notebooks.py, committed with the outputs of a
full run (figures as PNGs, readable on GitHub and nbviewer), and still running today."""

import functools
import importlib.util
import os
from pathlib import Path

import pytest

# end to end: a kernel; the Python API's backend paths are the other tests', so CI's JAX stage
# leaves the notebooks to the TensorFlow stage
pytestmark = [pytest.mark.slow, pytest.mark.one_backend]

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
NOTEBOOK_BYTES = 1_500_000  # a committed notebook with its outputs stays under this


@functools.cache
def _script():
    pytest.importorskip("nbformat")
    script = Path(__file__).parent.parent / "scripts" / "make_notebooks.py"
    spec = importlib.util.spec_from_file_location("make_notebooks", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(notebook):
    return [(c.cell_type, c.id, c.source, c.metadata.get("tags")) for c in notebook.cells]


def _kinds(cell):
    """What a cell shows, without the values: each output's type and its formats."""
    return [(o.output_type, o.get("name"), sorted(o.get("data", {}))) for o in cell.outputs]


def _shows_a_figure(cell) -> bool:
    last = cell.source.strip().splitlines()[-1]
    return last.startswith(("cnnviz.plot.", "grids.map_grid", "sheet.image_gallery"))


def test_there_are_five_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_training.ipynb", "02_activations.ipynb",
                                           "03_filters.ipynb",
                                           "04_patterns_and_attribution.ipynb",
                                           "05_blog_series.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_what_its_script_writes(path):
    """The committed notebooks hold scripts/make_notebooks.py's cells, cell for cell."""
    import nbformat

    written = nbformat.reads(_script().notebooks()[path.name], as_version=4)
    committed = nbformat.read(path, as_version=4)
    assert _cells(committed) == _cells(written)
    assert committed.metadata.kernelspec == written.metadata.kernelspec


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_are_of_todays_cells_and_show_anywhere(path):
    """Outputs of a full run of these very cells, every figure a PNG, no plotly JSON or HTML
    (blank outside Jupyter, and megabytes), small enough to commit."""
    import nbformat

    script = _script()
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["cnnviz"] == {"outputs": "full settings",
                                           "sources": script.sources_digest(notebook)}
    assert path.stat().st_size <= NOTEBOOK_BYTES
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert {k for o in outputs for k in o.get("data", {})} <= set(script.KEPT)
    assert not [o for o in outputs if o.output_type == "stream" and o.name != "stdout"]
    figures = [c for c in code if _shows_a_figure(c)]
    assert figures
    for cell in figures:
        assert [o for o in cell.outputs if "image/png" in o.get("data", {})], cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_as_committed(path):
    """On quick settings today's code runs every cell, each figure both interactive (plotly)
    and a PNG, each cell showing what its committed output shows, and the cells whose output
    does not depend on the settings showing exactly the committed text."""
    import nbformat

    script = _script()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        executed = script.execute(script.notebooks()[path.name], quick=True, trim=False)
    finally:
        os.environ.pop("CNNVIZ_QUICK", None)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    for cell in executed.cells:
        if cell.cell_type == "code" and _shows_a_figure(cell) and "cnnviz.plot." in cell.source:
            formats = {k for o in cell.outputs for k in o.get("data", {})}
            assert {"application/vnd.plotly.v1+json", "image/png"} <= formats, cell.source
    committed = nbformat.read(path, as_version=4)
    for mine, theirs in zip(executed.cells, committed.cells, strict=True):
        if mine.cell_type != "code":
            continue
        mine.outputs = script.kept_outputs(mine.outputs)
        assert _kinds(mine) == _kinds(theirs), mine.source
        if script.SAME in mine.metadata.get("tags", []):
            assert [o.get("text", o.get("data", {}).get("text/plain")) for o in mine.outputs] \
                == [o.get("text", o.get("data", {}).get("text/plain")) for o in theirs.outputs]
    if path.stem == "02_activations":
        # After cnnviz drew its matplotlib figures, the user's own plt.show() still shows inline
        # (cnnviz never switches the global backend).
        cell = next(c for c in executed.cells if "plt.show()" in c.source)
        assert [o for o in cell.outputs if "image/png" in o.get("data", {})]
