"""Commands that compose whole pages: ``report`` and ``gallery``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnviz.cli.common import (
    MODEL_PANEL,
    DataOpt,
    ForceOpt,
    ModelArg,
    OutputOpt,
    PrecisionOpt,
    PreprocessOpt,
    RayOpt,
    SeedOpt,
    SizeOpt,
    UnsafeOpt,
    err_console,
    load,
    out_option,
    output_path,
    ray_runner,
    safe,
    show,
    size,
)


def report(
    model: ModelArg = None,
    results: Annotated[Path | None, typer.Option(
        "--from", rich_help_panel=MODEL_PANEL, show_default="none: compute everything",
        help="A folder of saved results (filters.npz, patterns.npz, directly or one level down, "
             "e.g. cnnviz-out) to reuse instead of computing them.")] = None,
    layer: Annotated[str | None, typer.Option(
        help="Layer of the filter gallery and class patterns.", rich_help_panel=MODEL_PANEL,
        show_default="the deepest conv layer")] = None,
    steps: Annotated[int, typer.Option(help="Ascent steps when filters are computed.")] = 100,
    examples: Annotated[int, typer.Option(help="Real images beside each filter.")] = 9,
    data: DataOpt = None,
    size_: SizeOpt = None,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, out_option("cnnviz-out/report.html", "The report file (one "
                                    "self-contained page).")] = None,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    output: OutputOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """One self-contained HTML page: summary, activations, filters, patterns, attributions."""
    from cnnviz.jobs import report_job

    out = output_path(out, "cnnviz-out/report.html", "report", force)
    facts = load(model, unsafe, preprocess, output)
    with err_console.status("building the report") as status:
        outcome = report_job(facts, out, results=results, layer=layer, steps=steps,
                             examples=examples, seed=seed, data=data, size=size(size_),
                             force=force,
                             status=lambda what: status.update(f"report: {what}"))
    show(outcome)


def gallery(
    out: Annotated[Path, out_option("gallery", "Gallery folder.",
                                    numbered=False)] = Path("gallery"),
    steps: Annotated[int, typer.Option(help="Ascent steps of the filter gallery.")] = 100,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
) -> None:
    """Rebuild the gallery: every command's output on the bundled model, same bytes each time."""
    from cnnviz.jobs import gallery_job

    show(gallery_job(out, steps=steps, seed=seed, force=force,
                     say=lambda line: err_console.print(f"[bold]{safe(line)}[/]", highlight=False)))


def atlas(
    model: ModelArg = None,
    data: DataOpt = None,
    layers: Annotated[str | None, typer.Option(
        help="Layers, comma-separated.", rich_help_panel=MODEL_PANEL,
        show_default="every convolution layer")] = None,
    top: Annotated[int, typer.Option(help="Real images kept per filter.")] = 9,
    steps: Annotated[int, typer.Option(help="Ascent steps of every pattern.")] = 100,
    chunk: Annotated[int, typer.Option(help="Filters per ascent part (a part is saved as it "
                                            "finishes).")] = 64,
    shard: Annotated[int, typer.Option(help="Real images per statistics part.")] = 2000,
    size_: SizeOpt = None,
    budget: Annotated[int, typer.Option(help="Memory budget of a step, MiB.")] = 512,
    precision: PrecisionOpt = "float32",
    seed: SeedOpt = 0,
    ray: RayOpt = None,
    out: Annotated[Path | None, out_option("cnnviz-out/atlas", "Site folder (index.html).")] = None,
    force: ForceOpt = False,
    preprocess: PreprocessOpt = "auto",
    output: OutputOpt = None,
    unsafe: UnsafeOpt = False,
) -> None:
    """Every filter of every convolution layer as a static site: its optimal input pattern,
    the real images that excite it most with its map over them, its class profile. An
    interrupted atlas continues where it stopped when run again."""
    from cnnviz.atlas.build import AtlasSpec
    from cnnviz.cli.common import progress_bar, split
    from cnnviz.jobs.atlas import atlas_job

    out = output_path(out, "cnnviz-out/atlas", "atlas", force, resume=True)
    spec = AtlasSpec(tuple(split(layers) or ()), top, steps, seed, chunk, shard, size(size_),
                     budget * 2**20, precision)
    facts = load(model, unsafe, preprocess, output)
    with progress_bar("atlas", "steps and images") as progress:
        outcome = atlas_job(facts, out, spec, data=data, force=force, progress=progress,
                            runner=ray_runner(ray))
    show(outcome)
