"""``layers``: a model's layers, their shapes and receptive fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnviz.model.facts import load, model_file


@dataclass
class LayerTable:
    """``cnnviz layers``: a title and one row per layer (name, type, output shape, maps,
    receptive field, stride), and whether the model was read from its configuration alone."""

    title: str
    rows: list[tuple[str, str, str, str, str, str]]
    from_config: bool


def layers_job(path: Path | None = None, *, size: tuple[int, int] | None = None,
               unsafe: bool = False) -> LayerTable:
    """``cnnviz layers``: a model's layers, read from the ``.keras`` configuration where it
    says everything (no TensorFlow, nothing compiled), else from the model Keras loads."""
    from cnnviz.model.receptive import config_rows, layer_rows
    from cnnviz.model.static import read_config_model

    file = model_file(path)
    static = read_config_model(file, size) if file.suffix.lower() == ".keras" else None
    if static is not None:
        shape = static.input_shape
        title = static.name + (f" at {shape[1]}×{shape[2]}" if static.any_size else "")
        return LayerTable(title, config_rows(static), True)
    facts = load(path, unsafe=unsafe, run=False)
    shape, _ = facts.default_size(size)
    title = facts.name + (f" at {shape[0]}×{shape[1]}" if facts.any_size else "")
    return LayerTable(title, layer_rows(facts, size), False)
