"""The atlas as a static site: ``index.html`` (the model's layers, with a summary and a strip of
patterns each) and one page per layer whose filters are image files loaded as they scroll into
view; a click opens a filter's detail: its pattern, the real images that excite it most with
its map over them, its class profile and, for the first layer, its kernel. Opens from the file
system or any static web server; the pages share one plotly.js."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from cnnviz.atlas.build import AtlasParts
from cnnviz.core.fileio import write_bytes
from cnnviz.core.text import file_stem
from cnnviz.core.timing import timed
from cnnviz.model.receptive import Field, upsample
from cnnviz.render.page import PLOTLY_JS, save_page, write_plotlyjs
from cnnviz.render.tiles import png

THUMB = 96  # pixels a side of a pattern's thumbnail


def overlaid(pixels: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """A real image (0..1, grey or colour) lit by a map (same height and width): full
    brightness where the map peaks, a quarter where it is zero, so where the filter answers
    stands out whatever the image's colours."""
    colour = pixels if pixels.shape[-1] == 3 else np.repeat(pixels, 3, axis=-1)
    top = float(heat.max())
    share = np.clip(heat, 0, None) / top if top > 0 else np.zeros(heat.shape)
    return colour * (0.25 + 0.75 * share[..., None])


def example_strips(filters: Any, statistics_index: Any, pixels: dict[int, Any],
                   maps: dict[int, np.ndarray], field: Field | None) -> list[np.ndarray]:
    """Per filter, its top real images side by side, each lit by the filter's map (as they
    are for a unit of a vector layer, ``field`` ``None``: it has no map)."""
    strips = []
    for f in filters:
        tiles = []
        for index in statistics_index[int(f)]:
            image = pixels[int(index)]
            heat = np.ones(image.shape[:2]) if field is None else upsample(  # no map: all lit
                maps[int(index)][None, :, :, int(f)], field, image.shape[:2])[0]
            tiles.append(overlaid(image, heat))
            tiles.append(np.ones((image.shape[0], 2, 3)))
        strips.append(np.concatenate(tiles[:-1], axis=1))
    return strips


@timed("render")
def write_site(out: Path, atlas: AtlasParts, extras: dict[str, dict[str, Any]],
               title: str) -> list[Path]:
    """Write ``index.html``, one page per layer and their images into ``out``. ``extras`` per
    layer: ``strips`` (example strip per filter, or absent), ``kernels`` (per filter, or
    absent), ``field`` and ``shape`` strings for the summary."""
    written = [write_plotlyjs(out)]
    rows = []
    for layer in atlas.layers:
        result, extra = atlas.filters[layer], extras.get(layer, {})
        stem = file_stem(layer)
        link = quote(stem, safe="")  # a stem's "%2F" is text on disk, not an escaped "/"
        shown = result.meta.display(result.patterns())
        filters = []
        for i, f in enumerate(result.filters.tolist()):
            thumb = out / "img" / stem / f"{f}.png"
            written.append(write_bytes(thumb, png(shown[i])))
            entry: dict[str, Any] = {
                "f": f, "img": f"img/{link}/{f}.png", "out": round(float(result.output[i]), 4),
                "dead": bool(result.dead[i])}
            if "strips" in extra:
                strip = out / "img" / stem / f"{f}-top.png"
                written.append(write_bytes(strip, png(extra["strips"][i], side=84)))
                entry["top"] = f"img/{link}/{f}-top.png"
            if "kernels" in extra:
                kernel = out / "img" / stem / f"{f}-kernel.png"
                written.append(write_bytes(kernel, png(extra["kernels"][i], side=72)))
                entry["kernel"] = f"img/{link}/{f}-kernel.png"
            if atlas.statistics is not None:
                stats = atlas.statistics
                entry["classes"] = [None if np.isnan(v) else round(float(v), 4)
                                    for v in stats.mean(layer)[:, f]]
                entry["best"] = [round(float(v), 4) for v in stats.top_values[layer][f]]
                entry["index"] = [int(v) for v in stats.top_index[layer][f]]
            filters.append(entry)
        page = _layer_page(layer, filters, atlas.classes, title, extra)
        written.append(save_page(page, out / f"{stem}.html"))
        dead = int(result.dead.sum())
        rows.append((layer, link, len(filters), dead, extra, filters[:12]))
    written.append(save_page(_index(rows, title, atlas), out / "index.html"))
    return written


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:6px}.tile{width:104px;font-size:11px;cursor:pointer}
.tile img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #bbb}
.dead{color:#c00}#detail{position:fixed;right:1em;top:1em;width:560px;max-height:92vh;
overflow:auto;background:#fff;border:1px solid #999;padding:1em;box-shadow:0 2px 12px #0003;
display:none}#detail img{image-rendering:pixelated}table{border-collapse:collapse}
td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}"""


def _layer_page(layer: str, filters: list[dict[str, Any]], classes: tuple[str, ...],
                title: str, extra: dict[str, Any]) -> str:
    units = extra.get("units", "filters")
    one = SINGULAR[units]
    names = extra.get("names") or [str(e["f"]) for e in filters]
    tiles = "\n".join(
        f'<div class="tile" data-i="{i}"><img loading="lazy" src="{html.escape(e["img"])}" '
        f'alt="{one} {html.escape(name)}"><br><span class="'
        f'{"dead" if e["dead"] else ""}">{html.escape(name)}: {e["out"]:.2f}</span></div>'
        for i, (e, name) in enumerate(zip(filters, names, strict=True)))
    for entry, name in zip(filters, names, strict=True):
        entry["name"] = name
    data = json.dumps({"filters": filters, "classes": list(classes), "layer": layer,
                       "units": one})
    data = data.replace("</", "<\\/")  # no </script> inside the script
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(title)} · {html.escape(layer)}</title><style>{_STYLE}</style></head><body>
<p><a href="index.html">← all layers</a></p>
<h1>{html.escape(layer)}</h1><p>{len(filters)} {units} · receptive field
{html.escape(str(extra.get("field", "?")))} · output {html.escape(str(extra.get("shape", "")))}
· {_explained(units)}. Click a pattern for its detail.</p>
<div class="grid">{tiles}</div><div id="detail"></div>
<script>const ATLAS = {data};</script>
<script src="{PLOTLY_JS}" defer></script>
<script>{_DETAIL_JS}</script></body></html>"""


SINGULAR = {"filters": "filter", "units": "unit", "classes": "class"}


def _explained(units: str) -> str:
    """What a layer page's numbers mean."""
    if units == "classes":
        return ("what the model takes each class to be: the image each class logit answers "
                "most (before the softmax); the number under it is the class's probability")
    return f"the number under each pattern is what the {SINGULAR[units]} outputs for it (red: dead)"


_DETAIL_JS = """
const detail = document.getElementById('detail');
function esc(s) { const d = document.createElement('div'); d.textContent = s; return d.innerHTML; }
document.querySelector('.grid').addEventListener('click', (ev) => {
  const tile = ev.target.closest('.tile'); if (!tile) return;
  const e = ATLAS.filters[Number(tile.dataset.i)];
  let h = '<button onclick="detail.style.display=\\'none\\'">close</button>';
  h += '<h2>' + esc(ATLAS.layer) + ' · ' + ATLAS.units + ' ' + esc(e.name) + '</h2>';
  h += '<img src="' + e.img + '" width="192" height="192" alt="pattern">';
  if (e.kernel) h += ' <img src="' + e.kernel + '" width="96" alt="kernel"> kernel';
  h += '<p>output for its pattern: ' + e.out + (e.dead ? ' (dead)' : '') + '</p>';
  if (e.top) h += '<p>the real images that excite it most' +
    (ATLAS.units === 'filter' ? ', lit where its map answers:' : ':') + '</p>' +
    '<img src="' + e.top + '" style="max-width:100%" alt="top images">' +
    '<p>' + e.best.map((v, j) => '#' + e.index[j] + ': ' + v.toFixed(3)).join(' · ') + '</p>';
  h += '<div id="profile" style="height:220px"></div>';
  detail.innerHTML = h; detail.style.display = 'block';
  if (e.classes && window.Plotly) {
    Plotly.newPlot('profile', [{type: 'bar', x: ATLAS.classes.length ? ATLAS.classes :
      e.classes.map((_, j) => String(j)), y: e.classes}], {margin: {t: 30, b: 40, l: 40, r: 10},
      title: {text: ATLAS.units === 'filter' ? 'mean of its map per class' :
      'its mean value per class', font: {size: 12}}}, {displayModeBar: false});
  }
});
"""


def _counted(rows: list[tuple[Any, ...]]) -> str:
    """"224 filters and 10 classes": the images of the layers, by what they are of."""
    counts: dict[str, int] = {}
    for row in rows:
        units = row[4].get("units", "filters")
        counts[units] = counts.get(units, 0) + row[2]
    return " and ".join(f"{n:,} {units}" for units, n in counts.items())


def _index(rows: list[tuple[Any, ...]], title: str, atlas: AtlasParts) -> str:
    body = []
    for layer, link, count, dead, extra, first in rows:
        strip = "".join(f'<img loading="lazy" src="{html.escape(e["img"])}" width="48" '
                        f'height="48" style="image-rendering:pixelated" alt="">' for e in first)
        kind = "" if extra.get("units", "filters") == "filters" else f" ({extra['units']})"
        body.append(f'<tr><td><a href="{html.escape(link)}.html">{html.escape(layer)}</a>'
                    f'{kind}</td>'
                    f'<td>{count}</td><td class="{"dead" if dead else ""}">{dead}</td>'
                    f'<td>{html.escape(str(extra.get("shape", "")))}</td>'
                    f'<td>{html.escape(str(extra.get("field", "")))}</td><td>{strip}</td></tr>')
    data = "no data: patterns only" if atlas.statistics is None else (
        f"{atlas.statistics.stop - atlas.statistics.start:,} real images")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>
<p>{len(rows)} layers, {_counted(rows)}; {data}.</p>
<table><tr><th>layer</th><th>filters</th><th>dead</th><th>output</th><th>receptive field</th>
<th>first patterns</th></tr>{''.join(body)}</table></body></html>"""
