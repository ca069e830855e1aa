"""Per-map activations of a model's layers for a batch of inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.errors import CnnvizError
from cnnviz.fileio import load_results, save_results
from cnnviz.oip.compiled import ModelCache


@dataclass
class Activations:
    """Layer outputs for a batch of inputs, with the model's predictions and how they were made.

    ``maps[layer]`` has shape (N, height, width, maps) for map layers and (N, units) otherwise;
    ``inputs`` are the model inputs (N, height, width, channels) in the model's value range.
    """

    inputs: np.ndarray
    maps: dict[str, np.ndarray]
    probabilities: np.ndarray
    labels: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        """Layer names in model order."""
        return list(self.maps)

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class of each input."""
        return np.argmax(self.probabilities, axis=-1)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (.npz arrays) and the same name with ``.json`` (layers and metadata)."""
        arrays = {"inputs": self.inputs, "probabilities": self.probabilities}
        arrays.update({f"map_{i}": m for i, m in enumerate(self.maps.values())})
        if self.labels is not None:
            arrays["labels"] = self.labels
        return save_results(path, "activations", arrays, {"layers": self.layers,
                                                          "meta": self.meta})

    @classmethod
    def load(cls, path: str | Path) -> Activations:
        """Read what :meth:`save` wrote."""
        data, meta = load_results(path, "activations")
        maps = {name: data[f"map_{i}"] for i, name in enumerate(meta["layers"])}
        return cls(data["inputs"], maps, data["probabilities"], data.get("labels"), meta["meta"])


def activations(model: Any, images: np.ndarray, layers: list[str] | None = None, *,
                labels: np.ndarray | None = None, batch_size: int = 256) -> Activations:
    """Outputs of ``layers`` (default: every layer with 2-D maps) for model-ready ``images``
    (N×H×W×C in the model's value range), in one compiled, batched forward pass."""
    from cnnviz.models import feature_model, input_range, resolve_map_layers

    images = np.asarray(images, dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise CnnvizError(f"images of shape {images.shape} do not fit the model input "
                          f"(N, {', '.join(map(str, expected))})")
    if images.shape[0] == 0:
        raise CnnvizError("no images given")
    names = resolve_map_layers(model, None) if layers is None else list(layers)
    sub = feature_model(model, names, with_output=True)  # unknown names raise with suggestions
    outputs = sub.predict(images, batch_size=batch_size, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    maps = {name: np.asarray(out) for name, out in zip(names, outputs, strict=False)}
    from cnnviz.preprocess import preprocess_of

    meta = {"model": model.name,
            "input_range": [np.asarray(v).tolist() for v in input_range(model)],
            "preprocess": preprocess_of(model).to_params()}
    return Activations(images, maps, np.asarray(outputs[-1]), labels, meta)


def channel_means(model: Any, layer: str, images: np.ndarray, *, preactivation: bool = False,
                  batch_size: int = 256) -> np.ndarray:
    """The mean of each map of ``layer`` for each model-ready image: (N, maps); before the
    layer's fused activation with ``preactivation``."""
    from cnnviz.backend import keras

    ops = keras().ops
    run = _reducing_pass(model, [layer], preactivation)
    images = np.asarray(images, np.float32)
    parts = []
    for begin in range(0, len(images), batch_size):
        out = run(ops.convert_to_tensor(images[begin:begin + batch_size]))
        parts.append(ops.convert_to_numpy(_single(out)))
    return np.concatenate(parts)

@dataclass
class ClassPatterns:
    """Per class, the mean (and standard deviation) of each map's mean activation — or of each
    unit, for dense layers — over a labelled data set."""

    means: dict[str, np.ndarray]
    stds: dict[str, np.ndarray]
    counts: np.ndarray
    class_names: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return list(self.means)

    def top_maps(self, layer: str, k: int = 5) -> dict[str, list[int]]:
        """For each class, the ``k`` maps (units) with the highest mean, highest first."""
        order = np.argsort(-self.means[layer], axis=1, kind="stable")[:, :k]
        return {name: order[c].tolist() for c, name in enumerate(self.class_names)}

    def preferred_class(self, layer: str) -> np.ndarray:
        """The class on which each map (unit) has its highest mean."""
        return np.argmax(self.means[layer], axis=0)

    def selectivity(self, layer: str) -> np.ndarray:
        """(best class mean − mean of the others) / (|best| + |others| + ε), per map: 1 for a
        map that fires for one class only, 0 for one that fires alike for all."""
        means = self.means[layer]
        best = means.max(axis=0)
        others = (means.sum(axis=0) - best) / max(1, means.shape[0] - 1)
        return (best - others) / (np.abs(best) + np.abs(others) + 1e-12)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        arrays = {"counts": self.counts}
        for i, name in enumerate(self.layers):
            arrays[f"mean_{i}"], arrays[f"std_{i}"] = self.means[name], self.stds[name]
        return save_results(path, "class patterns", arrays, {
            "layers": self.layers, "class_names": list(self.class_names), "meta": self.meta})

    @classmethod
    def load(cls, path: str | Path) -> ClassPatterns:
        data, meta = load_results(path, "class patterns")
        layers = meta["layers"]
        return cls({n: data[f"mean_{i}"] for i, n in enumerate(layers)},
                   {n: data[f"std_{i}"] for i, n in enumerate(layers)}, data["counts"],
                   tuple(meta["class_names"]), meta["meta"])


def _reducing_pass(model: Any, layers: list[str], preactivation: bool) -> Any:
    """A compiled function: model-ready images → per layer (N, units), map means for maps;
    kept for the same model and layers, so a second call does not trace again."""
    return _PASSES.get(model, (tuple(layers), preactivation),
                       lambda: _build_reducing_pass(model, layers, preactivation))


_PASSES = ModelCache()


def _build_reducing_pass(model: Any, layers: list[str], preactivation: bool) -> Any:
    from cnnviz.backend import keras
    from cnnviz.models import _as_list, _input_struct, feature_model
    from cnnviz.oip.compiled import compile_step

    k = keras()
    sub = feature_model(model, layers, preactivation=preactivation)
    outs = [k.ops.mean(o, axis=(1, 2)) if len(o.shape) == 4 else o for o in _as_list(sub.outputs)]
    for name, out in zip(layers, outs, strict=True):
        if len(out.shape) != 2:
            raise CnnvizError(f"layer '{name}' has neither 2-D maps nor dense units "
                              f"(output shape {tuple(out.shape)})")
    reducer = k.Model(_input_struct(sub), outs)
    # XLA fuses the forward pass (conv, bias, ReLU, pooling): on CPU it is what model.predict
    # uses too, and it measured 2.4× faster here than a plain tf.function.
    return compile_step(lambda x: reducer(x), jit_compile=True)


def _single(out: Any) -> Any:
    """The one output of a one-layer pass (Keras returns it bare or in a list)."""
    return out[0] if isinstance(out, (list, tuple)) else out


def _batches(images: np.ndarray, model: Any, batch_size: int):
    """Model-ready batches of raw images (uint8 or 0..1 floats), converted as they stream."""
    from cnnviz.data import images_to_model_input
    from cnnviz.models import input_shape
    from cnnviz.preprocess import preprocess_of

    shape, value_range = input_shape(model), preprocess_of(model)
    for begin in range(0, len(images), batch_size):
        yield begin, images_to_model_input(images[begin:begin + batch_size], shape, value_range)


def _check_dataset(images: np.ndarray, labels: np.ndarray | None) -> None:
    if labels is None:
        raise CnnvizError("the data set has no labels: class patterns need one label per image")
    if len(images) == 0:
        raise CnnvizError("the data set is empty")
    if len(labels) != len(images):
        raise CnnvizError(f"{len(images)} images but {len(labels)} labels")


def class_patterns(model: Any, images: np.ndarray, labels: np.ndarray | None,
                   layers: str | list[str], *, class_names: tuple[str, ...] | None = None,
                   preactivation: bool = False, batch_size: int = 256,
                   on_progress: Callable[[int, int], None] | None = None) -> ClassPatterns:
    """Mean and spread of every map (unit) of ``layers`` for each class of a labelled data set
    of raw images (uint8 or 0..1), streamed in batches through one compiled pass: memory does
    not grow with the data set."""
    from cnnviz.backend import keras

    _check_dataset(images, labels)
    names = [layers] if isinstance(layers, str) else list(layers)
    labels = np.asarray(labels).astype(np.int64)
    n_classes = int(max(labels.max() + 1, len(class_names or ())))
    if labels.min() < 0:
        raise CnnvizError("labels must be class numbers ≥ 0")
    names_out = class_names or tuple(str(c) for c in range(n_classes))
    run = _reducing_pass(model, names, preactivation)
    ops = keras().ops
    sums: list[np.ndarray] = []
    squares: list[np.ndarray] = []
    counts = np.bincount(labels, minlength=n_classes).astype(np.int64)
    for begin, x in _batches(images, model, batch_size):
        onehot = np.eye(n_classes)[labels[begin:begin + len(x)]]
        outs = run(ops.convert_to_tensor(x))
        for i, out in enumerate(outs if isinstance(outs, (list, tuple)) else [outs]):
            v = ops.convert_to_numpy(out).astype(np.float64)
            if len(sums) <= i:
                sums.append(np.zeros((n_classes, v.shape[1])))
                squares.append(np.zeros((n_classes, v.shape[1])))
            sums[i] += onehot.T @ v
            squares[i] += onehot.T @ (v * v)
        if on_progress:
            on_progress(begin + len(x), len(images))
    safe = np.maximum(counts, 1)[:, None]
    means = {n: s / safe for n, s in zip(names, sums, strict=True)}
    stds = {n: np.sqrt(np.maximum(q / safe - (s / safe) ** 2, 0.0))
            for n, s, q in zip(names, sums, squares, strict=True)}
    meta = {"model": model.name, "images": int(len(images)), "preactivation": preactivation}
    return ClassPatterns(means, stds, counts, tuple(names_out), meta)


def top_examples(model: Any, layer: str, images: np.ndarray, k: int = 9, *,
                 preactivation: bool = False, batch_size: int = 256) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """For every map of ``layer``, the indices of the ``k`` images (raw, uint8 or 0..1) with the
    highest map mean and those means, highest first: two (maps, k) arrays."""
    from cnnviz.backend import keras

    if k <= 0:
        raise CnnvizError(f"the number of examples must be positive, got {k}")
    if len(images) == 0:
        raise CnnvizError("the data set is empty")
    run = _reducing_pass(model, [layer], preactivation)
    ops = keras().ops
    best_values: np.ndarray | None = None
    best_index: np.ndarray | None = None
    for begin, x in _batches(images, model, batch_size):
        values = ops.convert_to_numpy(_single(run(ops.convert_to_tensor(x)))).T  # (maps, B)
        index = np.broadcast_to(np.arange(begin, begin + len(x)), values.shape)
        if best_values is not None:
            values = np.concatenate([best_values, values], axis=1)
            index = np.concatenate([best_index, index], axis=1)
        keep = min(k, values.shape[1])
        # Stable: among equal values the earlier image wins, as in a brute-force sort.
        order = np.lexsort((index, -values), axis=1)[:, :keep]
        best_values = np.take_along_axis(values, order, axis=1)
        best_index = np.take_along_axis(index, order, axis=1)
    return best_index, best_values  # type: ignore[return-value]
