"""``evolution``: how a layer's filters developed while the network trained, from the
snapshots :class:`~cnnviz.training.callbacks.FilterSnapshots` left."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cnnviz.core.errors import CnnvizError
from cnnviz.core.fileio import refuse_overwrite
from cnnviz.jobs.common import Outcome
from cnnviz.render.evolution import evolution_figure, evolution_png
from cnnviz.render.grids import save_png
from cnnviz.render.page import write_page
from cnnviz.results import FilterResult

_EPOCH = re.compile(r"epoch_(\d{4,})\.npz")


def snapshot_layers(folder: Path) -> list[Path]:
    """The layer folders of a snapshots folder that hold filter snapshots."""
    if not folder.is_dir():
        raise CnnvizError(f"{folder} is not a folder of snapshots (cnnviz train --snapshots "
                          "or cnnviz.callbacks.FilterSnapshots write one)")
    return sorted(p for p in folder.iterdir() if p.is_dir() and _holds_filters(p))


def _holds_filters(folder: Path) -> bool:
    """Whether the first snapshot in ``folder`` is of filters (not of activations)."""
    found = sorted(f for f in folder.iterdir() if _EPOCH.fullmatch(f.name))
    try:
        return bool(found) and json.loads(found[0].with_suffix(".json").read_text()).get(
            "kind") == "filters"
    except (OSError, ValueError):
        return False


def evolution_job(folder: Path, *, force: bool = False, standalone: bool = False) -> Outcome:
    """``cnnviz evolution``: for each layer with filter snapshots in ``folder``, a page that
    plays its pattern gallery across the epochs (``evolution_<layer>.html``) and a PNG of its
    first filters across training (``evolution_<layer>.png``), written into ``folder``."""
    layers = snapshot_layers(folder)
    if not layers:
        raise CnnvizError(f"{folder} holds no filter snapshots (epoch_NNNN.npz in a layer "
                          "folder)")
    written, lines = [], []
    for path in layers:
        snapshots = sorted((int(m.group(1)), f) for f in path.iterdir()
                           if (m := _EPOCH.fullmatch(f.name)))
        results = [FilterResult.load(f) for _, f in snapshots]
        epochs = [e for e, _ in snapshots]
        layer = results[0].layer
        if any(r.filters.tolist() != results[0].filters.tolist() for r in results):
            raise CnnvizError(f"the snapshots in {path} are of different filters")
        galleries = [r.meta.display(r.patterns()) for r in results]
        html_path, png_path = (folder / f"evolution_{path.name}{s}" for s in (".html", ".png"))
        for target in (html_path, png_path):
            refuse_overwrite(target, force)
        written += write_page(html_path, f"{layer} while training", [(
            f"{layer}: every filter's optimal input pattern at each snapshot",
            evolution_figure(layer, epochs, galleries, results[0].filters))],
            standalone=standalone)
        written.append(save_png(evolution_png(layer, epochs, galleries, results[0].filters),
                                png_path))
        lines.append(f"{layer}: {len(epochs)} snapshots (epochs {epochs[0]}–{epochs[-1]}) of "
                     f"{len(results[0].filters)} filters")
    outcome = Outcome(list(dict.fromkeys(written)), lines)
    outcome.lines.append(outcome.wrote(folder))
    return outcome
