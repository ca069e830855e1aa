"""Plotly figure builders: map mosaics, image galleries, curves, class patterns, attributions."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from cnnviz.render.outputs import output_bars
from cnnviz.render.tiles import grid_shape, image_mosaic, mosaic


def _tile_labels(corners: list[tuple[int, int]], width: int) -> list[dict[str, Any]]:
    return [dict(x=left + (width - 1) / 2, y=top - 0.5, text=str(i), showarrow=False,
                 yanchor="bottom", font=dict(size=9, color="#555"), xref="x", yref="y")
            for i, (top, left) in enumerate(corners)]


def layer_maps_figure(layer_maps: dict[str, np.ndarray], *, colorscale: str = "Viridis",
                      symmetric: bool = False, unit: str = "map", value: str = "activation"):
    """One heatmap mosaic per layer (H×W×M each) with a menu to switch layers; hovering a pixel
    shows the map index, the position and the value (colours centred on 0 with ``symmetric``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    states = []
    names = list(layer_maps)
    for i, (name, maps) in enumerate(layer_maps.items()):
        height, width, n = maps.shape
        gap = max(1, round(0.3 * height))
        z, custom, corners = mosaic(maps, gap=gap)
        finite = maps[np.isfinite(maps)]
        zmin, zmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if symmetric:
            zmin, zmax = -max(abs(zmin), abs(zmax)), max(abs(zmin), abs(zmax))
        fig.add_trace(go.Heatmap(
            z=z.astype(np.float32), customdata=custom.astype(np.int16), colorscale=colorscale,
            zmin=zmin,
            zmax=zmax if zmax > zmin else zmin + 1.0, hoverongaps=False, name=name,
            visible=i == 0, colorbar=dict(title=dict(text=value)),
            hovertemplate=(f"{html.escape(name)}<br>{unit} %{{customdata[0]}}<br>"
                           "row %{customdata[1]}, col %{customdata[2]}<br>"
                           f"{html.escape(value)} %{{z:.4g}}<extra></extra>")))
        states.append(dict(
            annotations=_tile_labels(corners, width),
            title=dict(text=f"{name}: {n} {unit}s of {height}×{width}")))
    buttons = [dict(label=name, method="update",
                    args=[{"visible": [j == i for j in range(len(names))]}, states[i]])
               for i, name in enumerate(names)]
    fig.update_layout(
        **states[0] if states else {},
        updatemenus=[dict(buttons=buttons, direction="down", x=0, xanchor="left", y=1.12,
                          yanchor="bottom", showactive=True)] if len(names) > 1 else [],
        height=720, margin=dict(l=20, r=20, t=90, b=20), plot_bgcolor="white")
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return fig


def input_figure(image: np.ndarray, probabilities: np.ndarray, *, label: int | str | None = None,
                 class_names: tuple[str, ...] | None = None):
    """The input (display pixels in 0..1; hover shows them) beside the predicted class
    probabilities — or, for an output that is no class vector, its strongest channels."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    bars = output_bars(probabilities, class_names)
    title = "input" + (f" (label {label})" if label is not None else "")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6],
                        subplot_titles=(title, bars.title))
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)  # display pixels
    if image.shape[-1] == 1:
        fig.add_trace(go.Heatmap(z=image[..., 0], colorscale="gray", zmin=0, zmax=1,
                                 showscale=False,
                                 hovertemplate="row %{y}, col %{x}<br>pixel %{z:.3f}"
                                               "<extra></extra>"), 1, 1)
    else:
        fig.add_trace(go.Image(z=np.round(255 * image).astype(np.uint8)), 1, 1)
    kind = "class" if bars.probabilities else "channel"
    fig.add_trace(go.Bar(x=bars.names, y=bars.values,
                         marker_color=["#ff7f0e" if i == bars.highlight else "#1f77b4"
                                       for i in range(len(bars.names))],
                         hovertemplate=f"{kind} %{{x}}<br>{bars.axis} %{{y:.4f}}<extra></extra>"),
                  1, 2)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False, row=1, col=1)
    fig.update_xaxes(visible=False, row=1, col=1)
    fig.update_yaxes(range=[0, 1] if bars.probabilities else None, title_text=bars.axis,
                     row=1, col=2)
    fig.update_xaxes(type="category", row=1, col=2)
    fig.update_layout(height=360, showlegend=False, margin=dict(l=20, r=20, t=50, b=30))
    return fig


def image_gallery_figure(images: np.ndarray, labels: list[str], values: np.ndarray,
                         hovertemplate: str, *, value_range: tuple[float, float],
                         flagged: list[bool] | None = None, title: str = "",
                         columns: int | None = None, hover_text: list[str] | None = None):
    """Images (N×H×W×C) as one mosaic in ``value_range``; each tile has a label above it and
    hovering it shows its row of ``values`` (N×V) as ``customdata[0..V-1]`` through
    ``hovertemplate`` (and its ``hover_text`` line, when given); flagged labels are red."""
    import plotly.graph_objects as go

    n, height, width = images.shape[:3]
    z, _, corners, gap = image_mosaic(images, value_range, columns)
    # Display only (hover lives on the tile grid): 8-bit levels, gaps white, keep the page small.
    levels = np.round(255 * np.nan_to_num(z, nan=1.0)).astype(np.uint8)
    if z.shape[-1] == 1:
        picture = go.Heatmap(z=levels[..., 0], colorscale="gray", zmin=0, zmax=255,
                             showscale=False, hoverinfo="skip")
    else:
        picture = go.Image(z=levels, hoverinfo="skip")
    # Hover lives on a transparent grid with one cell per tile, so the page carries one row of
    # values per tile rather than per pixel.
    rows, cols = grid_shape(n, columns)
    values = np.asarray(values, dtype=np.float64).reshape(n, -1)
    cells = np.full((rows, cols), np.nan)
    custom = np.full((rows, cols, values.shape[1]), np.nan)
    text = np.full((rows, cols), "", dtype=object)
    for i in range(n):
        cells[i // cols, i % cols] = i
        custom[i // cols, i % cols] = values[i]
        text[i // cols, i % cols] = hover_text[i] if hover_text else ""
    if hover_text:
        hovertemplate += "<br>%{text}"
    hover = go.Heatmap(z=cells, customdata=custom, text=text if hover_text else None,
                       x0=(width - 1) / 2, dx=width + gap,
                       y0=(height - 1) / 2, dy=height + gap, opacity=0, showscale=False,
                       hoverongaps=False, hovertemplate=hovertemplate + "<extra></extra>")
    flagged = flagged or [False] * n
    annotations = [dict(x=left - 0.5, y=top - 0.5, text=html.escape(label), showarrow=False,
                        xanchor="left", yanchor="bottom", xref="x", yref="y",
                        font=dict(size=9, color="#c00" if flag else "#555"))
                   for (top, left), label, flag in zip(corners, labels, flagged, strict=True)]
    fig = go.Figure([picture, hover])
    fig.update_layout(title=dict(text=title), annotations=annotations, plot_bgcolor="white",
                      height=int(min(140 + 95 * rows, 130 + 1000 * z.shape[0] / z.shape[1])),
                      margin=dict(l=10, r=10, t=60, b=10))
    fig.update_xaxes(visible=False, constrain="domain", range=[-0.5, z.shape[1] - 0.5])
    fig.update_yaxes(visible=False, range=[z.shape[0] - 0.5, -0.5 - gap], scaleanchor="x")
    return fig


def curves_figure(curves: np.ndarray, names: list[str], steps: int | None = None):
    """The objective along the ascent, one line per image (the first shown, the rest a click
    away in the legend): a point a step, or — a curve kept at a bounded resolution over
    ``steps`` — the last step of each span."""
    import plotly.graph_objects as go

    fig = go.Figure()
    points = curves.shape[1]
    total = steps if steps and steps > points else points
    steps = (np.arange(1, points + 1) * total + points - 1) // max(points, 1)
    for i, (curve, name) in enumerate(zip(curves, names, strict=True)):
        fig.add_trace(go.Scatter(x=steps, y=curve, mode="lines", name=name,
                                 visible=True if i < 8 else "legendonly",
                                 hovertemplate=f"{html.escape(name)}<br>step %{{x}}<br>"
                                               "activation %{y:.4g}<extra></extra>"))
    fig.update_layout(height=380, xaxis_title="step", yaxis_title="activation",
                      margin=dict(l=50, r=20, t=20, b=40))
    return fig


def patterns_figure(layers: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                    counts: np.ndarray, class_names: tuple[str, ...], *,
                    diverging: bool = False):
    """A value per class (x) of every map or unit (y) of each layer, with menus to switch
    layers and to sort the rows: by index, by preferred class, or by one class's value.
    ``layers`` maps a name to (values, means, stds), each (classes, units); ``diverging``:
    the values are a contrast centred on zero (red above the map's mean over classes)."""
    import plotly.graph_objects as go

    names = list(layers)
    sorts: dict[str, list[np.ndarray]] = {"map index": [], "preferred class": []}
    for cname in class_names:
        sorts[f"class {cname}"] = []
    for means, _, _ in layers.values():
        units = means.shape[1]
        sorts["map index"].append(np.arange(units))
        best = np.argmax(means, axis=0)
        sorts["preferred class"].append(np.lexsort((-means.max(axis=0), best)))
        for c, cname in enumerate(class_names):
            sorts[f"class {cname}"].append(np.argsort(-means[c], kind="stable"))

    def arrays(i: int, order: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
        values, means, stds = layers[names[i]]
        custom = np.stack([np.broadcast_to(order[:, None], (len(order), len(class_names))),
                           stds[:, order].T,
                           np.broadcast_to(counts[None, :], (len(order), len(class_names))),
                           means[:, order].T], axis=-1)
        return values[:, order].T, [str(u) for u in order], custom

    fig = go.Figure()
    value = "minus the mean over classes %{z:.4g}<br>" if diverging else ""
    for i, name in enumerate(names):
        z, y, custom = arrays(i, sorts["map index"][i])
        top = float(np.abs(z).max()) or 1.0
        fig.add_trace(go.Heatmap(
            z=z, x=list(class_names), y=y, customdata=custom, name=name, visible=i == 0,
            colorscale="RdBu_r" if diverging else "Magma",
            **({"zmin": -top, "zmax": top} if diverging else {}),
            colorbar=dict(title=dict(text="− mean" if diverging else "mean")),
            hovertemplate=(f"{html.escape(name)}<br>unit %{{customdata[0]}}<br>class %{{x}}<br>"
                           f"{value}mean %{{customdata[3]:.4g}}<br>std %{{customdata[1]:.3g}}"
                           "<br>images %{customdata[2]}<extra></extra>")))
    layer_menu = dict(buttons=[dict(label=name, method="update", args=[
        {"visible": [j == i for j in range(len(names))]}, {"title.text": name}])
        for i, name in enumerate(names)], x=0, xanchor="left", y=1.1, yanchor="bottom")
    sort_buttons = []
    for label, orders in sorts.items():
        built = [arrays(i, order) for i, order in enumerate(orders)]
        sort_buttons.append(dict(label=f"sort: {label}", method="restyle", args=[{
            "z": [b[0] for b in built], "y": [b[1] for b in built],
            "customdata": [b[2] for b in built]}]))
    sort_menu = dict(buttons=sort_buttons, x=0.3, xanchor="left", y=1.1, yanchor="bottom")
    tallest = max(means.shape[1] for means, _, _ in layers.values())
    fig.update_layout(updatemenus=[layer_menu, sort_menu], title=dict(text=names[0]),
                      height=int(220 + 7 * min(tallest, 200)),
                      margin=dict(l=60, r=20, t=100, b=40))
    fig.update_yaxes(type="category", autorange="reversed", title_text="map / unit")
    fig.update_xaxes(type="category", title_text="class")
    return fig


def attribution_figure(image: np.ndarray, maps: dict[str, np.ndarray],
                       signed: dict[str, bool], *, title: str = "", columns: int = 4,
                       flags: dict[str, list[str]] | None = None):
    """The input, then each method's map laid over it with its own colour bar: signed maps on a
    diverging scale centred on zero (red raises the score, blue lowers it), non-negative maps
    on a sequential one; a button shows the maps alone. ``image`` is display pixels (0..1);
    a method with ``flags`` (the checks it fails) is marked ⚠ in its title."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(maps)
    cols = min(columns, len(names) + 1)
    rows = -(-(len(names) + 1) // cols)
    flags = flags or {}
    titles = ["input", *[f"{'⚠ ' if flags.get(n) else ''}{n} ({'signed' if signed[n] else '≥ 0'})"
                         for n in names]]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07,
                        vertical_spacing=0.12)
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    for i in range(len(names) + 1):  # the input, then under each map
        fig.add_trace(_input_trace(image, hover=i == 0), i // cols + 1, i % cols + 1)
    for i, name in enumerate(names, start=1):
        z = np.asarray(maps[name], dtype=np.float64)
        top = float(np.abs(z).max()) or 1.0
        cell = fig.get_subplot(i // cols + 1, i % cols + 1)
        x_domain, y_domain = cell.xaxis.domain, cell.yaxis.domain
        flagged = "".join(f"<br>⚠ {html.escape(f)}" for f in flags.get(name, []))
        fig.add_trace(go.Heatmap(
            z=z, colorscale=see_through(signed[name], True),
            zmin=-top if signed[name] else 0.0, zmax=top,
            colorbar=dict(x=x_domain[1] + 0.004, y=sum(y_domain) / 2, xanchor="left",
                          len=y_domain[1] - y_domain[0], thickness=10, tickfont=dict(size=9)),
            hovertemplate=f"{html.escape(name)}<br>row %{{y}}, col %{{x}}<br>attribution "
                          f"%{{z:.4g}}{flagged}<extra></extra>"), i // cols + 1, i % cols + 1)
    # the inputs keep their own grey scale: a null here would reset it to plotly's default
    inputs = len(names) + 1
    scales = [[[0.0, "rgb(0,0,0)"], [1.0, "rgb(255,255,255)"]]] * inputs
    over = {"visible": [True] * len(fig.data),
            "colorscale": scales + [see_through(signed[n], True) for n in names]}
    alone = {"visible": [True] + [False] * len(names) + [True] * len(names),
             "colorscale": scales + [see_through(signed[n], False) for n in names]}
    fig.update_layout(updatemenus=[dict(
        type="buttons", direction="right", x=1, y=1.0, xanchor="right", yanchor="bottom",
        pad=dict(b=30), buttons=[dict(label="over the input", method="restyle", args=[over]),
                                 dict(label="maps alone", method="restyle", args=[alone])])],
        plot_bgcolor="white")
    fig.update_yaxes(autorange="reversed", visible=False)
    fig.update_xaxes(visible=False, constrain="domain")
    for i in range(rows * cols):
        fig.update_yaxes(scaleanchor=f"x{'' if i == 0 else i + 1}", row=i // cols + 1,
                         col=i % cols + 1)
    fig.update_layout(title=dict(text=title), height=90 + 300 * rows,
                      margin=dict(l=10, r=40, t=130, b=10))
    return fig


def see_through(signed: bool, fade: bool) -> list[list[Any]]:
    """The diverging (signed) or sequential colour scale; with ``fade``, a colour's opacity
    grows with the size of its value, so small values leave the input beneath visible."""
    from plotly.colors import sample_colorscale

    stops = np.linspace(0.0, 1.0, 11)
    colours = sample_colorscale("RdBu_r" if signed else "Inferno", list(stops))
    scale = []
    for stop, colour in zip(stops, colours, strict=True):
        strength = abs(2 * stop - 1) if signed else stop
        alpha = strength if fade else 1.0
        scale.append([float(stop), colour.replace("rgb(", "rgba(").replace(")", f", {alpha:.3f})")])
    return scale


def _input_trace(image: np.ndarray, hover: bool) -> Any:
    """Display pixels as a grey heatmap or a colour image; hover only where asked."""
    import plotly.graph_objects as go

    if image.shape[-1] == 1:
        return go.Heatmap(z=image[..., 0], colorscale="gray", zmin=0, zmax=1, showscale=False,
                          hoverinfo=None if hover else "skip",
                          hovertemplate="row %{y}, col %{x}<br>pixel %{z:.3f}<extra></extra>"
                          if hover else None)
    return go.Image(z=np.round(255 * image).astype(np.uint8), hoverinfo="all" if hover
                    else "skip")


def cascade_figure(curves: dict[str, list[tuple[str, float]]], limit: float = 0.5):
    """Cascading randomization: per method, the median Spearman correlation between its map
    and the map after the layers from the top down to each one are re-drawn; the dotted line
    is the limit under which a map counts as changed."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, curve in curves.items():
        fig.add_trace(go.Scatter(
            x=[f"…{layer}" if i else f"top: {layer}" for i, (layer, _) in enumerate(curve)],
            y=[rho for _, rho in curve], mode="lines+markers", name=name,
            hovertemplate=f"{html.escape(name)}<br>re-drawn down to %{{x}}<br>Spearman "
                          "%{y:.2f}<extra></extra>"))
    fig.add_hline(y=limit, line_dash="dot", line_color="grey",
                  annotation_text="changed below this", annotation_position="bottom right")
    fig.update_layout(height=380, yaxis=dict(title="Spearman with the trained model's map",
                                             range=[-1.05, 1.05]),
                      xaxis=dict(title="layers re-drawn, from the output down"),
                      margin=dict(l=60, r=20, t=30, b=60), plot_bgcolor="white")
    return fig
