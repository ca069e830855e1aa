"""The files a command writes: PNG grids and the HTML page for a set of results."""

from __future__ import annotations

from pathlib import Path

from cnnviz.activations import Activations
from cnnviz.render import grids, html


def _file_stem(layer: str) -> str:
    return layer.replace("/", "__")


def write_activation_views(acts: Activations, out_dir: str | Path, *, index: int = 0,
                           scale: str = "shared", class_names: tuple[str, ...] | None = None,
                           title: str = "") -> list[Path]:
    """Write ``input.png``, one ``<layer>.png`` grid per map layer and ``activations.html`` for
    input ``index``; return the paths written."""
    out = Path(out_dir)
    label = None if acts.labels is None else int(acts.labels[index])
    probabilities = acts.probabilities[index]
    written = [grids.save_png(grids.input_figure(acts.inputs[index], probabilities, label=label,
                                                 class_names=class_names, title=title),
                              out / "input.png")]
    map_layers = {name: m[index] for name, m in acts.maps.items() if m.ndim == 4}
    for name, maps in map_layers.items():
        fig = grids.map_grid(maps, title=f"{name}: {maps.shape[-1]} maps of "
                             f"{maps.shape[0]}×{maps.shape[1]}", scale=scale)
        written.append(grids.save_png(fig, out / f"{_file_stem(name)}.png"))
    sections = [("Input and prediction", html.input_figure(acts.inputs[index], probabilities,
                                                           label=label, class_names=class_names))]
    if map_layers:
        sections.append(("Activation maps", html.layer_maps_figure(map_layers)))
    page = html.page(title or "cnnviz activations", sections,
                     intro=f"model {acts.meta.get('model', '?')}; layers: {', '.join(map_layers)}")
    written.append(html.save_page(page, out / "activations.html"))
    return written
