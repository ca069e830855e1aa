"""What the input panel shows of a model's output: the class probabilities when the output is a
class vector, otherwise its shape and its strongest channels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutputBars:
    """Bars to draw: their names and values, the one to highlight, a title and an axis label;
    ``probabilities`` bars are drawn on 0..1."""

    names: list[str]
    values: np.ndarray
    highlight: int
    title: str
    axis: str
    probabilities: bool
    indices: tuple[int, ...] = ()  # the class (or channel) each bar is


MAX_BARS = 20  # more classes than this show their ``top`` strongest


def is_probabilities(vector: np.ndarray) -> bool:
    """Whether a vector is a probability distribution (a softmax output), not raw scores."""
    vector = np.asarray(vector, dtype=np.float64)
    return bool(((vector >= 0) & (vector <= 1)).all() and abs(vector.sum() - 1.0) < 1e-3)


def output_bars(output: np.ndarray, class_names: tuple[str, ...] | None = None,
                top: int = 10) -> OutputBars:
    """The bars of one input's model output: a class vector's probabilities (past
    :data:`MAX_BARS` classes, the ``top`` strongest in order), or the mean of each channel of
    any other output (maps, features), the ``top`` strongest in order. Class
    names name the bars only when there is one for each output (the data's ten digits do not
    name a two-unit head: its bars are numbered)."""
    output = np.asarray(output, dtype=np.float64)
    if output.ndim == 1:
        fits = class_names is not None and len(class_names) == len(output)
        names = list(class_names) if fits else [str(i) for i in range(len(output))]
        best = int(np.argmax(output))
        shown = np.arange(len(output))
        if len(output) > MAX_BARS:  # ImageNet's 1,000 classes: the strongest, in order
            shown = np.argsort(-output, kind="stable")[:top]
        kept, values = [names[i] for i in shown], output[shown]
        where = int(np.flatnonzero(shown == best)[0])
        if is_probabilities(output):
            return OutputBars(kept, values, where,
                              f"predicted {names[best]} ({output[best]:.1%})", "probability",
                              True, tuple(int(i) for i in shown))
        return OutputBars(kept, values, where, f"largest: {names[best]} ({output[best]:.4g})",
                          "value", False, tuple(int(i) for i in shown))
    means = output.reshape(-1, output.shape[-1]).mean(axis=0)
    order = np.argsort(-means, kind="stable")[:top]
    shape = "×".join(str(s) for s in output.shape)
    return OutputBars([f"ch {c}" for c in order], means[order], 0,
                      f"output {shape}: strongest channels", "mean activation", False,
                      tuple(int(c) for c in order))
