"""The files ``explain`` writes: one input's methods side by side (PNG overlay, HTML with a
"maps alone" switch), several inputs as one grid of inputs × methods, and the checks of each
method — a table, the cascade's curves and a ⚠ where a method's map is shown."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.timing import timed
from cnnviz.render import figures, grids
from cnnviz.render.outputs import is_probabilities
from cnnviz.render.page import table, write_page
from cnnviz.render.tiles import attribution_rgb, data_url
from cnnviz.results import Attributions

GRID_SIDE = 112  # pixels a side of a tile in the HTML grid of explain --indices


def attribution_title(result: Attributions, index: int = 0) -> str:
    """"<data>: class T explained (predicted P, 97.3%)" — or "channel K of <layer> explained"
    — for input ``index``."""
    where = _input_name(result, index, result.meta.data or "input")
    target = int(result.targets[index])
    if result.params.get("target", "class") == "class":
        predicted, name = int(result.predictions[index]), result.meta.class_name
        value = result.probabilities[index, predicted]
        if is_probabilities(result.probabilities[index]):
            return (f"{where}: class {name(target)} explained (predicted {name(predicted)}, "
                    f"{value:.1%})")
        return (f"{where}: output {name(target)} explained (largest: {name(predicted)}, "
                f"{value:.4g})")
    of = result.params.get("target_layer") or "the output"
    how = "its strongest" if result.params.get("explained") == "predicted" else "given"
    return (f"{where}: channel {target} of {of} explained ({how}; mean "
            f"{result.probabilities[index, target]:.3g})")


WHY_CAM_LAYER = {"default": "the deepest layer whose maps are at least 7×7 — coarser ones land "
                            "anywhere; --layer to choose",
                 "target": "the layer whose channel is explained", "given": "as given"}


def cam_layer_line(result: Attributions) -> str:
    """Which layer the CAMs read, and why, in one line."""
    why = WHY_CAM_LAYER.get(result.params.get("cam_layer", "given"), "as given")
    return f"the class activation maps read layer {result.meta.layers[0]} ({why})"


def _input_name(result: Attributions, index: int, fallback: str) -> str:
    """Input ``index``'s name (its file or data index), where the result records it."""
    names = result.params.get("inputs") or []
    return names[index] if index < len(names) else fallback


def _flags(result: Attributions) -> dict[str, list[str]]:
    return {name: list(check.get("flags", []))
            for name, check in result.params.get("checks", {}).items()}


def checks_sections(result: Attributions) -> list[tuple[str, Any]]:
    """The checks of each method as a table and the cascade as curves (none without
    checks)."""
    checks = result.params.get("checks")
    if not checks:
        return []
    rows = [[name, f"{c['deletion']:.3f} vs {c['random_deletion']:.3f}",
             f"{c['insertion']:.3f} vs {c['random_insertion']:.3f}",
             f"{c['randomization']:.2f}",
             " → ".join(f"{rho:.2f}" for _, rho in c["cascade"]),
             "; ".join(c["flags"]) or "passes"] for name, c in checks.items()]
    header = ["method", "deletion AUC vs random (lower is better)",
              "insertion AUC vs random (higher is better)",
              "Spearman, every weight re-drawn (< 0.5)",
              "cascade from the top layer down", "verdict"]
    n = len(result.inputs)
    intro = (f"<p>Medians over {n} input{'s' if n != 1 else ''}. Deletion and insertion remove "
             "or add the pixels that differ from the darkest input, in the map's order, beside "
             "the same pixels in random order (Petsiuk et al. 2018). The randomization checks "
             "re-draw the model's weights, from the top layer down, and compare the maps "
             "(Spearman rank correlation; Adebayo et al. 2018): a map that keeps its shape "
             "shows the input, not what the model learned.</p>")
    curves = {name: [tuple(point) for point in c["cascade"]] for name, c in checks.items()}
    return [("Checks", intro + table(header, rows)),
            ("Cascading randomization", figures.cascade_figure(curves))]


def attribution_figure(result: Attributions, index: int = 0) -> Any:
    """The input, then every method's map over it with its colour bar (plotly)."""
    maps = {name: maps[index] for name, maps in result.displayed().items()}
    return figures.attribution_figure(result.meta.display(result.inputs[index]), maps,
                                      {name: result.signed(name) for name in maps},
                                      title=attribution_title(result, index),
                                      flags=_flags(result))


def attribution_picture(result: Attributions, index: int = 0) -> Any:
    """The static form of :func:`attribution_figure`: the input, then each method's map over
    it (a matplotlib figure, as ``explain_grid.png`` draws a row)."""
    shown = {name: maps[index:index + 1] for name, maps in result.displayed().items()}
    flags = _flags(result)
    return grids.attribution_grid(result.meta.display(result.inputs[index:index + 1]), shown,
                                  {name: result.signed(name) for name in shown},
                                  [row_label(result, index)],
                                  title=attribution_title(result, index),
                                  flagged=tuple(n for n, f in flags.items() if f))


def _page_intro(result: Attributions) -> str:
    parts = [f"model {result.meta.model}"]
    if result.meta.layers:
        parts.append(cam_layer_line(result))
    if any(_flags(result).values()):
        parts.append("⚠ marks a method that fails a check (see Checks)")
    return "; ".join(parts)


@timed("render")
def write_attribution_views(result: Attributions, method: str, out_dir: str | Path, *,
                            index: int = 0, standalone: bool = False) -> list[Path]:
    """Write ``explain_<method>.png`` (overlay) and ``explain.html`` (all methods, and their
    checks when they were run)."""
    out = Path(out_dir)
    title = attribution_title(result, index)
    warning = "".join(f"\n⚠ {flag}" for flag in _flags(result).get(method, [])[:2])
    fig = grids.attribution_overlay(result.meta.display(result.inputs[index]),
                                    result.displayed()[method][index],
                                    signed=result.signed(method),
                                    title=f"{method}\n{title}{warning}")
    written = [grids.save_png(fig, out / f"explain_{method}.png")]
    return written + write_page(out / "explain.html", "Attribution maps",
                                [("Methods side by side", attribution_figure(result, index)),
                                 *checks_sections(result)],
                                intro=_page_intro(result), standalone=standalone)


def row_label(result: Attributions, index: int) -> str:
    """A short label of input ``index``: its name, and the class explained (and predicted,
    where they differ)."""
    name = _input_name(result, index, f"input {index}")
    if result.params.get("target", "class") != "class":
        return f"{name}: channel {int(result.targets[index])}"
    label = result.meta.class_name
    target, predicted = int(result.targets[index]), int(result.predictions[index])
    said = f"{label(target)}" if target == predicted else \
        f"{label(target)} (predicted {label(predicted)})"
    return f"{name}: {said}"


@timed("render")
def write_attribution_grid(result: Attributions, out_dir: str | Path, *,
                           standalone: bool = False) -> list[Path]:
    """Several inputs: ``explain_grid.png`` (inputs × methods) and ``explain.html`` (the same
    grid as images, and the checks when they were run)."""
    out = Path(out_dir)
    shown = result.displayed()
    signed = {name: result.signed(name) for name in shown}
    flags = _flags(result)
    images = np.stack([result.meta.display(x) for x in result.inputs])
    labels = [row_label(result, i) for i in range(len(images))]
    title = f"{result.meta.data or 'inputs'}: {len(images)} inputs × {len(shown)} methods"
    fig = grids.attribution_grid(images, shown, signed, labels, title=title,
                                 flagged=tuple(n for n, f in flags.items() if f))
    written = [grids.save_png(fig, out / "explain_grid.png")]
    head = "".join(f"<th>{escape(('⚠ ' if flags.get(n) else '') + n)}<br>"
                   f"<small>{'signed' if signed[n] else '≥ 0'}</small></th>" for n in shown)
    rows = []
    for i, image in enumerate(images):
        cells = [f'<td><img src="{data_url(image, GRID_SIDE)}" alt="input {i}"><br>'
                 f"<small>{escape(labels[i])}</small></td>"]
        for name, maps in shown.items():
            tip = f"{name} over {labels[i]}: largest magnitude {float(np.abs(maps[i]).max()):.3g}"
            tile = data_url(attribution_rgb(image, maps[i], signed[name]), GRID_SIDE)
            cells.append(f'<td><img src="{tile}" alt="{escape(name)}" title="{escape(tip)}">'
                         "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    grid = ("<p>Each map over its input: red raises the score, blue lowers it (signed "
            "methods); non-negative maps in inferno; the more opaque, the larger; each map "
            "scaled to its own largest magnitude. Hover a map for its scale.</p>"
            f'<table class="grid"><thead><tr><th>input</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")
    return written + write_page(out / "explain.html", "Attribution maps",
                                [("Inputs × methods", grid), *checks_sections(result)],
                                intro=_page_intro(result), standalone=standalone)
