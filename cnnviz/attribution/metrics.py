"""Checks an attribution map should pass, measured on the map as displayed.

- Deletion / insertion (Petsiuk et al. 2018): remove the pixels a map ranks highest first (set
  them to the baseline) and follow the target's score — a good map makes it fall fast (low
  area under the curve); insert them into the baseline and it rises fast (high area). Only
  pixels that differ from the baseline can be removed, so the curves run over those (the
  ink, for a digit on black), and the yardstick is removing them in random order.
- Randomization (Adebayo et al. 2018): re-draw every kernel of the model at random; a map that
  shows what the model learned must change, so the Spearman rank correlation between the maps
  before and after should be low. The cascade re-draws the layers one at a time from the top
  (the output) down and reports the correlation after each stage: a map that survives the top
  layer's re-draw does not depend on what the model has learned to call a class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnviz.attribution import ChannelTarget, Saliency
from cnnviz.core.backend import keras
from cnnviz.core.errors import CnnvizError
from cnnviz.model.facts import ModelFacts, as_facts
from cnnviz.results import Attributions, to_display


def _scores(facts: ModelFacts, images: np.ndarray, target: ChannelTarget) -> np.ndarray:
    """The target's probability (for a softmax output) or score, per image."""
    if target.layer is None:
        out = np.asarray(facts.model.predict(images, verbose=0, batch_size=256))
        if out.ndim == 2 and np.allclose(out.sum(axis=1), 1.0, atol=1e-3) and out.min() >= 0:
            return out[np.arange(len(out)), target.channel]
    return Saliency(facts).target_scores(images, target)


def perturbation_frames(image: np.ndarray, order: np.ndarray, baseline: np.ndarray, *,
                        insert: bool = False, steps: int = 20) -> np.ndarray:
    """``steps`` + 1 images as the pixels in ``order`` (flat indices into H×W) go, from none to
    all of them: deleted (set to ``baseline``) or, with ``insert``, copied into the
    baseline."""
    x = np.asarray(image, np.float32)
    base = np.broadcast_to(np.asarray(baseline, np.float32), x.shape)
    counts = np.round(np.linspace(0, len(order), steps + 1)).astype(int)
    frames = np.empty((steps + 1, *x.shape), np.float32)
    for i, count in enumerate(counts):
        chosen = np.zeros(x.shape[0] * x.shape[1], bool)
        chosen[order[:count]] = True
        chosen = chosen.reshape(x.shape[:2])[..., None]
        frames[i] = np.where(chosen, x, base) if insert else np.where(chosen, base, x)
    return frames


def perturbation_curve(model: ModelFacts | Any, image: np.ndarray, order: np.ndarray,
                       target: ChannelTarget, *, baseline: np.ndarray | None = None,
                       insert: bool = False, steps: int = 20) -> np.ndarray:
    """The target's probability (softmax outputs) or score along
    :func:`perturbation_frames`; the baseline defaults to the range's low end."""
    facts = as_facts(model)
    base = np.float32(facts.value_range[0]) if baseline is None else baseline
    frames = perturbation_frames(image, order, base, insert=insert, steps=steps)
    channel = np.broadcast_to(np.asarray(target.channel).reshape(-1)[:1], steps + 1)
    return _scores(facts, frames, ChannelTarget(channel, target.layer))


def area(curve: np.ndarray) -> float:
    """Area under a curve sampled evenly on [0, 1] (trapezoids)."""
    curve = np.asarray(curve, np.float64)
    return float(((curve[1:] + curve[:-1]) / 2).mean())


def changeable(image: np.ndarray, baseline: np.ndarray | float) -> np.ndarray:
    """Flat indices of the pixels that differ from the baseline in any channel."""
    return np.flatnonzero(np.any(np.asarray(image) != np.asarray(baseline), axis=-1))


def ranked(displayed: np.ndarray, among: np.ndarray) -> np.ndarray:
    """The flat pixel indices ``among``, highest displayed value first (ties in reading
    order)."""
    values = np.asarray(displayed, np.float64).reshape(-1)[among]
    return among[np.lexsort((among, -values))]


def weighted_layers(model: Any) -> list[str]:
    """The path names of the layers with a kernel, input first (nested models descended)."""
    return [name for name, layer in _named_layers(model, "")
            if getattr(layer, "kernel", None) is not None]


def randomized(model: Any, seed: int = 0, layers: Sequence[str] | None = None) -> Any:
    """A copy of ``model`` whose kernels — of every layer, or of ``layers`` (path names) — are
    drawn anew (Glorot uniform, each layer from its own stream of ``seed``) and their biases
    zeroed; other weights (normalization statistics) are kept."""
    k = keras()
    try:
        copy = k.models.clone_model(model)
    except Exception as exc:  # subclassed models cannot be cloned
        raise CnnvizError(f"cannot copy model '{model.name}' to randomize it: {exc}") from None
    copy.set_weights(model.get_weights())
    chosen = None if layers is None else set(layers)
    for index, (name, layer) in enumerate(_named_layers(copy, "")):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or (chosen is not None and name not in chosen):
            continue
        rng = np.random.default_rng([seed, index])
        shape = tuple(kernel.shape)
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        kernel.assign(rng.uniform(-limit, limit, shape).astype(np.float32))
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.zeros(tuple(layer.bias.shape), np.float32))
    return copy


def cascade_stages(model: Any, stages: int = 8) -> list[list[str]]:
    """The cumulative layer sets of a cascading randomization: the top weighted layer, then
    down to the first — at most ``stages`` of them, spread evenly over the depth (the top
    layer and the whole model always among them)."""
    names = weighted_layers(model)[::-1]
    if not names:
        raise CnnvizError(f"model '{model.name}' has no layer with a kernel to randomize")
    ends = sorted({1, len(names), *np.linspace(1, len(names), max(stages, 2)).round()
                   .astype(int).tolist()})
    while len(ends) > max(stages, 2):
        ends.pop(len(ends) // 2)
    return [names[:end] for end in ends]


def _named_layers(container: Any, prefix: str) -> list[tuple[str, Any]]:
    found = []
    for layer in container.layers:
        found.append((prefix + layer.name, layer))
        if hasattr(layer, "layers"):
            found.extend(_named_layers(layer, f"{prefix}{layer.name}/"))
    return found


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two maps (0 when either is constant)."""
    from scipy.stats import rankdata

    a = rankdata(np.asarray(first, np.float64).reshape(-1))
    b = rankdata(np.asarray(second, np.float64).reshape(-1))
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else 0.0


# A map that still correlates this much with the randomized model's shows the input, not the
# model (Adebayo et al. 2018).
SPEARMAN_LIMIT = 0.5


@dataclass(frozen=True)
class Scores:
    """One method's checks over the images, per image: the deletion and insertion areas, the
    same for the ink in random order, and the Spearman correlation with the map of the model
    whose weights are all re-drawn; ``cascade`` holds, per stage of the cascading
    randomization (named by the deepest layer re-drawn so far), the correlation per image."""

    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    randomization: np.ndarray
    cascade: tuple[tuple[str, np.ndarray], ...] = field(default=())

    @property
    def deletes_better(self) -> bool:
        """Whether the map's order deletes better (lower median area) than random order."""
        return bool(np.median(self.deletion) < np.median(self.random_deletion))

    @property
    def inserts_better(self) -> bool:
        """Whether the map's order inserts better (higher median area) than random order."""
        return bool(np.median(self.insertion) > np.median(self.random_insertion))

    @property
    def changes(self) -> bool:
        """Whether the map changes under randomization (median Spearman below the limit)."""
        return bool(np.median(self.randomization) < SPEARMAN_LIMIT)

    @property
    def top_kept(self) -> float | None:
        """The median Spearman after only the top layer is re-drawn (None without a cascade)."""
        return float(np.median(self.cascade[0][1])) if self.cascade else None

    def curve(self) -> list[tuple[str, float]]:
        """The cascade as (deepest layer re-drawn, median Spearman), top layer first."""
        return [(name, float(np.median(rho))) for name, rho in self.cascade]

    def medians(self) -> dict[str, float]:
        """The medians over the inputs: deletion and insertion areas and their random-order
        references, and the Spearman correlation after every weight is re-drawn."""
        return {name: float(np.median(getattr(self, name))) for name in (
            "deletion", "random_deletion", "insertion", "random_insertion", "randomization")}

    def flags(self) -> list[str]:
        """What fails, in words (empty when every check passes)."""
        flags = []
        if not self.deletes_better:
            flags.append("deleting its top pixels lowers the score no faster than random order")
        if not self.inserts_better:
            flags.append("inserting its top pixels raises the score no faster than random order")
        if not self.changes:
            flags.append(f"barely changes when every weight is re-drawn "
                         f"(ρ {np.median(self.randomization):.2f})")
        top = self.top_kept
        if top is not None and top > SPEARMAN_LIMIT:
            flags.append(f"keeps ρ {top:.2f} when the top layer ({self.cascade[0][0]}) is "
                         "re-drawn: it shows the input more than the class")
        return flags

    def line(self, name: str) -> str:
        """One line for the terminal: medians, and whether each check passes."""
        m = self.medians()
        cascade = "" if not self.cascade else " ; cascade from the top " + ", ".join(
            f"{rho:.2f}" for _, rho in self.curve())
        return (f"{name}: deletion AUC {m['deletion']:.3f} vs {m['random_deletion']:.3f} at "
                f"random ({'better' if self.deletes_better else 'NOT better'}); insertion AUC "
                f"{m['insertion']:.3f} vs {m['random_insertion']:.3f} "
                f"({'better' if self.inserts_better else 'NOT better'}); Spearman after "
                f"re-drawing every weight {m['randomization']:.2f} "
                f"({'changes' if self.changes else 'barely changes'}){cascade}")

    def summary(self) -> dict[str, Any]:
        """The medians, the cascade curve and the flags, as plain values (saved with the
        attributions and shown in the page)."""
        return {**self.medians(), "cascade": self.curve(), "flags": self.flags()}


def evaluate(model: ModelFacts | Any, result: Attributions, *, steps: int = 20, seed: int = 0,
             stages: int = 8, **method_options: Any) -> dict[str, Scores]:
    """Deletion, insertion and randomization checks of every method of ``result`` on its
    inputs (the same targets; ``method_options`` as given to :func:`~cnnviz.attribution.
    explain`, e.g. the baseline). The randomization is a cascade of at most ``stages`` stages
    from the top layer down (see :func:`cascade_stages`); its last stage, every layer
    re-drawn, is the all-at-once value."""
    from cnnviz.attribution import explain

    facts = as_facts(model)
    x = result.inputs
    chosen = ChannelTarget(result.targets, result.params.get("target_layer"))
    layer = result.meta.layers[0] if result.meta.layers else None
    shown = result.displayed()
    cascade: dict[str, list[tuple[str, np.ndarray]]] = {name: [] for name in shown}
    for redrawn in cascade_stages(facts.model, stages):
        shuffled = as_facts(randomized(facts.model, seed, redrawn), facts.preprocess)
        again = explain(shuffled, x, tuple(result.methods), target=chosen, layer=layer,
                        seed=seed, **method_options)
        for name in shown:
            after = to_display(again.maps[name], again.signed(name))
            cascade[name].append((redrawn[-1], np.array([spearman(shown[name][i], after[i])
                                                         for i in range(len(x))])))
    rng = np.random.default_rng(seed)
    low = np.broadcast_to(np.float32(facts.value_range[0]), x.shape[1:])
    inks = [changeable(image, low) for image in x]
    shuffled_inks = [rng.permutation(ink) for ink in inks]  # one random order for all methods
    out = {}
    for name in shown:
        frames, channels = [], []
        for i in range(len(x)):
            order = ranked(shown[name][i], inks[i])
            for ranking, insert in ((order, False), (order, True), (shuffled_inks[i], False),
                                    (shuffled_inks[i], True)):
                frames.append(perturbation_frames(x[i], ranking, low, insert=insert,
                                                  steps=steps))
                channels.append(np.full(steps + 1, result.targets[i]))
        curves = _scores(facts, np.concatenate(frames),
                         ChannelTarget(np.concatenate(channels), chosen.layer))
        areas = np.array([area(c) for c in curves.reshape(-1, steps + 1)]).reshape(len(x), 4)
        out[name] = Scores(areas[:, 0], areas[:, 1], areas[:, 2], areas[:, 3],
                           cascade[name][-1][1], tuple(cascade[name]))
    return out
