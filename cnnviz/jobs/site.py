"""``report`` and ``gallery``: pages of a whole model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnviz.core.errors import CnnvizError
from cnnviz.core.units import OutputUnit
from cnnviz.data.sources import bundled_fits, no_data_note
from cnnviz.jobs.common import InputSpec, Outcome
from cnnviz.jobs.explain import explain_job
from cnnviz.jobs.filters import AscentSpec, filters_job
from cnnviz.jobs.maps import activations_job, kernels_job, patterns_job
from cnnviz.model.facts import (
    ModelFacts,
    load,
)
from cnnviz.report.build import StatusFn, build_report


def report_job(facts: ModelFacts, out: Path, *, results: Path | None = None,
               layer: str | None = None, steps: int = 100, examples: int = 9, seed: int = 0,
               data: Any = None, size: tuple[int, int] | None = None, force: bool = False,
               status: StatusFn | None = None) -> Outcome:
    """``cnnviz report``: one self-contained HTML file."""
    from cnnviz.core.fileio import write_text

    notes = list(facts.notes)
    with report_unit(out, force) as unit:
        text = build_report(facts, results=results, layer=layer, steps=steps,
                            examples=examples, seed=seed, data=data, size=size, status=status,
                            note=notes.append)
        with unit.writing() as written:
            written.append(write_text(out, text))
    if data is None and not bundled_fits(facts.input_shape):
        notes.append(no_data_note(facts.name, facts.input_shape, "the sections that need data"))
    return Outcome(written, [f"wrote {out} ({len(text) / 2**20:.1f} MiB)"], notes)


def report_unit(out: Path, force: bool = False) -> OutputUnit:
    """A report is a unit of one page: its own manifest and lock beside it, so that two reports
    share a folder and two runs never write the same page at once."""
    if out.suffix.lower() not in (".html", ".htm"):
        raise CnnvizError(f"--out must be an .html file, got {out.name}")
    if out.is_dir():
        raise CnnvizError(f"{out} is a folder: --out names the report's .html file")
    return OutputUnit(out.parent, f"report-{out.name}", force, main=out.name)


# Every method, integrated gradients first (its overlay is the gallery's PNG).
EXPLAINED = "integrated_gradients,saliency,smoothgrad,gradcam,gradcam++,layercam"


def gallery_job(out: Path, *, steps: int = 100, seed: int = 0, force: bool = False,
                say: Callable[[str], None] | None = None) -> Outcome:
    """``cnnviz gallery``: every command's output on the bundled model, with fixed seeds (the
    same bytes each time); refuses to replace an earlier gallery without ``force``."""
    say = say or (lambda message: None)
    facts = load()
    if not force:  # every part is checked before the first is written
        for folder, kind, main in (
                ("activations", "activations", "activations.npz"),
                ("filters", "filters", "filters.npz"), ("classes", "filters", "filters.npz"),
                ("kernels", "kernels", "kernels.html"), ("patterns", "patterns", "patterns.npz"),
                ("explain", "explain", "explain.html")):
            OutputUnit(out / folder, kind, main=main)
        report_unit(out / "report.html")
    runs: list[tuple[str, Callable[[], Outcome]]] = [
        ("activations --digit 6", lambda: activations_job(
            facts, out / "activations", InputSpec(digit=6, seed=seed), force=True)),
        (f"filters --examples 9 --steps {steps}", lambda: filters_job(
            facts, out / "filters", AscentSpec(overrides={"steps": steps, "seed": seed}),
            examples=9, force=True)),
        (f"filters --layer dense_2 --examples 3 --steps {steps} (the classes)",
         lambda: filters_job(facts, out / "classes",
                             AscentSpec(overrides={"steps": steps, "seed": seed}),
                             layer="dense_2", examples=3, force=True)),
        ("kernels", lambda: kernels_job(facts, out / "kernels", force=True)),
        ("patterns", lambda: patterns_job(facts, out / "patterns", force=True)),
        (f"explain --digit 6 --method {EXPLAINED}", lambda: explain_job(
            facts, out / "explain", InputSpec(digit=6, seed=seed), method=EXPLAINED,
            force=True)),
        (f"report --from {out} --steps {steps}", lambda: report_job(
            facts, out / "report.html", results=out, steps=steps, seed=seed, force=True)),
    ]
    outcome = Outcome()
    for label, run in runs:
        say(f"cnnviz {label}")
        done = run()
        outcome.written += done.written
    outcome.lines = [f"rebuilt {out}: {len(outcome.written)} files"]
    return outcome
