"""How filters develop while a network trains: a layer's pattern gallery at each snapshot,
played with a slider (plotly frames), and a PNG of some filters across the epochs."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from cnnviz.render.sheet import image_gallery
from cnnviz.render.tiles import image_mosaic


def evolution_figure(layer: str, epochs: list[int], galleries: list[np.ndarray],
                     filters: np.ndarray) -> Any:
    """One gallery (display pixels, N×H×W×C) per snapshot, ``epochs`` naming them; a slider
    and a play button step through them; hover names the filter."""
    import plotly.graph_objects as go

    frames, first = [], None
    for epoch, shown in zip(epochs, galleries, strict=True):
        z, where, _, _ = image_mosaic(shown, (0.0, 1.0))
        rgb = np.repeat(z, 3, axis=-1) if z.shape[-1] == 1 else z
        pixels = np.round(255 * np.nan_to_num(rgb, nan=1.0)).astype(np.uint8)
        custom = np.where(where[..., :1] >= 0, filters[np.clip(where[..., :1], 0, None)], -1)
        trace = go.Image(z=pixels, customdata=custom,
                         hovertemplate="filter %{customdata[0]}<extra></extra>")
        frames.append(go.Frame(data=[trace], name=str(epoch),
                               layout=dict(title=dict(text=_title(layer, epoch)))))
        first = first or trace
    steps = [dict(method="animate", label=str(e),
                  args=[[str(e)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))]) for e in epochs]
    play = dict(type="buttons", direction="left", x=0, y=-0.06, xanchor="left", yanchor="top",
                buttons=[dict(label="▶ play", method="animate",
                              args=[None, dict(frame=dict(duration=600, redraw=True),
                                               fromcurrent=True, transition=dict(duration=0))]),
                         dict(label="❚❚", method="animate",
                              args=[[None], dict(mode="immediate",
                                                 frame=dict(duration=0, redraw=False))])])
    fig = go.Figure(data=[first], frames=frames)
    fig.update_layout(
        title=dict(text=_title(layer, epochs[0])), updatemenus=[play],
        sliders=[dict(steps=steps, active=0, x=0.12, len=0.88, y=-0.02, yanchor="top",
                      currentvalue=dict(prefix="epoch "))],
        height=820, margin=dict(l=10, r=10, t=60, b=120))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    return fig


def _title(layer: str, epoch: int) -> str:
    return html.escape(f"{layer}: optimal input patterns after {epoch} epoch"
                       f"{'s' if epoch != 1 else ''}")


def evolution_png(layer: str, epochs: list[int], galleries: list[np.ndarray],
                  filters: np.ndarray, shown: int = 12, columns: int = 10) -> Any:
    """The first ``shown`` filters (rows) at up to ``columns`` snapshots spread over the
    training (columns), each tile labelled with its filter and epoch."""
    picks = sorted({round(i) for i in np.linspace(0, len(epochs) - 1, min(columns,
                                                                          len(epochs)))})
    count = min(shown, len(filters))
    tiles = [galleries[p][f] for f in range(count) for p in picks]
    labels = [f"{filters[f]} · epoch {epochs[p]}" for f in range(count) for p in picks]
    return image_gallery(np.stack(tiles), labels, value_range=(0.0, 1.0), columns=len(picks),
                         title=f"{layer}: filters (rows) across training (columns)")
