"""The explorer's figures as plain plotly dicts, built in milliseconds on every stroke: the
drawing canvas, the output bars, a layer's maps (hover: map, position, value), the attribution
over the input and a filter's class profile. Arrays travel as typed binary arrays."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from cnnviz.render.figures import see_through
from cnnviz.render.outputs import output_bars
from cnnviz.render.tiles import mosaic

MAX_SIDE = 48  # maps larger than this are shown reduced (block means); hover keeps their grid
CANVAS_PX = 280
PEN_PX = 24


def typed(array: np.ndarray) -> dict[str, Any]:
    """A numpy array as plotly's typed-array JSON (base64 bytes, dtype, shape)."""
    from _plotly_utils.utils import to_typed_array_spec

    return to_typed_array_spec(np.ascontiguousarray(array))


def _axes(**extra: Any) -> dict[str, Any]:
    return dict(visible=False, fixedrange=True, **extra)


def canvas_figure() -> dict[str, Any]:
    """A black 28×28 canvas to draw on with a white pen; each stroke becomes a path shape."""
    return {"data": [], "layout": {
        "width": CANVAS_PX, "height": CANVAS_PX, "margin": dict(l=0, r=0, t=0, b=0),
        "dragmode": "drawopenpath", "plot_bgcolor": "black", "paper_bgcolor": "black",
        "xaxis": _axes(range=[0, 28]), "yaxis": _axes(range=[28, 0], scaleanchor="x"),
        "newshape": dict(line=dict(color="white", width=PEN_PX), opacity=1.0),
        "shapes": [], "uirevision": "canvas"}}


def output_figure(output: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    """The model's output: class probabilities (or scores), the top one highlighted."""
    bars = output_bars(output, class_names or None)
    colours = ["#d62728" if i == bars.highlight else "#7f7f7f" for i in range(len(bars.names))]
    return {"data": [{"type": "bar", "x": bars.names, "y": typed(bars.values.astype(np.float32)),
                      "customdata": list(bars.indices), "marker": {"color": colours},
                      "hovertemplate": f"%{{x}}<br>{bars.axis} %{{y:.4g}}<extra></extra>"}],
            "layout": {"title": {"text": html.escape(bars.title), "font": {"size": 15}},
                       "height": 240, "margin": dict(l=50, r=10, t=40, b=40),
                       "xaxis": {"type": "category", "fixedrange": True},
                       "yaxis": {"title": {"text": bars.axis}, "fixedrange": True,
                                 **({"range": [0, 1]} if bars.probabilities else {})}}}


def reduced(maps: np.ndarray, side: int = MAX_SIDE) -> tuple[np.ndarray, int]:
    """Maps (h, w, M) shrunk by block means to at most ``side`` pixels a side, and the factor."""
    factor = max(1, int(np.ceil(max(maps.shape[:2]) / side)))
    if factor == 1:
        return maps, 1
    h, w = (maps.shape[0] // factor) * factor, (maps.shape[1] // factor) * factor
    blocks = maps[:h, :w].reshape(h // factor, factor, w // factor, factor, -1)
    return blocks.mean(axis=(1, 3)), factor


def maps_figure(maps: np.ndarray, layer: str, first: int = 0, count: int = 128
                ) -> dict[str, Any]:
    """Maps ``first``..``first + count`` of ``layer`` (h, w, M) as one mosaic on a shared
    colour scale; hovering a pixel gives the map, its row and column and the value."""
    total = maps.shape[-1]
    shown = maps[..., first:first + count]
    small, factor = reduced(shown)
    gap = max(1, round(0.12 * small.shape[0]))
    z, where, corners = mosaic(small, gap=gap)
    where = where * np.array([1, factor, factor]) + np.array([first, 0, 0])
    kind = np.uint8 if where.max() < 255 else np.uint16  # the type's largest value: a gap
    where = np.where(z[..., None] == z[..., None], where, np.iinfo(kind).max).astype(kind)
    finite = shown[np.isfinite(shown)]
    top = float(finite.max()) if finite.size else 1.0
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    labels = [dict(x=left + (small.shape[1] - 1) / 2, y=row - 0.5, text=str(first + i),
                   showarrow=False, yanchor="bottom", font=dict(size=9, color="#555"))
              for i, (row, left) in enumerate(corners)] if len(corners) <= 64 else []
    what = f"{layer}: maps {first}–{first + shown.shape[-1] - 1} of {total}" \
        if shown.shape[-1] < total else f"{layer}: {total} maps"
    size = f" of {maps.shape[0]}×{maps.shape[1]}" + (f", shown at 1:{factor}" if factor > 1
                                                      else "")
    rows = z.shape[0]
    return {"data": [{
        "type": "heatmap", "z": typed(z.astype(np.float32)),
        "customdata": typed(where), "colorscale": "Viridis",
        "zmin": low, "zmax": top if top > low else low + 1.0, "hoverongaps": False,
        "colorbar": {"title": {"text": "activation"}, "thickness": 12},
        "hovertemplate": (f"{html.escape(layer)} map %{{customdata[0]}}<br>row %{{customdata[1]}}"
                          ", col %{customdata[2]}<br>activation %{z:.4g}<extra></extra>")}],
        "layout": {"title": {"text": html.escape(what + size) + "<br><sub>click a map: what "
                             "its filter looks for</sub>", "font": {"size": 14}},
                   "annotations": labels, "height": max(360, min(820, 70 + 10 * rows)),
                   "margin": dict(l=10, r=10, t=70, b=10), "plot_bgcolor": "white",
                   "xaxis": _axes(constrain="domain"),
                   "yaxis": _axes(autorange="reversed", scaleanchor="x"),
                   "uirevision": layer}}


def attribution_figure(pixels: np.ndarray, attribution: np.ndarray | None, signed: bool,
                       method: str | None, predicted: str) -> dict[str, Any]:
    """The input, with the attribution map laid over it (signed maps red where a pixel raises
    the score, blue where it lowers it; colour opacity grows with the value)."""
    pixels = np.clip(pixels, 0.0, 1.0)
    if pixels.shape[-1] == 1:
        base: dict[str, Any] = {"type": "heatmap", "z": typed(pixels[..., 0].astype(np.float32)),
                                "colorscale": [[0, "black"], [1, "white"]], "zmin": 0,
                                "zmax": 1, "showscale": False, "hoverinfo": "skip"}
    else:
        base = {"type": "image", "z": typed(np.round(255 * pixels).astype(np.uint8)),
                "hoverinfo": "skip"}
    data = [base]
    title = "input"
    if attribution is not None and method is not None:
        top = float(np.abs(attribution).max()) or 1.0
        data.append({"type": "heatmap", "z": typed(attribution.astype(np.float32)),
                     "colorscale": see_through(signed, True), "zmin": -top if signed else 0.0,
                     "zmax": top, "opacity": 0.85, "colorbar": {"thickness": 10, "len": 0.9},
                     "hovertemplate": "row %{y}, col %{x}<br>attribution %{z:.3g}"
                                      "<extra></extra>"})
        title = f"{method} for {predicted} ({'signed' if signed else '≥ 0'})"
    return {"data": data, "layout": {
        "title": {"text": html.escape(title), "font": {"size": 14}}, "height": 300,
        "width": 330, "margin": dict(l=10, r=10, t=40, b=10),
        "xaxis": _axes(constrain="domain"),
        "yaxis": _axes(autorange="reversed", scaleanchor="x")}}


def profile_figure(mean: np.ndarray, std: np.ndarray, class_names: tuple[str, ...],
                   title: str) -> dict[str, Any]:
    """Per class, the filter's mean map mean with its spread across the class's images."""
    names = [class_names[i] if i < len(class_names) else str(i) for i in range(len(mean))]
    keep = np.isfinite(mean)
    return {"data": [{"type": "bar", "x": [n for n, k in zip(names, keep, strict=True) if k],
                      "y": typed(mean[keep].astype(np.float32)),
                      "error_y": {"type": "data", "array": typed(std[keep].astype(np.float32))},
                      "marker": {"color": "#1f77b4"},
                      "hovertemplate": "%{x}: %{y:.4g}<extra></extra>"}],
            "layout": {"title": {"text": html.escape(title), "font": {"size": 13}},
                       "height": 220, "margin": dict(l=50, r=10, t=36, b=40),
                       "xaxis": {"type": "category", "fixedrange": True},
                       "yaxis": {"title": {"text": "mean activation"}, "fixedrange": True}}}
