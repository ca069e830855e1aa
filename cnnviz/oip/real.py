"""The pass over real images beside an ascent: each filter's best real value on the objective's
measure, its top real examples cut to where it answers most, run in a thread while the ascent
runs where both fit the memory budget."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnviz.data.readers import Source
from cnnviz.data.sources import model_inputs
from cnnviz.maps.activations import activations, top_examples
from cnnviz.model.facts import ModelFacts
from cnnviz.model.receptive import crops_where_answered, receptive_field
from cnnviz.oip.settings import (
    DEFAULT_BUDGET,
    RECORD_BYTES,
    RECORD_STEPS,
    Settings,
    bytes_per_image,
)
from cnnviz.results import FilterResult


def reference_beside(facts: ModelFacts, layer: str, reference: Source | None, examples: int,
                     kind: str, shape: tuple[int, int, int], filters: int, settings: Settings,
                     batch: int | None, budget: int
                     ) -> Callable[[], tuple[np.ndarray, np.ndarray]] | None:
    """Start the pass over the real images in a thread, to run while the ascent does, where
    both fit ``budget`` together; returns what waits for its answer (``None``: run it after
    the ascent)."""
    if reference is None:
        return None
    per_image = bytes_per_image(facts.model, layer, shape)
    ascent = min(filters, batch or filters) * (
        per_image + min(settings.steps, RECORD_STEPS) * RECORD_BYTES)
    if ascent + reference_batch(per_image, shape, budget) * _reference_bytes(per_image, shape) \
            > budget:
        return None
    found: dict[str, Any] = {}

    def work() -> None:
        try:
            found["answer"] = _top(facts, layer, reference, examples, kind, shape, budget)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            found["error"] = exc

    thread = threading.Thread(target=work, name="cnnviz-reference", daemon=True)
    thread.start()

    def wait() -> tuple[np.ndarray, np.ndarray]:
        thread.join()
        if "error" in found:
            raise found["error"]
        return found["answer"]

    return wait


def _reference_bytes(per_image: int, shape: tuple[int, ...]) -> int:
    """What one real image costs in the reference pass: a third of an ascent image's
    activations (no gradients kept), and its conversion to the model's input — resampled in
    float64, then float32 — in the batch being converted, the one the model runs and the one
    waiting (48 bytes a value: a 28×28 digit for a 2048² model costs 2048² values)."""
    return per_image // 3 + 48 * int(np.prod(shape))


def reference_batch(per_image: int, shape: tuple[int, ...], budget: int) -> int:
    """Real images per batch of the reference pass, as many as fit ``budget``."""
    return max(1, min(256, budget // _reference_bytes(per_image, shape)))


def _top(facts: ModelFacts, layer: str, reference: Source, examples: int, kind: str,
         shape: tuple[int, ...], budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Each map's top real images and values on the objective's measure, at the ascent's
    size."""
    per_image = bytes_per_image(facts.model, layer, shape)
    return top_examples(facts, layer, reference, max(1, examples),
                        reduce="max" if kind == "neuron" else "mean", size=shape[:2],
                        batch_size=reference_batch(per_image, shape, budget))


def compare_with_real(result: FilterResult, facts: ModelFacts, reference: Source,
                      examples: int, budget: int = DEFAULT_BUDGET,
                      found: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Give ``result`` each filter's best real value of the objective's measure after the
    activation (map mean; for a neuron, the largest unit anywhere, as the layer is the same
    filter at every position) and, with ``examples``, its top real images (at the ascent's size)
    and their labels; ``found`` is that pass's answer when it already ran."""
    shape = tuple(result.images.shape[1:])
    kind = result.params.get("objective_kind", "channel")
    index, values = found or _top(facts, result.layer, reference, examples, kind, shape, budget)
    done = result.filters
    result.best_real = values[done, 0]
    if examples:
        result.example_indices = index[done]
        result.example_values = values[done]
        pixels, labels = reference.gather(result.example_indices.reshape(-1), shape)
        picked = _cropped(facts, result, model_inputs(pixels, facts.preprocess))
        result.example_images = picked.reshape(*result.example_indices.shape,
                                                *picked.shape[1:])
        result.params["example_names"] = [[reference.item_name(int(i)) for i in row]
                                          for row in result.example_indices]
        if labels is not None:
            result.example_labels = labels.reshape(result.example_indices.shape)


def _cropped(facts: ModelFacts, result: FilterResult, images: np.ndarray) -> np.ndarray:
    """Each filter's real examples (model inputs, filter-major) cut to where its map answers
    most (:func:`~cnnviz.model.receptive.crops_where_answered`); a layer of units keeps them."""
    maps = activations(facts, images, [result.layer]).maps[result.layer]
    if maps.ndim != 4:
        return images
    field = receptive_field(facts, result.layer,
                            tuple(images.shape[1:3]) if facts.any_size else None)
    result.params["example_crops"] = True
    channels = np.repeat(result.filters, result.example_indices.shape[1])
    return crops_where_answered(images, maps[np.arange(len(images)), :, :, channels], field)
