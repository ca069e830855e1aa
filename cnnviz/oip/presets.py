"""Named, tested bundles of ascent settings, and the objective a layer gets by default.

``default``: decorrelated Fourier coefficients through a sigmoid, RMS-normalized steps of 1.0,
random shifts (scaled to the layer's receptive field), zooms of 0.9–1.1 and turns of ±10°, the
last quarter of the steps without them so the image settles; colour images mix channels along a
colour basis (ImageNet's, or one measured from the data). ``classic``: the seed blog's pixel
ascent from long-range fluctuations around grey. Their numbers are in the README
(``benchmarks/oip_quality.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from cnnviz.core.backend import keras
from cnnviz.core.errors import CnnvizError, check_finite
from cnnviz.core.tables import COLOURS, OBJECTIVES, PRESETS
from cnnviz.model.facts import ModelFacts, as_facts, as_list, conv_layers, get_layer
from cnnviz.model.graph import feature_model
from cnnviz.model.receptive import receptive_field
from cnnviz.oip import objectives as obj
from cnnviz.oip import quality
from cnnviz.oip.param import colour_basis
from cnnviz.oip.pieces import PHOTO_COLOURFULNESS, Colourfulness
from cnnviz.oip.settings import Settings
from cnnviz.oip.transforms import Transforms


def field_side(model: ModelFacts | Any, layer: str, shape: tuple[int, int, int]) -> int:
    """The larger side of ``layer``'s receptive field at ``shape``, capped by the image (the
    whole image when the geometry is unknown)."""
    facts = as_facts(model)
    field = receptive_field(facts, layer, shape[:2] if facts.any_size else None)
    return min(max(field.size or shape[:2]), max(shape[:2]))


def objective_kind(model: ModelFacts | Any, layer: str, shape: tuple[int, int, int],
                   kind: str | obj.Objective = "auto") -> str:
    """``kind`` (``custom`` for an Objective), or for ``auto``: a unit for a layer of units (a
    Dense layer; the class logit for the output layer), the centre neuron when the layer's
    receptive field covers at most half the image side (a channel mean of a small field is
    maximized by a repeated, often flat, texture), else the channel mean."""
    if isinstance(kind, obj.Objective):
        return "custom"
    facts = as_facts(model)
    vector = len(get_layer(facts.model, layer).output.shape) == 2
    if OBJECTIVES.check(kind) != "auto":
        if vector != (kind == "unit"):
            raise CnnvizError(f"objective '{kind}' needs a layer with "
                              f"{'maps' if kind != 'unit' else 'units (a Dense layer)'}; "
                              f"'{layer}' has {'units: use unit' if vector else 'maps'}")
        return kind
    if vector:
        return "unit"
    return "neuron" if 2 * field_side(facts, layer, shape) <= min(shape[:2]) else "channel"


def make_objective(kind: str, layer: str) -> obj.Objective:
    """The objective object of a resolved kind (channel, neuron or layer: any objective of
    the table with a factory)."""
    entry = OBJECTIVES[kind]
    if not entry.factory:
        raise CnnvizError(f"objective '{kind}' is resolved by objective_kind first")
    return entry.load()(layer)


def classic_recipe(facts: ModelFacts, layer: str, shape: tuple[int, int, int]) -> Settings:
    """The seed blog's ascent: pixels from long-range fluctuations around grey, RMS steps."""
    return Settings()


# The ink penalty of a grey model's class (and Dense-unit) images, a share of each image's
# score: digits drawn as strokes on black, as MNIST's are (benchmarks/class_images.py:
# independent judges read 90–100 % of the bundled CNN's class images as their digit with it,
# 60–70 % without).
CLASS_INK = 1.0

# The colourfulness penalty of a colour model's images, a share of each image's score for
# each multiple of photos' colourfulness beyond it (benchmarks/oip_quality.py --vgg: on the HED
# VGG16's block4_conv3 the unpriced ascent paints 3.2× photos' colourfulness, washed in cyan,
# blue and magenta; priced, 1.16×, at no cost in time).
COLOUR_PENALTY = 0.5


# Short runs from this many random starts per image, the best one continuing: on conv2d_3 of
# the bundled CNN, images that excite their own filter most among the layer's rose from 93.8 %
# to 96.9 % (median of three seed pairs, benchmarks/oip_quality.py); 20 steps each.
DEFAULT_PRECURSORS = 2
PRECURSOR_SHARE, MAX_PRECURSOR_STEPS = 5, 20


def precursor_steps(steps: int) -> int:
    """A precursor's steps in a preset: a fifth of the ascent's, at most 20 (20 at the usual
    100 or more; a quick 10-step look pays 2 × 2, not 2 × 20)."""
    return min(MAX_PRECURSOR_STEPS, max(1, steps // PRECURSOR_SHARE))


def default_recipe(facts: ModelFacts, layer: str, shape: tuple[int, int, int]) -> Settings:
    """Decorrelated Fourier coefficients, RMS steps of 1.0, shifts of a ninth of the
    receptive field (at most a 28th of the image side, at least 2 px allowed), zooms of
    0.9–1.1 and turns of ±10°, the last quarter without them, after
    :data:`DEFAULT_PRECURSORS` precursors (of :func:`precursor_steps`; none from a real
    image); a grey model's units (a Dense layer, the class logits) pay :data:`CLASS_INK` for
    ink, a colour model's images :data:`COLOUR_PENALTY` for colourfulness beyond photos'. A
    colour model's images start flat grey, so that the seed draws only the moves (on the HED
    VGG16 two seeds' images agree r 0.89 against 0.21 from noise,
    ``docs/feature-visualization.md``); a grey model's from noise."""
    jitter = int(np.clip(round(field_side(facts, layer, shape) / 9), 0,
                         max(2, max(shape[:2]) // 28)))
    units = len(get_layer(facts.model, layer).output.shape) == 2
    colour = (Colourfulness(COLOUR_PENALTY, bgr=facts.preprocess.bgr),) if shape[2] == 3 else ()
    return Settings(param="fourier", lr=1.0, settle=0.25, precursors=DEFAULT_PRECURSORS,
                    start="grey" if shape[2] == 3 else "noise",
                    ink=CLASS_INK if units and shape[2] == 1 else 0.0, penalties=colour,
                    transforms=Transforms(jitter, (0.9, 1.1), 10.0))


def maco_recipe(facts: ModelFacts, layer: str, shape: tuple[int, int, int]) -> Settings:
    """The default recipe with MACO's image: the phase optimized (RMS steps of 0.1 radian),
    the magnitude fixed to 1/frequency^1.3 (:class:`~cnnviz.oip.param.MacoParam`; 1.3 gave
    photo-like high-frequency power on the HED VGG16, ``docs/feature-visualization.md``),
    from noise (a flat start has no phase to turn)."""
    return replace(default_recipe(facts, layer, shape), param="maco", lr=0.1, decay=1.3,
                   start="noise")


def preset(name: str, model: ModelFacts | Any, layer: str, shape: tuple[int, int, int], *,
           colour: str = "auto", data_pixels: np.ndarray | None = None, diversity: int = 1,
           **overrides: Any) -> Settings:
    """The settings of preset ``name`` (its recipe in ``tables.PRESETS``: a function of the
    model, layer and input shape) for ``layer`` at input ``shape``, with ``overrides``
    (Settings fields; ``jitter``, ``scale``, ``rotate`` and ``pad`` change the transforms;
    ``colourfulness`` the weight of the :class:`~cnnviz.oip.pieces.Colourfulness` penalty).
    ``colour`` picks the colour basis of a 3-channel model: ``imagenet``, ``data`` (measured
    from ``data_pixels``, unit RGB images or pixels; the colourfulness penalty's target is then
    the images' own), ``none``, or ``auto`` (ImageNet's under the default preset).
    ``diversity``: the images each unit gets; with more than one, a flat grey start is
    replaced by noise unless asked for (alike starts would make alike images)."""
    PRESETS.check(name)
    COLOURS.check(colour)
    facts = as_facts(model)
    moves = {key: overrides.pop(key) for key in ("jitter", "scale", "rotate", "pad")
             if overrides.get(key) is not None}
    vivid = overrides.pop("colourfulness", None)
    settings = PRESETS[name].load()(facts, layer, shape)
    if overrides.get("start") == "image" and overrides.get("precursors") is None:
        overrides["precursors"] = 0  # one real start: its precursors would all be alike
    if diversity != 1 and overrides.get("start") is None and settings.start == "grey":
        overrides["start"] = "noise"
    settings = replace(settings, transforms=replace(settings.transforms, **moves),
                       **{k: v for k, v in overrides.items() if v is not None})
    if overrides.get("precursor_steps") is None:
        settings = replace(settings, precursor_steps=precursor_steps(settings.steps))
    basis = _colour(colour, name, shape, facts, data_pixels, settings.param)
    return _colourfulness(replace(settings, colour=basis), vivid, shape, facts,
                          data_pixels if colour == "data" else None)


def _colourfulness(settings: Settings, weight: float | None, shape: tuple[int, int, int],
                   facts: ModelFacts, images: np.ndarray | None) -> Settings:
    """``settings`` with the colourfulness penalty weighed ``weight`` (None: the preset's; 0:
    none), its target the colourfulness of ``images`` where they are whole colour images."""
    ours = [p for p in settings.penalties if isinstance(p, Colourfulness)]
    if weight is None and not ours:
        return settings
    if weight is not None and weight > 0 and shape[2] != 3:
        raise CnnvizError(f"--colourfulness needs a colour model; '{facts.name}' takes "
                          f"{shape[2]} channel(s)")
    weight = ours[0].weight if weight is None else weight
    target = PHOTO_COLOURFULNESS
    if images is not None and np.ndim(images) == 4:  # colourful: their basis was measured
        target = float(np.mean(quality.colourfulness(images)))
    others = tuple(p for p in settings.penalties if not isinstance(p, Colourfulness))
    penalty = (Colourfulness(weight, target, facts.preprocess.bgr),) if weight else ()
    return replace(settings, penalties=others + penalty)


def _colour(colour: str, name: str, shape: tuple[int, int, int], facts: ModelFacts,
            pixels: np.ndarray | None, param: str) -> tuple[float, ...]:
    """The 9 numbers of the chosen colour basis, or () for none."""
    if colour == "none" or (colour == "auto" and (name == "classic" or param == "pixel")):
        return ()
    if shape[2] != 3:
        if colour == "auto":
            return ()
        raise CnnvizError(f"a colour basis needs a colour model; '{facts.name}' takes "
                          f"{shape[2]} channel(s)")
    if param == "pixel":
        raise CnnvizError("a colour basis needs --param fourier or maco")
    if colour == "data" and pixels is None:
        raise CnnvizError("--colour data needs images: give them with --data")
    basis = colour_basis(pixels if colour == "data" else None, facts.preprocess.bgr)
    return tuple(float(v) for v in basis.reshape(-1))


def ascent_goal(facts: ModelFacts, kind: str, layer: str, objective: obj.Objective | str,
                chosen: np.ndarray, *, diversity: int = 1, weight: float = 0.5,
                closeness: float = 0.0, start: np.ndarray | None = None, flat: bool = False,
                preactivation: bool = True) -> tuple[obj.Objective, np.ndarray]:
    """The objective to ascend and the ascent's rows: each filter ``diversity`` times in a
    row, pushed apart from its other images by ``weight`` (refused from a ``flat`` start, alike
    for every image), and with ``closeness`` kept near the real ``start`` image (feature
    accentuation) — both in the model's first convolution, whose maps are the image's local
    structure."""
    goal = make_objective(kind, layer) if isinstance(objective, str) else objective
    if isinstance(diversity, bool) or not isinstance(diversity, int | np.integer) or \
            not 1 <= diversity <= MAX_DIVERSITY:
        raise CnnvizError(f"--diversity must be a whole number from 1 to {MAX_DIVERSITY}, got "
                          f"{diversity!r}")
    check_finite(("the diversity weight", weight), ("--closeness", closeness))
    style = next(iter(conv_layers(facts.model)), layer)
    if closeness:
        if closeness < 0 or start is None:
            raise CnnvizError("--closeness is a weight ≥ 0 and needs a real start image "
                              "(--start image:PATH, index:K or digit:D)")
        sub = feature_model(facts.model, [style], preactivation=preactivation)
        target = keras().ops.convert_to_numpy(as_list(sub(start[None].astype(np.float32)))[0])
        goal = obj.close_to(goal, style, target[0], closeness)
    if diversity == 1:
        return goal, chosen
    if kind in OBJECTIVES.names(dream=True):
        raise CnnvizError("DeepDream makes one image for the whole layer: --diversity needs "
                          "an objective per filter")
    if flat:
        raise CnnvizError("--diversity needs starts that differ, and a flat grey start gives "
                          "every image of a unit the same: use --start noise")
    return obj.diverse(goal, weight, style), np.repeat(chosen, diversity)


MAX_DIVERSITY = 64
