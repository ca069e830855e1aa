"""``atlas``: every filter of every convolution layer, as a static site."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.atlas.build import AtlasParts, AtlasSpec, ProgressFn, compute_parts
from cnnviz.atlas.site import example_strips, write_site
from cnnviz.core.units import OutputUnit
from cnnviz.data import to_unit_range
from cnnviz.data.sources import data_for, model_inputs, no_data_note
from cnnviz.jobs.common import Outcome
from cnnviz.maps.activations import activations
from cnnviz.model.facts import ModelFacts, conv_layers, get_layer
from cnnviz.model.receptive import receptive_field


def atlas_job(facts: ModelFacts, out: Path, spec: AtlasSpec | None = None, *,
              data: Any = None, force: bool = False, progress: ProgressFn | None = None,
              runner: Any = None) -> Outcome:
    """``cnnviz atlas``: compute the atlas's parts (reusing those an interrupted run left in
    ``out/parts``; in this process, or by ``runner``: :class:`~cnnviz.parts.cluster.RayRunner`)
    and write its site into ``out``."""
    spec = spec or AtlasSpec()
    unit = OutputUnit(out, "atlas", force, main="index.html")
    source = data_for(facts.input_shape, data)
    notes = [] if source is not None else [no_data_note(
        facts.name, facts.input_shape, "the real images and class profiles of the atlas")]
    with unit:
        if force and (out / "parts").is_dir():
            shutil.rmtree(out / "parts")  # --force starts again
        try:
            atlas = compute_parts(facts, out / "parts", source, spec, progress, runner)
        except KeyboardInterrupt:
            stamps = [p.name for p in (out / "parts").rglob("*.stamp.json")]
            running = sum(".partial." in name for name in stamps)
            kept = len(stamps) - running
            return Outcome(notes=[*facts.notes, *notes], interrupted=(
                f"kept {kept} finished part{'s' if kept != 1 else ''}"
                + (f" and {running} running one{'s' if running != 1 else ''} as it stood"
                   if running else "")
                + f" in {out / 'parts'}; the same command continues from them"))
        extras = {layer: _extras(facts, atlas, layer, source, spec) for layer in atlas.layers}
        with unit.writing() as written:
            written += write_site(out, atlas, extras, f"cnnviz atlas of {facts.name}")
    outcome = Outcome(written, notes=[*facts.notes, *notes])
    counts: dict[str, int] = {}
    for result in atlas.filters.values():
        counts[result.units] = counts.get(result.units, 0) + len(result.filters)
    what = " and ".join(f"{n:,} {units}" for units, n in counts.items())
    dead = sum(int(r.dead.sum()) for r in atlas.filters.values())
    outcome.lines = [f"{len(atlas.layers)} layers, {what} ({dead} dead); "
                     f"{atlas.computed} parts computed, {atlas.reused} reused from an earlier "
                     f"run", f"wrote {out / 'index.html'} and {len(written) - 1:,} files beside it"]
    return outcome


def _extras(facts: ModelFacts, atlas: AtlasParts, layer: str, source: Any,
            spec: AtlasSpec) -> dict[str, Any]:
    """A layer's summary strings, its filters' example strips and, for the model's first
    convolution, its kernels."""
    result = atlas.filters[layer]
    shape = tuple(result.images.shape[1:])
    out_shape = tuple(get_layer(facts.model, layer).output.shape[1:])
    vector = len(out_shape) == 1
    field = None if vector else receptive_field(facts, layer,
                                                shape[:2] if facts.any_size else None)
    extra: dict[str, Any] = {"field": "the whole image" if field is None else
                             field.describe()[0],
                             "shape": "×".join("?" if s is None else str(s) for s in out_shape),
                             "units": result.units,
                             "names": [atlas.classes[f] if result.classes and
                                       len(atlas.classes) == out_shape[-1]
                                       else result.unit_name(f) for f in result.filters]}
    if atlas.statistics is not None and source is not None:
        index = atlas.statistics.top_index[layer]
        wanted = sorted({int(i) for i in index[result.filters].ravel()})
        pixels, _ = source.gather(wanted, shape)
        maps = activations(facts, model_inputs(pixels, facts.preprocess), [layer],
                           batch_size=64).maps[layer]
        shown = to_unit_range(np.asarray(pixels), source=str(source.name))  # uint8 or 0..1
        extra["strips"] = example_strips(result.filters, index,
                                         dict(zip(wanted, shown, strict=True)),
                                         dict(zip(wanted, maps, strict=True)), field)
    if layer == conv_layers(facts.model)[0]:
        kernel = np.asarray(get_layer(facts.model, layer).get_weights()[0], np.float64)
        if kernel.ndim == 4 and kernel.shape[2] in (1, 3):
            span = np.abs(kernel).max(axis=(0, 1, 2), keepdims=True)
            shown = 0.5 + 0.5 * kernel / np.where(span > 0, span, 1.0)
            extra["kernels"] = [shown[..., f] for f in result.filters]
    return extra
