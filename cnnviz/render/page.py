"""HTML pages and their widgets: plotly figures as divs, tables, the input × layer switcher,
and plotly.js either inlined (a self-contained file) or shared by every page of a folder."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.fileio import write_bytes, write_text
from cnnviz.render.tiles import mosaic

PLOTLY_JS = "plotly.min.js"

PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
p.meta { color: #555; }
table.summary { border-collapse: collapse; font-size: 0.9rem; }
table.summary td, table.summary th { border-bottom: 1px solid #ddd; padding: 2px 10px;
  text-align: left; }
"""


def figure_div(fig: Any, div_id: str) -> str:
    """A plotly figure as a ``<div>`` plus its script, for a page that inlines plotly.js."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def switchable_maps(maps: list[dict[str, np.ndarray]], input_labels: list[str],
                    div_id: str = "activation-maps") -> str:
    """HTML: the maps of every layer for several inputs (``maps[i][layer]`` is H×W×M), with two
    menus, input and layer, that show one mosaic at a time; hover shows map, position, value."""
    import plotly.graph_objects as go

    layers = list(maps[0])
    fig = go.Figure()
    for i, per_layer in enumerate(maps):
        for j, name in enumerate(layers):
            z, where, _ = mosaic(per_layer[name], gap=max(1, round(0.3 * per_layer[name]
                                                                         .shape[0])))
            fig.add_trace(go.Heatmap(
                z=z.astype(np.float32),
                customdata=where[..., 0].astype(np.uint8 if z.size and where.max() < 255
                                                else np.int16),
                colorscale="Viridis", name=f"{input_labels[i]} · {name}",
                visible=i == 0 and j == 0, hoverongaps=False,
                hovertemplate=(f"{html.escape(name)}<br>map %{{customdata}}<br>"
                               "value %{z:.4g}<extra></extra>")))
    fig.update_layout(height=640, margin=dict(l=20, r=20, t=20, b=20), plot_bgcolor="white")
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")

    def options(labels: list[str]) -> str:
        return "".join(f'<option value="{n}">{html.escape(label)}</option>'
                       for n, label in enumerate(labels))

    controls = (f'<p><label>input <select id="{div_id}-input">{options(input_labels)}</select>'
                f'</label> <label>layer <select id="{div_id}-layer">{options(layers)}</select>'
                "</label></p>")
    script = f"""<script>
(function () {{
  const inputs = {len(maps)}, layers = {len(layers)};
  function show() {{
    const i = +document.getElementById("{div_id}-input").value;
    const l = +document.getElementById("{div_id}-layer").value;
    const visible = [];
    for (let a = 0; a < inputs; a++) for (let b = 0; b < layers; b++)
      visible.push(a === i && b === l);
    Plotly.restyle("{div_id}", {{visible: visible}});
  }}
  document.getElementById("{div_id}-input").addEventListener("change", show);
  document.getElementById("{div_id}-layer").addEventListener("change", show);
}})();
</script>"""
    return controls + figure_div(fig, div_id) + script


def tiled_maps(pictures: dict[str, str], summaries: dict[str, np.ndarray],
               div_id: str = "maps") -> str:
    """HTML for layers too big to embed: a layer menu showing one layer's map grid at a time
    (``pictures``: layer → its PNG beside the page, loaded when shown) and a bar chart of each
    map's mean and largest value (``summaries``: layer → (maps, 2)) that follows the menu."""
    import plotly.graph_objects as go

    names = list(pictures)
    fig = go.Figure()
    for i, name in enumerate(names):
        means, tops = summaries[name][:, 0], summaries[name][:, 1]
        for values, label in ((tops, "largest"), (means, "mean")):  # the means in front
            fig.add_trace(go.Bar(
                y=values.astype(np.float32), name=label, visible=i == 0,
                hovertemplate=f"{html.escape(name)}<br>map %{{x}}<br>{label} %{{y:.4g}}"
                              "<extra></extra>"))
    fig.update_layout(barmode="overlay", height=300, margin=dict(l=50, r=20, t=30, b=40),
                      xaxis_title="map", yaxis_title="activation", plot_bgcolor="white")
    options = "".join(f'<option value="{i}">{html.escape(n)}</option>'
                      for i, n in enumerate(names))
    images = "".join(
        f'<img id="{div_id}-img-{i}" data-src="{html.escape(src)}" alt="{html.escape(n)}" '
        f'style="max-width:100%;display:{"block" if i == 0 else "none"}"'
        + (f' src="{html.escape(src)}"' if i == 0 else "") + ">"
        for i, (n, src) in enumerate(pictures.items()))
    script = f"""<script>
(function () {{
  const menu = document.getElementById("{div_id}-layer"), layers = {len(names)};
  menu.addEventListener("change", function () {{
    const chosen = +menu.value, visible = [];
    for (let l = 0; l < layers; l++) {{
      const img = document.getElementById("{div_id}-img-" + l);
      if (l === chosen && !img.getAttribute("src")) img.setAttribute("src", img.dataset.src);
      img.style.display = l === chosen ? "block" : "none";
      visible.push(l === chosen, l === chosen);
    }}
    Plotly.restyle("{div_id}-numbers", {{visible: visible}});
  }});
}})();
</script>"""
    return (f'<p><label>layer <select id="{div_id}-layer">{options}</select></label></p>'
            + images + "<p>Each map's mean and largest value (every value: activations.npz, "
            "<code>cnnviz.Activations.load</code>):</p>" + figure_div(fig, f"{div_id}-numbers")
            + script)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain HTML table."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def page(title: str, sections: list[tuple[str, Any]], *, intro: str = "",
         standalone: bool = True) -> str:
    """An HTML page of (heading, figure or raw HTML) sections. ``standalone`` inlines plotly.js
    (one self-contained file); otherwise the page loads ``plotly.min.js`` from its own folder
    (:func:`write_page` puts it there)."""
    from plotly.offline import get_plotlyjs

    script = (f'<script type="text/javascript">{get_plotlyjs()}</script>' if standalone
              else f'<script src="{PLOTLY_JS}" charset="utf-8"></script>')
    parts = []
    for i, (heading, fig) in enumerate(sections):
        body = fig if isinstance(fig, str) else figure_div(fig, f"figure-{i}")
        parts.append(f"<section><h2>{html.escape(heading)}</h2>\n{body}\n</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_STYLE}</style>\n"
        f"{script}\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        + (f"<p class=\"meta\">{html.escape(intro)}</p>\n" if intro else "")
        + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def save_page(text: str, path: str | Path) -> Path:
    """Write an HTML page atomically."""
    return write_text(path, text)


def write_plotlyjs(folder: str | Path) -> Path:
    """Put the one ``plotly.min.js`` that the folder's pages share there (rewritten only when
    missing or from another plotly version)."""
    from plotly.offline import get_plotlyjs

    path = Path(folder) / PLOTLY_JS
    code = get_plotlyjs().encode("utf-8")
    if not (path.is_file() and path.stat().st_size == len(code) and path.read_bytes() == code):
        write_bytes(path, code)
    return path


def write_page(path: str | Path, title: str, sections: list[tuple[str, Any]], *,
               intro: str = "", standalone: bool = False) -> list[Path]:
    """Write a page to ``path``; unless ``standalone``, with the shared plotly.js beside it.
    Returns the files written."""
    path = Path(path)
    text = page(title, sections, intro=intro, standalone=standalone)
    shared = [] if standalone else [write_plotlyjs(path.parent)]
    return [save_page(text, path), *shared]
