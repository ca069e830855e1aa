"""Per-map activations of a model's layers; class patterns and top examples as streaming
reductions over a data set (memory does not grow with the data)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from cnnviz.core.backend import ModelCache, backend_name, compile_step, keras
from cnnviz.core.cache import cached
from cnnviz.core.errors import CnnvizError
from cnnviz.core.timing import timed
from cnnviz.data.readers import Source
from cnnviz.data.sources import as_source, converted
from cnnviz.model.facts import (
    ModelFacts,
    as_facts,
    as_list,
    resolve_map_layers,
)
from cnnviz.model.graph import feature_model
from cnnviz.results import Activations, Meta


@timed("compute")
def activations(model: ModelFacts | Any, images: np.ndarray, layers: list[str] | None = None,
                *, labels: np.ndarray | None = None, data: str | None = None,
                classes: tuple[str, ...] = (), batch_size: int = 256) -> Activations:
    """Outputs of ``layers`` (default: every conv and pooling layer) for model-ready ``images``
    (N×H×W×C in the model's value range), in one compiled, batched forward pass; ``data`` says
    where the images came from, ``classes`` names their labels."""
    facts = as_facts(model)
    model = facts.model
    images = np.asarray(images, dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim != 4 or any(e is not None and e != s
                               for e, s in zip(expected, images.shape[1:], strict=True)):
        raise CnnvizError(f"images of shape {images.shape} do not fit the model input "
                          f"(N, {', '.join(map(str, expected))})")
    if images.shape[0] == 0:
        raise CnnvizError("no images given")
    names = resolve_map_layers(model, None) if layers is None else list(layers)
    sub = feature_model(model, names, with_output=True)  # unknown names raise with suggestions
    if len(images) <= EAGER_IMAGES:  # a direct call: no compiled predict step to trace
        ops = keras().ops
        outputs = [ops.convert_to_numpy(o) for o in as_list(sub(images, training=False))]
    else:
        outputs = sub.predict(images, batch_size=batch_size, verbose=0)
        outputs = outputs if isinstance(outputs, list) else [outputs]
    if not np.all(np.isfinite(np.asarray(outputs[-1], np.float64))):
        raise CnnvizError(f"the model's output for {data or 'the input'} is NaN or infinite: "
                          "it overflows inside (its weights are finite)")
    maps = {name: np.asarray(out) for name, out in zip(names, outputs, strict=False)}
    meta = Meta(facts.name, facts.preprocess, tuple(names), data, classes=tuple(classes),
                model_digest=facts.digest)
    return Activations(images, maps, np.asarray(outputs[-1]), labels, meta)


REDUCTIONS = ("mean", "max", "centre", "none")
EAGER_IMAGES = 16  # up to this many images, one direct call beats tracing a predict step


def channel_means(model: ModelFacts | Any, layer: str, images: np.ndarray, *,
                  preactivation: bool = False, reduce: str = "mean",
                  batch_size: int = 256) -> np.ndarray:
    """The mean of each map of ``layer`` for each model-ready image: (N, maps) — or, with
    ``reduce``, its largest value or its centre unit's; before the layer's fused activation
    with ``preactivation``."""
    ops = keras().ops
    run = _reducing_pass(as_facts(model).model, [layer], preactivation, reduce)
    images = np.asarray(images, np.float32)
    parts = []
    for begin in range(0, len(images), batch_size):
        out = run(ops.convert_to_tensor(images[begin:begin + batch_size]))
        parts.append(ops.convert_to_numpy(_single(out)))
    return np.concatenate(parts)


def _reducing_pass(model: Any, layers: list[str], preactivation: bool,
                   reduce: str = "mean") -> Any:
    """A compiled function: model-ready images → per layer (N, units), maps reduced to their
    mean, max or centre unit; kept for the same model and layers, so a second call does not
    trace again."""
    if reduce not in REDUCTIONS:
        raise CnnvizError(f"unknown reduction '{reduce}': use {', '.join(REDUCTIONS)}")
    return _PASSES.get(model, (tuple(layers), preactivation, reduce),
                       lambda: _build_reducing_pass(model, layers, preactivation, reduce))


_PASSES = ModelCache()


def _reduced(maps: Any, reduce: str) -> Any:
    """(N, H, W, C) maps → (N, C) (``none``: the maps themselves); other shapes pass."""
    ops = keras().ops
    if len(maps.shape) != 4 or reduce == "none":
        return maps
    if reduce == "centre":
        return maps[:, maps.shape[1] // 2, maps.shape[2] // 2, :]
    return ops.max(maps, axis=(1, 2)) if reduce == "max" else ops.mean(maps, axis=(1, 2))


def _build_reducing_pass(model: Any, layers: list[str], preactivation: bool,
                         reduce: str) -> Any:
    sub = feature_model(model, layers, preactivation=preactivation)
    for name, out in zip(layers, as_list(sub.outputs), strict=True):
        if len(out.shape) not in (2, 4):
            raise CnnvizError(f"layer '{name}' has neither 2-D maps nor dense units "
                              f"(output shape {tuple(out.shape)})")
    # Reduced inside the compiled step, where a model of any size has concrete map sizes.
    # XLA fuses the forward pass (conv, bias, ReLU, pooling): on CPU it is what model.predict
    # uses too, and it measured 2.4× faster here than a plain tf.function.
    return compile_step(lambda x: [_reduced(o, reduce) for o in as_list(sub(x))],
                        jit_compile=True)


def _single(out: Any) -> Any:
    """The one output of a one-layer pass (Keras returns it bare or in a list)."""
    return out[0] if isinstance(out, (list, tuple)) else out


ProgressFn = Callable[[int, int | None], None]


def _streamed(facts: ModelFacts, source: Source, layers: list[str], preactivation: bool,
              size: tuple[int, int] | None, batch_size: int, on_progress: ProgressFn | None,
              reduce: str = "mean") -> Iterator[tuple[int, list[np.ndarray], np.ndarray | None]]:
    """Per batch of ``source``: its first index, each layer's (N, units) values (map means for
    maps) from one compiled pass, and its labels."""
    if batch_size <= 0:
        raise CnnvizError(f"the batch size must be positive, got {batch_size}")
    ops = keras().ops
    run = _reducing_pass(facts.model, layers, preactivation, reduce)
    shape, _ = facts.default_size(size)
    total = source.size()
    if total is None or total > batch_size:  # compile while the first batches decode
        zeros = ops.convert_to_tensor(np.zeros((batch_size, *shape), np.float32))
        threading.Thread(target=run, args=(zeros,), daemon=True).start()
    begin = 0
    for x, labels in converted(source, shape, batch_size, facts.preprocess):
        n = len(x)
        if begin and n < batch_size:  # the last batch, padded: the compiled pass is reused
            x = np.asarray(x)
            x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]), x.dtype)])
        outs = run(ops.convert_to_tensor(x))
        values = [ops.convert_to_numpy(o)[:n].astype(np.float64) for o in as_list(outs)]
        yield begin, values, labels
        begin += n
        if on_progress:
            on_progress(begin, total)
    if begin == 0:
        raise CnnvizError(f"{source.name}: no images (an empty folder, file or split)")


def reduced_batches(facts: ModelFacts, source: Source, layers: list[str], *,
                    preactivation: bool = False, size: tuple[int, int] | None = None,
                    batch_size: int = 256, on_progress: ProgressFn | None = None,
                    reduce: str = "mean"
                    ) -> Iterator[tuple[int, list[np.ndarray], np.ndarray | None]]:
    """Per batch of ``source``: its first index, each layer's (N, maps or units) values (each
    map reduced to its mean, max or centre unit) from one compiled pass, and its labels."""
    return _streamed(facts, source, layers, preactivation, size, batch_size, on_progress,
                     reduce)


@timed("compute")
def top_examples(model: ModelFacts | Any, layer: str, images: Any, k: int = 9, *,
                 preactivation: bool = False, size: tuple[int, int] | None = None,
                 reduce: str = "mean", batch_size: int = 256,
                 on_progress: ProgressFn | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For every map of ``layer``, the indices of the ``k`` images (raw uint8 or 0..1 images,
    or any source) with the highest map mean (or max: ``reduce``) and those values, highest
    first: two (maps, k) arrays."""
    facts = as_facts(model)
    if k <= 0:
        raise CnnvizError(f"the number of examples must be positive, got {k}")
    source = as_source(images)

    def compute() -> dict[str, np.ndarray]:
        index, values = _top_examples(facts, layer, source, k, preactivation, size, reduce,
                                      batch_size, on_progress)
        return {"index": index, "values": values}

    if not source.exact_digest:
        found = compute()
    else:
        found = cached("top_examples", {
            "model": facts.digest, "data": source.digest(), "layer": layer, "k": k,
            "preactivation": preactivation, "size": size, "reduce": reduce,
            "preprocess": facts.preprocess.to_params(), "backend": backend_name()}, compute)
    return found["index"], found["values"]


def _top_examples(facts: ModelFacts, layer: str, source: Source, k: int, preactivation: bool,
                  size: tuple[int, int] | None, reduce: str, batch_size: int,
                  on_progress: ProgressFn | None) -> tuple[np.ndarray, np.ndarray]:
    best_values: np.ndarray | None = None
    best_index: np.ndarray | None = None
    for begin, outs, _ in _streamed(facts, source, [layer], preactivation, size,
                                    batch_size, on_progress, reduce):
        values = outs[0].T  # (maps, B)
        index = np.broadcast_to(np.arange(begin, begin + values.shape[1]), values.shape)
        if best_values is not None:
            values = np.concatenate([best_values, values], axis=1)
            index = np.concatenate([best_index, index], axis=1)
        keep = min(k, values.shape[1])
        # Stable: among equal values the earlier image wins, as in a brute-force sort.
        order = np.lexsort((index, -values), axis=1)[:, :keep]
        best_values = np.take_along_axis(values, order, axis=1)
        best_index = np.take_along_axis(index, order, axis=1)
    return best_index, best_values  # type: ignore[return-value]
