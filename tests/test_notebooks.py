"""The tutorial notebooks run from top to bottom (on small settings)."""

import os
from pathlib import Path

import pytest

# end to end: a kernel; the Python API's backend paths are the other tests', so CI's JAX stage
# leaves the notebooks to the TensorFlow stage
pytestmark = [pytest.mark.slow, pytest.mark.one_backend]

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_five_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_training.ipynb", "02_activations.ipynb",
                                           "03_filters.ipynb",
                                           "04_patterns_and_attribution.ipynb",
                                           "05_blog_series.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_what_its_script_writes(path):
    """The committed notebooks are scripts/make_notebooks.py's, cell for cell."""
    import importlib.util

    pytest.importorskip("nbformat")
    script = Path(__file__).parent.parent / "scripts" / "make_notebooks.py"
    spec = importlib.util.spec_from_file_location("make_notebooks", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.notebooks()[path.name] == path.read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("CNNVIZ_QUICK", "1")
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    if path.stem != "01_training":
        assert figures, "the notebook shows interactive plotly figures"
    if path.stem == "02_activations":
        # After cnnviz drew its matplotlib figures, the user's own plt.show() still shows inline
        # (cnnviz never switches the global backend).
        cell = next(c for c in notebook.cells if "plt.show()" in c.source)
        assert [o for o in cell.outputs if "image/png" in o.get("data", {})]
        grid = next(c for c in notebook.cells if "grids.map_grid" in c.source)
        assert [o for o in grid.outputs if "image/png" in o.get("data", {})]
