"""OIP quality benchmark: every preset on every layer, side by side, on measures that need no eye.

    python benchmarks/oip_quality.py [--steps 100] [--pairs 3] [--vgg] [--vgg-filters 8]
        [--vgg-presets classic,default,default-rgb,maco] [--precision float32] [--walls 3]

Every measure is taken over ``--pairs`` seed pairs — (0, 1), (2, 3), … — and printed as the
median with its range (the wall time: the median).

Per preset × layer of the bundled MNIST CNN (all filters; with ``--vgg`` also a real pretrained
VGG16, ``benchmarks/hed_vgg16.py``, on skimage's colour photos) it prints:
- objective (auto: centre unit where the receptive field is ≤ half the image, else map mean);
- out: mean output after the ReLU (the objective's measure) of the live filters, and its
  ratio to the classic preset's;
- dead: share of filters whose map stays zero after the ReLU for their own image;
- beat / reach: share of live filters whose image makes them output more than (at least as
  much as) their best real image, on the same measure (map mean; for the centre unit, the real
  images' strongest unit);
- clip: share of pixels within 1% of the value range's ends (real images' in brackets);
- hf: power at wavelengths under 4 px relative to real images' (stripes, speckle);
- colour: colourfulness (Hasler and Süsstrunk 2003) relative to the real images' (colour
  models only);
- r: median correlation of the same filter's image from the two seeds of a pair; r−cast
  (colour models): the same with each channel's mean removed first, so that a colour cast both
  images share does not count as agreement; r~shift: the largest such correlation with the
  other seed's image moved (circularly) by up to an eighth of the side — the same texture at
  another phase — beside its chance level, the same measure between different filters' images;
- r~seen: how alike the layer sees the two seeds' images — the correlation of their responses
  over all the layer's maps (map means; centre units for the neuron objective), each map
  standardized over the pair's images (``quality.seen_agreement``) — beside its chance level,
  a filter's image against the next filter's: agreement on what is drawn, wherever it lies;
- spec: share of live filters whose own image excites them most among all the images;
- robust: median share of the output kept under ±2 px shifts and 0.9–1.1 zooms;
- wall: seconds of the seed-0 ascent (compile included), and its ratio to classic's.

VGG16 rows (``--vgg-presets``) are presets, ``default-rgb`` (without the colour basis), or a
preset with overrides: ``NAME@W`` (the colourfulness penalty's weight), ``NAME~D`` (the Fourier
spectrum's decay), ``NAME+FIELD=VALUE`` (any Settings field: ``default+start=grey``).

``--walls N`` then times each VGG16 row's seed-0 ascent N more times, the rows taking turns (so
that a busy moment of the machine falls on all of them), and prints the median and range;
``--pairs 0`` skips the measures and prints only that.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).parent))

from common import machine_line, photo_patches  # noqa: E402

from cnnviz.core.tables import PRESETS  # noqa: E402
from cnnviz.data.sources import model_inputs  # noqa: E402
from cnnviz.maps.activations import channel_means  # noqa: E402
from cnnviz.model.facts import as_facts, conv_layers, load  # noqa: E402
from cnnviz.oip import quality  # noqa: E402
from cnnviz.oip.filters import visualize_filters  # noqa: E402
from cnnviz.oip.presets import objective_kind, preset  # noqa: E402
from cnnviz.oip.settings import Settings  # noqa: E402

TARGETS = ("targets for default on conv2d_3: hf ≤ 1.5×, r ≥ 0.5, spec ≥ 95%, dead ≤ 1%, "
           "beat ≥ 90%, out ≥ 70% of classic, wall ≤ 2× classic")


def mnist_real() -> np.ndarray:
    from cnnviz.data import load_mnist

    digits = load_mnist()
    return np.concatenate([digits.x_train, digits.x_test])[..., None]


MEASURES = ("out", "dead", "beat", "reach", "clip", "hf", "colour", "r", "r_cast", "r_shift",
            "r_chance", "r_seen", "r_seen_chance", "spec", "robust", "wall")


def measure_pair(facts, layer, filters, name, real_raw, real, steps, size, colour, seeds,
                 precision="float32", extra=None):
    """Every measure of one preset on one layer from the seed pair ``seeds`` (the first seed's
    run for all but r, which compares the two), the ascent in ``precision``; ``extra``: the
    preset's overrides (the colourfulness weight, the spectrum's decay)."""
    shape, _ = facts.default_size(size)
    kind = objective_kind(facts, layer, shape)
    settings = preset(name, facts, layer, shape, steps=steps, colour=colour, seed=seeds[0],
                      precision=precision, **(extra or {}))
    start = time.perf_counter()
    run = visualize_filters(facts, layer, filters, settings, reference_images=real_raw,
                            size=size)
    wall = time.perf_counter() - start
    other = visualize_filters(facts, layer, filters, replace(settings, seed=seeds[1]),
                              size=size)
    live = ~run.dead
    reduce = "centre" if kind == "neuron" else "mean"
    values = channel_means(facts, layer, run.images, reduce=reduce)
    seen = values, channel_means(facts, layer, other.images, reduce=reduce)
    hf_real = quality.high_frequency_share(real).mean()
    colour = r_cast = r_shift = r_chance = float("nan")
    if run.images.shape[-1] == 3:
        r_cast = np.median(quality.seed_correlation(run.images, other.images,
                                                    per_channel=True)[live])
        reach = run.images.shape[1] // 8
        r_shift = np.median(quality.shifted_correlation(run.images, other.images, reach)[live])
        r_chance = np.median(quality.shifted_correlation(
            run.images, np.roll(other.images, 1, axis=0), reach)[live])
        colour = quality.colourfulness(facts.preprocess.to_unit(run.images)).mean() / \
            quality.colourfulness(facts.preprocess.to_unit(real)).mean()
    return {"colour": colour, "r_cast": r_cast, "r_shift": r_shift, "r_chance": r_chance,
        "objective": kind, "out": run.output[live].mean(), "dead": run.dead.mean(),
        "beat": run.beats_real[live].mean(), "reach": run.reaches_real[live].mean(),
        "clip": quality.clipped_share(run.images, facts.value_range).mean(),
        "clip_real": quality.clipped_share(real, facts.value_range).mean(),
        "hf": quality.high_frequency_share(run.images).mean() / hf_real,
        "r": np.median(quality.seed_correlation(run.images, other.images)[live]),
        "r_seen": np.median(quality.seen_agreement(*seen)[live]),
        "r_seen_chance": np.median(quality.seen_agreement(*seen, others=True)[live]),
        "spec": quality.specificity(values, run.filters)[live].mean(),
        "robust": np.median(quality.robustness(facts, layer, run.images, run.filters,
                                               reduce=reduce)[live]),
        "wall": wall, "images": run.images,
    }


def measure(facts, layer, filters, name, real_raw, real, steps, size, colour="auto",
            pairs=3, precision="float32", extra=None):
    """Each measure's median over ``pairs`` seed pairs (0, 1), (2, 3), … and its range."""
    runs = [measure_pair(facts, layer, filters, name, real_raw, real, steps, size, colour,
                         (2 * i, 2 * i + 1), precision, extra) for i in range(pairs)]
    found = {"objective": runs[0]["objective"], "images": runs[0]["images"],
             "clip_real": runs[0]["clip_real"], "pairs": pairs}
    for key in MEASURES:
        values = np.array([run[key] for run in runs], np.float64)
        found[key] = float(np.median(values))
        found[key + "_range"] = (float(values.min()), float(values.max()))
    return found


def _cell(m, key, form, scale=1.0):
    """"median (lo–hi)" of one measure, or the median alone for one pair."""
    text = form.format(m[key] * scale)
    lo, hi = m[key + "_range"]
    if m["pairs"] > 1 and hi > lo:
        text += f" ({form.format(lo * scale)}–{form.format(hi * scale)})"
    return text


def _shift(m) -> str:
    if not np.isfinite(m["r_shift"]):
        return "—"
    return f"{_cell(m, 'r_shift', '{:.2f}')} ({m['r_chance']:.2f})"


def _seen(m) -> str:
    return f"{_cell(m, 'r_seen', '{:.2f}')} ({m['r_seen_chance']:.2f})"


def table(title, rows) -> None:
    print(f"\n{title}; each cell: the median over the seed pairs (their range)\n")
    print("| layer | preset | objective | out | ×cls | dead | beat | reach | clip | hf | colour | "
          "r | r−cast | r~shift (chance) | r~seen (chance) | spec | robust | wall s | ×cls |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for layer, name, m, base in rows:
        print(f"| {layer} | {name} | {m['objective']} | {_cell(m, 'out', '{:.3f}')} | "
              f"{m['out'] / base['out']:.2f} | {_cell(m, 'dead', '{:.0f}', 100)} % | "
              f"{_cell(m, 'beat', '{:.0f}', 100)} % | {_cell(m, 'reach', '{:.0f}', 100)} % | "
              f"{_cell(m, 'clip', '{:.0f}', 100)} % [{m['clip_real']:.0%}] | "
              f"{_cell(m, 'hf', '{:.2f}')}× | "
              f"{_cell(m, 'colour', '{:.2f}') + '×' if np.isfinite(m['colour']) else '—'} | "
              f"{_cell(m, 'r', '{:.2f}')} | "
              f"{_cell(m, 'r_cast', '{:.2f}') if np.isfinite(m['r_cast']) else '—'} | "
              f"{_shift(m)} | {_seen(m)} | "
              f"{_cell(m, 'spec', '{:.1f}', 100)} % | {_cell(m, 'robust', '{:.2f}')} | "
              f"{m['wall']:.1f} | {m['wall'] / base['wall']:.2f} |")


def _row(label: str) -> tuple[str, str, dict[str, Any]]:
    """A VGG16 row's preset, colour basis and overrides: NAME@W weighs the colourfulness
    penalty W, NAME~D gives the Fourier spectrum the decay D (both: NAME@W~D), and each
    +FIELD=VALUE sets a Settings field (``default+start=grey``, ``default+amplitude=0.02``)."""
    label, *fields_ = label.split("+")
    label, _, decay = label.partition("~")
    name, _, vivid = label.partition("@")
    name, colour = ("default", "none") if name == "default-rgb" else (name, "auto")
    extra: dict[str, Any] = {"colourfulness": float(vivid)} if vivid else {}
    known = {f.name: f.type for f in fields(Settings)}
    for item in fields_:
        key, _, value = item.partition("=")
        if key not in known or not value:
            raise SystemExit(f"row {label!r}: +{item} is not FIELD=VALUE of a Settings field")
        extra[key] = value if known[key] == "str" else \
            int(value) if known[key] == "int" else float(value)
    return name, colour, extra | ({"decay": float(decay)} if decay else {})


def walls(facts, layer, filters, labels, args, size) -> None:
    """Each row's seed-0 ascent timed ``args.walls`` times (after one to trace), taking turns."""
    shape, _ = facts.default_size(size)
    runs = {}
    for label in labels:
        name, colour, extra = _row(label)
        runs[label] = preset(name, facts, layer, shape, steps=args.steps, colour=colour, seed=0,
                             precision=args.precision, **extra)
        visualize_filters(facts, layer, filters, runs[label], size=size)
    found = {label: [] for label in runs}
    for _ in range(args.walls):
        for label, settings in runs.items():
            start = time.perf_counter()
            visualize_filters(facts, layer, filters, settings, size=size)
            found[label].append(time.perf_counter() - start)
    first = np.median(found[next(iter(found))])
    count = "all" if filters is None else len(filters)
    print(f"\n{layer}, {count} filters × {args.steps} steps, the ascent in "
          f"{args.precision}: wall s over {args.walls} runs taking turns (traced before)\n")
    print("| layer | preset | wall s | × first row |\n|---|---|---|---|")
    for label, values in found.items():
        print(f"| {layer} | {label} | {np.median(values):.1f} ({min(values):.1f}–"
              f"{max(values):.1f}) | {np.median(values) / first:.2f} |")


def base_name(args: argparse.Namespace) -> str:
    return args.vgg_presets.split(",")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--vgg", action="store_true", help="add the pretrained VGG16")
    parser.add_argument("--vgg-only", action="store_true", help="only the VGG16 rows")
    parser.add_argument("--vgg-layers", default="block2_conv2,block3_conv3,block4_conv3")
    parser.add_argument("--vgg-filters", type=int, default=8)
    parser.add_argument("--vgg-size", type=int, default=96)
    parser.add_argument("--save", type=Path, help="write each run's images here (npz)")
    parser.add_argument("--pairs", type=int, default=3, help="seed pairs: (0, 1), (2, 3), …")
    parser.add_argument("--vgg-presets", default="classic,default,default-rgb,maco",
                        help="the VGG16 rows (the first: the ratios' base); default-rgb: "
                             "without the colour basis; NAME@W: the colourfulness penalty "
                             "weighed W; NAME~D: the Fourier spectrum's decay D; "
                             "+FIELD=VALUE: a Settings field (default+start=grey)")
    parser.add_argument("--precision", default="float32", help="the ascent's precision")
    parser.add_argument("--walls", type=int, default=0,
                        help="time each row N more times, taking turns (--pairs 0: only "
                             "that)")
    args = parser.parse_args()
    print(f"{machine_line()}, {args.steps} steps")
    facts = load()
    raw = mnist_real()
    real = model_inputs(raw, facts.preprocess)
    rows, saved = [], {}
    for layer in [] if args.vgg_only else conv_layers(facts.model):
        base = None
        names = ("classic", *[p for p in PRESETS.names() if p != "classic"])
        for name in names if args.pairs else ():
            m = measure(facts, layer, None, name, raw, real, args.steps, None,
                        pairs=args.pairs)
            base = base or m
            rows.append((layer, name, m, base))
            saved[f"{layer}/{name}"] = m["images"]
        if args.walls:
            walls(facts, layer, None, names, args, None)
    if rows:
        table(f"bundled MNIST CNN, all filters; {TARGETS}", rows)
    if args.vgg or args.vgg_only:
        from hed_vgg16 import hed_vgg16_path

        vgg = as_facts(load(hed_vgg16_path(), preprocess="caffe"))
        size = (args.vgg_size, args.vgg_size)
        raw = photo_patches(args.vgg_size)
        real = model_inputs(raw, vgg.preprocess)
        rows = []
        for layer in args.vgg_layers.split(","):
            filters = list(range(args.vgg_filters))
            base = None
            for label in args.vgg_presets.split(",") if args.pairs else ():
                name, colour, extra = _row(label)
                m = measure(vgg, layer, filters, name, raw, real, args.steps, size, colour,
                            pairs=args.pairs, precision=args.precision, extra=extra)
                base = base or m
                rows.append((layer, label, m, base))
                saved[f"vgg/{layer}/{label}"] = m["images"]
            if args.walls:
                walls(vgg, layer, filters, args.vgg_presets.split(","), args, size)
        if rows:
            table(f"HED VGG16 (caffe), filters 0-{args.vgg_filters - 1}, {args.vgg_size} px, "
                  f"{len(raw)} photo patches, the ascent in {args.precision}; default-rgb: "
                  f"without colour decorrelation; ratios (×cls) to the first row, "
                  f"{base_name(args)}", rows)
    if args.save:
        np.savez_compressed(args.save, **saved)


if __name__ == "__main__":
    main()
