"""Load Keras models into model facts, list their layers (nested models included), pick the
default layer and build feature sub-models."""

from __future__ import annotations

import difflib
import re
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.backend import keras, native_logs_muted
from cnnviz.core.errors import CnnvizError
from cnnviz.core.preprocess import Preprocess, for_model, named, recognized
from cnnviz.core.text import printable
from cnnviz.core.timing import phase

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
REFERENCE_MODEL = "reference_cnn.keras"


def reference_model_path() -> Path:
    """Path of the bundled reference CNN (trained on the bundled MNIST sample)."""
    return Path(str(resources.files("cnnviz") / "assets" / REFERENCE_MODEL))


@dataclass(frozen=True)
class ModelFacts:
    """A Keras model with what cnnviz knows about it (how it wants its pixels, where it came
    from), handed to every computation; nothing is ever set on the Keras model itself."""

    model: Any
    preprocess: Preprocess
    source: str = "in memory"
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The Keras model's name."""
        return str(self.model.name)

    @property
    def digest(self) -> str:
        """A fingerprint of the model: its layers' configuration and every weight."""
        return model_digest(self.model)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The shape of one input (height, width, channels); ``None`` where the model takes any
        size."""
        return tuple(self.model.inputs[0].shape[1:])

    @property
    def value_range(self) -> tuple[Any, Any]:
        """(lo, hi) of the model's valid inputs: floats, or per-channel arrays (caffe, torch)."""
        return self.preprocess.value_range(int(self.model.inputs[0].shape[-1]))

    @property
    def any_size(self) -> bool:
        """Whether the model takes images of any height and width (``None`` in its shape)."""
        return len(self.input_shape) == 3 and None in self.input_shape[:2]

    def image_shape(self, size: tuple[int, int] | None = None) -> tuple[int, int, int]:
        """(height, width, channels) of one input: the model's own, or ``size`` for a model
        that takes any size."""
        model = self.model
        check_one_input(model)
        shape = self.input_shape
        if len(shape) != 3 or shape[2] is None:
            raise CnnvizError(f"model '{model.name}' input shape {shape} is not (height, width, "
                              "channels)")
        if not self.any_size:
            if size is not None and tuple(size) != shape[:2]:
                raise CnnvizError(f"model '{model.name}' takes {shape[0]}×{shape[1]} images "
                                  "only: --size does not apply")
            return shape  # type: ignore[return-value]
        if size is None:
            raise CnnvizError(f"model '{model.name}' takes images of any size: choose one with "
                              "--size H,W")
        if min(size) < 1:
            raise CnnvizError(f"--size must be positive, got {size[0]},{size[1]}")
        return (int(size[0]) if shape[0] is None else shape[0],
                int(size[1]) if shape[1] is None else shape[1], int(shape[2]))

    def default_size(self, size: tuple[int, int] | None = None) -> tuple[tuple[int, int, int],
                                                                          str | None]:
        """The input shape where no image decides it (the ascent, data streams): ``size``, or
        for a model that takes any size 224×224 for colour and 64×64 otherwise, with a note
        saying so."""
        if not self.any_size or size is not None:
            return self.image_shape(size), None
        side = 224 if self.input_shape[2] == 3 else 64
        return self.image_shape((side, side)), (f"model '{self.name}' takes any size: using "
                                                f"{side}×{side} (choose with --size H,W)")


def model_digest(model: Any) -> str:
    """SHA-256 (first 16 hex digits) of a model's JSON configuration and weights, in order."""
    import hashlib

    with native_logs_muted():  # Keras's serialization loads TensorFlow where installed, even
        config = model.to_json()  # under JAX (2.5 s on 2 cores, once a process)
    digest = hashlib.sha256(config.encode("utf-8"))
    for weights in model.get_weights():
        array = np.ascontiguousarray(weights)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def input_struct(model: Any) -> Any:
    """The model's input tensor, or the list of them when it has several."""
    return model.inputs[0] if len(model.inputs) == 1 else list(model.inputs)


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def output_view(model: Any, output: str | int | None) -> tuple[Any, tuple[str, ...]]:
    """The model seen through one of its outputs (by name or index; the first by default, with a
    note when there are several): a Keras model sharing the user's layers."""
    names = [t._keras_history[0].name if hasattr(t, "_keras_history") else str(i)
             for i, t in enumerate(model.outputs)]
    if output is None and len(names) == 1:
        return model, ()
    if output is None:
        index, notes = 0, (f"model '{model.name}' has {len(names)} outputs "
                           f"({', '.join(names)}): using {names[0]}; --output picks another",)
    elif isinstance(output, int) or str(output).isdigit():
        index, notes = int(output), ()
        if not 0 <= index < len(names):
            raise CnnvizError(f"output {index} is out of range: model '{model.name}' has "
                              f"{len(names)} (0..{len(names) - 1})")
    elif output in names:
        index, notes = names.index(output), ()
    else:
        raise CnnvizError(f"model '{model.name}' has no output '{output}'; outputs: "
                          f"{', '.join(names)}")
    if len(names) == 1:
        return model, notes
    view = keras().Model(input_struct(model), model.outputs[index], name=model.name)
    return view, notes


def check_one_input(model: Any) -> None:
    """Refuse, in one line, a model that takes several inputs: everything that runs a model
    here feeds it one image."""
    if len(model.inputs) != 1:
        raise CnnvizError(f"model '{model.name}' has {len(model.inputs)} inputs; cnnviz runs "
                          "models of one image input (layers and kernels read any model)")


def as_facts(model: Any, preprocess: str | Preprocess | None = None) -> ModelFacts:
    """``model`` as :class:`ModelFacts`: a Keras model gets the named preprocessing (``auto``,
    read from the model, when none is named); facts are returned as they are unless
    ``preprocess`` names another."""
    if isinstance(model, ModelFacts):
        if preprocess is None:
            return model
        model, source = model.model, model.source
    else:
        source = "in memory"
    chosen = preprocess if isinstance(preprocess, Preprocess) else for_model(
        model, preprocess or "auto")
    return ModelFacts(model, chosen, source)


def load(path: str | Path | None = None, *, preprocess: str = "auto", unsafe: bool = False,
         output: str | int | None = None, run: bool = True) -> ModelFacts:
    """Load a ``.keras`` or ``.h5`` file (``None``: the bundled reference CNN) as model facts;
    ``unsafe`` allows Lambda layers (code from the file runs); ``output`` picks one output of a
    multi-output model (name or index); ``run=False`` for a model only read, never called (its
    layer names need not suit the backend)."""
    model = load_model(path, safe_mode=not unsafe)
    if run:
        check_one_input(model)
        check_names_run(model)
    model, notes = output_view(model, output)
    source = "bundled reference CNN" if path is None else str(path)
    mode, why = recognized(model) if preprocess == "auto" else (preprocess, None)
    return ModelFacts(model, named(mode), source, (*notes, why) if why else notes)


def model_file(path: str | Path | None = None) -> Path:
    """The model file ``path`` names (``None``: the bundled reference CNN), refused with one
    line when it cannot be a Keras model."""
    model_path = reference_model_path() if path is None else Path(path)
    if not model_path.exists():
        raise CnnvizError(f"model file not found: {model_path}")
    if model_path.is_dir():
        raise CnnvizError(f"{model_path} is a directory, not a model file (.keras or .h5)")
    suffix = model_path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise CnnvizError(f"{model_path} is not a Keras model file: expected .keras or .h5, "
                          f"got '{suffix or 'no suffix'}'")
    if model_path.stat().st_size == 0:
        raise CnnvizError(f"{model_path} is empty (0 bytes)")
    if suffix == ".keras" and not zipfile.is_zipfile(model_path):
        raise CnnvizError(f"{model_path} is not a valid .keras file (not a zip archive)")
    if suffix != ".keras" and not _is_hdf5(model_path):
        raise CnnvizError(f"{model_path} is not a valid .h5 file (no HDF5 signature)")
    return model_path


def load_model(path: str | Path | None = None, *, safe_mode: bool = True) -> Any:
    """Load a ``.keras`` or legacy ``.h5`` model; ``None`` loads the bundled reference CNN."""
    model_path = model_file(path)
    k = keras()  # outside the try: a bad backend is its own error, not a bad file
    try:
        with phase("load"):
            model = k.models.load_model(model_path, compile=False, safe_mode=safe_mode)
    except Exception as exc:  # Keras raises many types; the user needs one line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            detail += " (pass --unsafe / safe_mode=False only for a model you trust)"
        raise CnnvizError(f"could not load model {model_path}: {detail}") from None
    if not isinstance(model, k.Model):
        raise CnnvizError(f"{model_path} holds a {type(model).__name__}, not a Keras model")
    check_finite_weights(model)
    return model


# TensorFlow opens a name scope per layer and accepts only these characters in it.
_TF_SCOPE = re.compile(r"^[A-Za-z0-9_.\\/>-]*$")


def check_names_run(model: Any) -> None:
    """Under TensorFlow, refuse a model with a layer name TensorFlow cannot run (it fails on
    the first call): say which, and what to do."""
    from cnnviz.core.backend import backend_name

    if backend_name() != "tensorflow":
        return
    for info in list_layers(model, include_input=True):
        name = info.name.rsplit("/", 1)[-1]
        if not _TF_SCOPE.match(name):
            raise CnnvizError(f"layer {printable(repr(name))} has a name TensorFlow cannot run "
                              "(it allows letters, digits and _ . / > -): rename the layer, or "
                              "run under KERAS_BACKEND=jax")


def check_finite_weights(model: Any) -> None:
    """Refuse a model with NaN or infinite weights: every output and gradient would be NaN."""
    ops = keras().ops
    for weights in model.weights:
        if not np.isfinite(ops.convert_to_numpy(weights)).all():
            owner = weights.path.split("/")[-2] if "/" in weights.path else weights.path
            raise CnnvizError(f"the weights of layer '{owner}' contain NaN or Inf: the model's "
                              "outputs and gradients would be NaN")


def _is_hdf5(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class LayerInfo:
    """One layer: its path name ("base/conv" when nested), type, output shape and map count."""

    name: str
    type: str
    output_shape: tuple[int | None, ...]
    maps: int | None

    @property
    def has_maps(self) -> bool:
        """True for layers whose output is a stack of 2-D maps (batch, height, width, maps)."""
        return self.maps is not None

    @property
    def has_units(self) -> bool:
        """True for layers whose output is a vector of units (batch, units): Dense layers,
        global pooling, the logits."""
        return len(self.output_shape) == 2 and self.output_shape[-1] is not None


def layer_output_shape(layer: Any) -> tuple[int | None, ...]:
    """A layer's output shape, batch first; ``()`` where it has none (called several times)."""
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return ()


def _layer_info(layer: Any, name: str) -> LayerInfo:
    shape = layer_output_shape(layer)
    maps = shape[-1] if len(shape) == 4 else None
    return LayerInfo(name=name, type=type(layer).__name__, output_shape=shape, maps=maps)


def _is_nested_model(layer: Any) -> bool:
    return isinstance(layer, keras().Model)


def list_layers(model: Any, *, include_input: bool = False) -> list[LayerInfo]:
    """All layers in order, descending into nested models with "outer/inner" names."""
    infos: list[LayerInfo] = []

    def walk(container: Any, prefix: str) -> None:
        for layer in container.layers:
            if isinstance(layer, keras().layers.InputLayer) and not include_input:
                continue
            name = f"{prefix}{layer.name}"
            infos.append(_layer_info(layer, name))
            if _is_nested_model(layer):
                walk(layer, f"{name}/")

    walk(model, "")
    return infos


def map_layers(model: Any) -> list[LayerInfo]:
    """The layers whose output is a stack of 2-D maps (convolutions, pooling, ...)."""
    return [info for info in list_layers(model) if info.has_maps]


def get_layer(model: Any, name: str) -> Any:
    """The layer at a path name like ``conv2d_1`` or ``base/block1_conv1``; suggests close names."""
    container = model
    for part in name.split("/"):
        layers = {layer.name: layer for layer in getattr(container, "layers", [])}
        if part not in layers:
            raise CnnvizError(_unknown_layer_message(model, name))
        container = layers[part]
    return container


def _unknown_layer_message(model: Any, name: str) -> str:
    names = [info.name for info in list_layers(model)]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; layers: {', '.join(names)}"
    return f"unknown layer '{name}'{hint}"


def resolve_map_layers(model: Any, names: list[str] | None) -> list[str]:
    """Validate layer path names that must have 2-D maps; ``None`` gives the convolution and
    pooling layers (or every layer with maps, if there are none)."""
    usable = [info.name for info in map_layers(model)]
    if not usable:
        raise CnnvizError(f"model '{model.name}' has no layer with 2-D maps (no convolution or "
                          "pooling layer): nothing to show as maps")
    if names is None:
        infos = map_layers(model)
        return [i.name for i in infos if "Conv" in i.type or "Pool" in i.type] or usable
    for name in names:
        get_layer(model, name)
        if name not in usable:
            raise CnnvizError(f"layer '{name}' has no 2-D maps; layers with maps: "
                              f"{', '.join(usable) or 'none'}")
    return list(names)


def conv_layers(model: Any) -> list[str]:
    """The convolution layers among the layers with maps (nested ones included), in order."""
    return [info.name for info in map_layers(model) if "Conv" in info.type]


def default_layer(model: Any, *, first: bool = False, top_level: bool = False,
                  purpose: str | None = None) -> str:
    """The layer a command uses when none is named: the deepest convolution layer (the first
    with ``first``). With ``top_level``, a layer inside a nested model gives way to that nested
    model, whose output is its last block's maps. ``purpose`` names the use in the error."""
    convs = conv_layers(model)
    if not convs:
        if purpose is None:
            resolve_map_layers(model, None)  # a model without maps at all says so
        raise CnnvizError(f"model '{model.name}' has no convolution layer"
                          + (f" for {purpose}" if purpose else ": name a layer with maps"))
    name = convs[0] if first else convs[-1]
    return name.split("/")[0] if top_level else name


def conv_kernels(model: Any, layer: str, channel: int | None = 0) -> np.ndarray:
    """The weights of a 2-D convolution layer seen from one input channel: (kh, kw, filters);
    ``None``: from every channel, (kh, kw, channels, filters)."""
    weights = getattr(get_layer(model, layer), "kernel", None)
    if weights is None or len(weights.shape) != 4:
        raise CnnvizError(f"layer '{layer}' has no 2-D convolution kernel")
    kernel = np.asarray(keras().ops.convert_to_numpy(weights))
    if channel is not None and not 0 <= channel < kernel.shape[2]:
        raise CnnvizError(f"--channel {channel} is out of range: '{layer}' has "
                          f"{kernel.shape[2]} input channels")
    return kernel if channel is None else kernel[:, :, channel, :]


def input_range(model: Any) -> tuple[Any, Any]:
    """The (lo, hi) input values a model accepts, from its preprocessing (see
    :mod:`cnnviz.core.preprocess`): floats, or per-channel arrays for caffe and torch modes."""
    return as_facts(model).value_range


def input_shape(model: Any) -> tuple[int, int, int]:
    """(height, width, channels) of a model with one image input of fixed size."""
    return as_facts(model).image_shape()
