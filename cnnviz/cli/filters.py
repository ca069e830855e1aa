"""``filters``: optimal input patterns of a layer's filters, all at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnviz.cli.common import (
    MODEL_PANEL,
    OUTPUT_PANEL,
    DataOpt,
    ForceOpt,
    ModelArg,
    OutputOpt,
    PrecisionOpt,
    PreprocessOpt,
    RayOpt,
    SizeOpt,
    StandaloneOpt,
    UnsafeOpt,
    floats,
    load,
    out_option,
    output_path,
    progress_bar,
    ray_runner,
    show,
    size,
    split,
)
from cnnviz.core import tables

ASCENT = "Ascent"
START = "Start"
ROBUST = "Robustness (random transforms each step)"
REGULAR = "Regularizers"


def _opt(panel: str, help: str, *decls: str, **kwargs: object) -> typer.models.OptionInfo:
    return typer.Option(*decls, help=help, rich_help_panel=panel, **kwargs)  # type: ignore[arg-type]


def filters(
    model: ModelArg = None,
    layer: Annotated[str | None, _opt(MODEL_PANEL, "Layer whose filters to visualize.",
                                      show_default="the deepest conv layer")] = None,
    filter_spec: Annotated[str | None, _opt(MODEL_PANEL, "Filters as ranges, e.g. 0-15,20.",
                                            "--filters", show_default="all")]
        = None,
    reference: Annotated[bool, _opt(MODEL_PANEL, "Compare each filter with its best real "
                                                 "image of --data.")] = True,
    examples: Annotated[int, _opt(MODEL_PANEL, "Show the N real images of --data that excite "
                                               "each filter most beside its pattern.")] = 0,
    data: DataOpt = None,
    size_: SizeOpt = None,
    preset_: Annotated[str, _opt(ASCENT, "A tested bundle of the settings below: default "
                                         "(decorrelated Fourier, colour decorrelation, random "
                                         "transforms), classic (the seed blog's pixel "
                                         "ascent) or maco (the default with only the Fourier "
                                         "phase optimized: a photo's spectrum and colours). "
                                         "Options given override it.", "--preset",
                                 metavar=tables.PRESETS.metavar())] = "default",
    objective: Annotated[str, _opt(ASCENT, "What to maximize: a map's mean, its centre "
                                           "unit, or the whole layer (DeepDream); auto: the "
                                           "centre unit where the receptive field is at most "
                                           "half the image.",
                                   metavar=tables.OBJECTIVES.metavar())] = "auto",
    steps: Annotated[int, _opt(ASCENT, "Ascent steps.")] = 100,
    method: Annotated[str, _opt(ASCENT, "RMS-normalized gradient steps or Adam.",
                                metavar=tables.UPDATES.metavar())] = "rms",
    lr: Annotated[float | None, _opt(ASCENT, "Step size: a fraction of the input range "
                                             "(pixel), coefficient units (fourier) or radians "
                                             "(maco).",
                                     show_default="the preset's")] = None,
    param: Annotated[str | None, _opt(ASCENT, "Optimize pixels, decorrelated DCT "
                                              "coefficients through a sigmoid, or only the "
                                              "Fourier phase (maco: the magnitude fixed to "
                                              "1/frequency^decay).",
                                      metavar=tables.PARAMETERIZATIONS.metavar(),
                                      show_default="the preset's")] = None,
    wavelengths: Annotated[str, _opt(START, "Length scales (pixels) of the starting "
                                             "image's random fluctuations: one or more, e.g. "
                                             "14 or 14,7; each adds noise that varies over "
                                             "that many pixels.")] = "14,7,3.5,1.75",
    decay: Annotated[float | None, _opt(ASCENT, "fourier and maco: the spectrum scaled by "
                                                "1/frequency^decay.",
                                        show_default="the preset's: 1, maco 1.3")] = None,
    colour: Annotated[str, _opt(ASCENT, "Colour basis of a 3-channel model (fourier, maco): "
                                        "ImageNet's, measured from --data, or none.",
                                "--colour", "--color",
                                metavar=tables.COLOURS.metavar())] = "auto",
    post_activation: Annotated[bool, _opt(ASCENT, "Maximize the map after its ReLU instead of "
                                                  "before.", "--post-activation")]
        = False,
    batch: Annotated[int | None, _opt(ASCENT, "Images per compiled step.",
                                      show_default="as many as fit --budget")] = None,
    budget: Annotated[int, _opt(ASCENT, "Memory budget of a step, MiB.")] = 512,
    precision: PrecisionOpt = "float32",
    seed: Annotated[int, _opt(ASCENT, "Random seed of starts and transforms (per filter).")]
        = 0,
    start: Annotated[str | None, _opt(START, "Long-range fluctuations around mid-grey, flat "
                                             "grey, or a real image (DeepDream): a file, an "
                                             "index or a class of --data.",
                                      metavar=tables.STARTS.metavar("image:PATH", "index:K",
                                                                    "digit:D", image=False),
                                      show_default="the preset's: grey for a colour model, "
                                                   "else noise")] = None,
    precursors: Annotated[int | None, _opt(START, "Short runs, without the random moves, "
                                                  "from this many random starts per filter; "
                                                  "the best one continues.",
                                           show_default="the preset's")] = None,
    precursor_steps: Annotated[int | None, _opt(START, "Steps of each precursor run.",
                                                show_default="a fifth of --steps, at most 20")
                               ] = None,
    jitter: Annotated[int | None, _opt(ROBUST, "Random shift up to N pixels.",
                                       show_default="the preset's")] = None,
    rotate: Annotated[float | None, _opt(ROBUST, "Random rotation up to ± degrees.",
                                         show_default="the preset's")] = None,
    scale: Annotated[str | None, _opt(ROBUST, "Random zoom range min,max.",
                                      show_default="the preset's")] = None,
    pad: Annotated[str, _opt(ROBUST, "Fill outside the image.",
                             metavar=tables.FILL_MODES.metavar())] = "reflect",
    settle: Annotated[float | None, _opt(ROBUST, "Share of the last steps without the random "
                                                 "transforms.",
                                         show_default="the preset's")] = None,
    tv: Annotated[float, _opt(REGULAR, "Total-variation penalty.")] = 0.0,
    l1: Annotated[float, _opt(REGULAR, "L1 penalty on the distance from mid-grey.")] = 0.0,
    l2: Annotated[float, _opt(REGULAR, "L2 penalty on the distance from mid-grey.")] = 0.0,
    diversity: Annotated[int, _opt(ASCENT, "Images per filter, pushed apart from each other "
                                           "(lucid's diversity: the Gram matrices of the first "
                                           "convolution), drawn as a row.")] = 1,
    diversity_weight: Annotated[float, _opt(ASCENT, "How hard they are pushed apart, a share "
                                                    "of each image's score.")] = 0.5,
    closeness: Annotated[float, _opt(ASCENT, "Keep the image near its real start (--start "
                                             "image:, index:, digit:) in the first "
                                             "convolution: feature accentuation.")] = 0.0,
    transparency: Annotated[bool, _opt(OUTPUT_PANEL, "Fade each image to grey where its "
                                                     "unit answers little (MACO's "
                                                     "transparency: the gradient of its score, "
                                                     "averaged over random shifts and zooms).")
                            ] = False,
    ink: Annotated[float | None, _opt(REGULAR, "Penalty on the distance from black (strokes "
                                               "on a dark background), a share of the score.",
                                      show_default="1 for a grey model's Dense units, else 0")
                   ] = None,
    colourfulness: Annotated[float | None, _opt(
        REGULAR, "Penalty on colourfulness beyond photos' (with --colour data: the data's), a "
                 "share of the score per multiple of it.",
        show_default="0.5 for a colour model, else 0")] = None,
    blur_every: Annotated[int, _opt(REGULAR, "Blur the image every N steps (pixel).",
                                    show_default="never")] = 0,
    blur_sigma: Annotated[float, _opt(REGULAR, "Standard deviation of that blur, "
                                               "pixels.")] = 0.5,
    order: Annotated[str, _opt(OUTPUT_PANEL, "Gallery order.", metavar=tables.ORDERS.metavar())]
        = "index",
    from_results: Annotated[Path | None, _opt(OUTPUT_PANEL, "Redraw saved results "
                                                            "(filters.npz) without recomputing.",
                                              "--from")] = None,
    resume: Annotated[bool, _opt(OUTPUT_PANEL, "Continue an interrupted run saved in --out, "
                                               "with its own settings.")] = False,
    checkpoint: Annotated[float, _opt(OUTPUT_PANEL, "Save the running ascent every N seconds, "
                                                    "so that --resume continues it even after "
                                                    "a crash (0: only at Ctrl-C).",
                                      metavar="SECONDS")] = 60.0,
    ray: RayOpt = None,
    out: Annotated[Path | None, out_option("cnnviz-out/filters")] = None,
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    output: OutputOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """Synthesize the image that maximally activates each filter of a layer (all at once)."""
    from cnnviz import jobs

    out = output_path(out, "cnnviz-out/filters", "filters", force, resume)
    if from_results is not None:
        show(jobs.redraw_filters_job(from_results, out, order=order, force=force,
                                     standalone=standalone))
        return
    if resume:  # the run's own settings and preprocessing; the model file is the user's
        with progress_bar("ascent steps") as progress:
            outcome = jobs.resume_filters_job(load(model, unsafe, output=output), out,
                                              data=data, order=order, batch=batch,
                                              budget=budget * 2**20, standalone=standalone,
                                              progress=progress, checkpoint=checkpoint)
        show(outcome)
        return
    zoom = None if scale is None else tuple(floats(scale, "--scale", 2))
    ascent = jobs.AscentSpec(preset_, dict(
        steps=steps, update=method, lr=lr, param=param, decay=decay, precursors=precursors,
        precursor_steps=precursor_steps, jitter=jitter, scale=zoom, rotate=rotate, pad=pad,
        settle=settle, tv=tv, l1=l1, l2=l2, ink=ink, colourfulness=colourfulness,
        blur_every=blur_every, blur_sigma=blur_sigma,
        preactivation=False if post_activation else None, seed=seed, precision=precision,
        wavelengths=floats(wavelengths, "--wavelengths", len(split(wavelengths) or []))),
        objective, colour, start, diversity, diversity_weight, closeness, transparency)
    facts = load(model, unsafe, preprocess, output)
    with progress_bar("ascent steps") as progress:
        outcome = jobs.filters_job(facts, out, ascent, layer=layer,
                                   filters=filter_spec, reference=reference,
                                   examples=examples, data=data, size=size(size_),
                                   order=order, batch=batch,
                                   budget=budget * 2**20, force=force, standalone=standalone,
                                   progress=progress, checkpoint=checkpoint,
                                   runner=ray_runner(ray))
    show(outcome)
