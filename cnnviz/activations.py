"""Per-map activations of a model's layers for a batch of inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.errors import CnnvizError
from cnnviz.fileio import load_results, save_results


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
    meta = {"model": model.name, "input_range": list(input_range(model))}
    return Activations(images, maps, np.asarray(outputs[-1]), labels, meta)


def channel_means(model: Any, layer: str, images: np.ndarray, *, preactivation: bool = False,
                  batch_size: int = 256) -> np.ndarray:
    """The mean of each map of ``layer`` for each image: (N, maps); before the layer's fused
    activation with ``preactivation``."""
    from cnnviz.backend import keras
    from cnnviz.models import feature_model

    k = keras()
    sub = feature_model(model, [layer], preactivation=preactivation)
    means = k.Model(sub.inputs[0], k.ops.mean(sub.outputs[0], axis=(1, 2)))
    return np.asarray(means.predict(np.asarray(images, np.float32), batch_size=batch_size,
                                    verbose=0))
