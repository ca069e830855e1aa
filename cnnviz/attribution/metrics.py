"""Checks an attribution map should pass, measured on the map as displayed.

- Deletion / insertion (Petsiuk et al. 2018): remove the pixels a map ranks highest first (set
  them to the baseline) and follow the target's score — a good map makes it fall fast (low
  area under the curve); insert them into the baseline and it rises fast (high area). Only
  pixels that differ from the baseline can be removed, so the curves run over those (the
  ink, for a digit on black), and the yardstick is removing them in random order.
- Randomization (Adebayo et al. 2018): re-draw every kernel of the model at random; a map that
  shows what the model learned must change, so the Spearman rank correlation between the maps
  before and after should be low.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def randomized(model: Any, seed: int = 0) -> Any:
    """A copy of ``model`` whose kernels are drawn anew (Glorot uniform) and biases zeroed;
    other weights (normalization statistics) are kept."""
    k = keras()
    try:
        copy = k.models.clone_model(model)
    except Exception as exc:  # subclassed models cannot be cloned
        raise CnnvizError(f"cannot copy model '{model.name}' to randomize it: {exc}") from None
    copy.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    for layer in _all_layers(copy):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = tuple(kernel.shape)
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        kernel.assign(rng.uniform(-limit, limit, shape).astype(np.float32))
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.zeros(tuple(layer.bias.shape), np.float32))
    return copy


def _all_layers(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_all_layers(layer))
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
    """One method's checks over the images: per image, the deletion and insertion areas, the
    random-ink deletion area and the Spearman correlation with the randomized model's map."""

    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    randomization: np.ndarray

    @property
    def deletes_better(self) -> bool:
        """Whether the map's order deletes better (lower median area) than random order."""
        return bool(np.median(self.deletion) < np.median(self.random_deletion))

    @property
    def changes(self) -> bool:
        """Whether the map changes under randomization (median Spearman below the limit)."""
        return bool(np.median(self.randomization) < SPEARMAN_LIMIT)

    def medians(self) -> tuple[float, float, float, float]:
        """The medians over the inputs: deletion AUC, its random-order reference, insertion
        AUC and Spearman after randomization."""
        return tuple(float(np.median(v)) for v in (  # type: ignore[return-value]
            self.deletion, self.random_deletion, self.insertion, self.randomization))

    def line(self, name: str) -> str:
        """One line for the terminal: medians, and whether each check passes."""
        d, r, inserted, rho = self.medians()
        return (f"{name}: deletion AUC {d:.3f} vs {r:.3f} deleting the same pixels at random "
                f"({'better' if self.deletes_better else 'NOT better'}); insertion AUC "
                f"{inserted:.3f}; Spearman after randomizing the weights "
                f"{rho:.2f} ({'changes' if self.changes else 'barely changes'})")


def evaluate(model: ModelFacts | Any, result: Attributions, *,
             steps: int = 20, seed: int = 0, **method_options: Any) -> dict[str, Scores]:
    """Deletion, insertion and randomization checks of every method of ``result`` on its
    inputs (the same targets; ``method_options`` as given to :func:`~cnnviz.attribution.
    explain`, e.g. the baseline)."""
    from cnnviz.attribution import explain

    facts = as_facts(model)
    x = result.inputs
    chosen = ChannelTarget(result.targets, result.params.get("target_layer"))
    layer = result.meta.layers[0] if result.meta.layers else None
    shuffled = as_facts(randomized(facts.model, seed), facts.preprocess)
    again = explain(shuffled, x, tuple(result.methods), target=chosen, layer=layer, seed=seed,
                    **method_options)
    rng = np.random.default_rng(seed)
    low = np.broadcast_to(np.float32(facts.value_range[0]), x.shape[1:])
    inks = [changeable(image, low) for image in x]
    shuffled_inks = [rng.permutation(ink) for ink in inks]  # one random order for all methods
    out = {}
    for name, shown in result.displayed().items():
        frames, channels = [], []
        for i in range(len(x)):
            order = ranked(shown[i], inks[i])
            for ranking, insert in ((order, False), (order, True), (shuffled_inks[i], False)):
                frames.append(perturbation_frames(x[i], ranking, low, insert=insert,
                                                  steps=steps))
                channels.append(np.full(steps + 1, result.targets[i]))
        curves = _scores(facts, np.concatenate(frames),
                         ChannelTarget(np.concatenate(channels), chosen.layer))
        areas = np.array([area(c) for c in curves.reshape(len(x), 3, steps + 1)
                          .reshape(-1, steps + 1)]).reshape(len(x), 3)
        rho = [spearman(shown[i], to_display(again.maps[name][i:i + 1], again.signed(name))[0])
               for i in range(len(x))]
        out[name] = Scores(areas[:, 0], areas[:, 1], areas[:, 2], np.array(rho))
    return out
