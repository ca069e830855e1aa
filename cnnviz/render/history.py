"""Training curves: loss and accuracy per epoch, training beside validation, and the learning
rate, as a matplotlib figure (PNG) and a plotly figure (HTML)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.render.grids import notebook_figure

_PANELS = (("loss", "loss"), ("accuracy", "accuracy"), ("learning_rate", "learning rate"))


def _series(history: dict[str, list[float]], key: str) -> list[tuple[str, np.ndarray]]:
    found = [("training", history.get(key)), ("validation", history.get(f"val_{key}"))]
    if key == "learning_rate":
        found = [("at the epoch's end", history.get(key))]
    return [(name, np.asarray(values, np.float64)) for name, values in found if values]


def history_png(history: dict[str, list[float]], title: str = "") -> Any:
    """Three panels: loss, accuracy (training and validation) and the learning rate per
    epoch, the best validation accuracy marked."""
    from matplotlib.ticker import MaxNLocator

    fig = notebook_figure(11.0, 3.3)
    axes = fig.subplots(1, 3)
    for ax, (key, label) in zip(axes, _PANELS, strict=True):
        for name, values in _series(history, key):
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, marker="o" if len(values) <= 30 else None, markersize=3,
                    label=name, color="#1f77b4" if name != "validation" else "#d62728")
        if key == "accuracy" and history.get("val_accuracy"):
            best = int(np.argmax(history["val_accuracy"]))
            value = history["val_accuracy"][best]
            ax.plot([best + 1], [value], "o", color="#d62728", markersize=5, fillstyle="none")
            ax.text(0.97, 0.32, f"best validation {value:.4f}\nafter epoch {best + 1}",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
                    color="#d62728")
        if key == "learning_rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        if key != "learning_rate" and len(_series(history, key)) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def history_figure(history: dict[str, list[float]], title: str = "") -> Any:
    """The same three panels as a plotly figure (hover: epoch and value)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=[label for _, label in _PANELS],
                        horizontal_spacing=0.08)
    for col, (key, _) in enumerate(_PANELS, start=1):
        for name, values in _series(history, key):
            fig.add_scatter(x=np.arange(1, len(values) + 1), y=values, name=name,
                            legendgroup=name, showlegend=col == 1,
                            line=dict(color="#d62728" if name == "validation" else "#1f77b4"),
                            hovertemplate=f"{name}<br>epoch %{{x}}<br>%{{y:.5g}}<extra></extra>",
                            row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_layout(title=dict(text=title), height=380, margin=dict(l=50, r=20, t=80, b=50))
    return fig
