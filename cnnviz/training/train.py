"""The reference CNN of the seed blog, built from layer lists, and its training."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.backend import keras
from cnnviz.core.errors import CnnvizError, check_finite, check_seed
from cnnviz.core.preprocess import for_model
from cnnviz.core.tables import SCHEDULES
from cnnviz.core.timing import timed
from cnnviz.data import Dataset, images_to_model_input

# Keras's class names are accepted too.
SCHEDULE_NAMES = {"inversetimedecay": "inverse_time", "exponentialdecay": "exponential"}
# The seed blog's inverse-time rates: lr / (1 + 0.001·step); the exponential default halves
# the rate every 1000 steps, as the inverse time has at step 1000.
DECAY = {"inverse_time": (1, 1e-3), "exponential": (1000, 0.5), "constant": (1, 0.0)}


def build_cnn(conv_filters: Sequence[int] = (32, 64, 128), pool_after: Sequence[int] = (1, 2),
              dense_units: Sequence[int] = (120,), n_classes: int = 10,
              input_shape: tuple[int, int, int] = (28, 28, 1), kernel_size: int = 3,
              l2: float = 0.0, l1: float = 0.0, rescale: float | None = 1.0 / 255,
              seed: int = 0, standardize: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """A Sequential CNN: conv layers ``conv2d_1..`` (relu) with a max-pooling after the 1-based
    conv numbers in ``pool_after``, Flatten, relu Dense layers (L1/L2 on them), softmax output.
    With ``rescale`` the model takes 0..255 pixels and scales them itself; ``standardize``
    (per-pixel mean and variance of the scaled training pixels, :func:`pixel_statistics`)
    adds a layer that standardizes each pixel, as scikit-learn's StandardScaler does."""
    k = keras()
    _check_architecture(conv_filters, pool_after, dense_units, input_shape, kernel_size)
    check_seed(seed)
    check_finite(("l1", l1), ("l2", l2))
    if l1 < 0 or l2 < 0:
        raise CnnvizError(f"l1 and l2 must be ≥ 0, got {l1} and {l2}")
    init = k.initializers
    layers: list[Any] = [k.Input(shape=input_shape, name="image")]
    if rescale is not None:
        layers.append(k.layers.Rescaling(rescale, name="rescaling"))
    if standardize is not None:
        mean, variance = (np.asarray(v, np.float64).reshape(input_shape) for v in standardize)
        layers.append(k.layers.Normalization(axis=(1, 2, 3), mean=mean.tolist(),
                                             variance=variance.tolist(), name="standardize"))
    pools = 0
    for i, filters in enumerate(conv_filters, start=1):
        layers.append(k.layers.Conv2D(filters, kernel_size, activation="relu", name=f"conv2d_{i}",
                                      kernel_initializer=init.GlorotUniform(seed=seed + i)))
        if i in pool_after:
            pools += 1
            layers.append(k.layers.MaxPooling2D(2, name=f"max_pooling2d_{pools}"))
    layers.append(k.layers.Flatten(name="flatten"))
    regularizer = k.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    for j, units in enumerate(dense_units, start=1):
        layers.append(k.layers.Dense(units, activation="relu", name=f"dense_{j}",
                                     kernel_regularizer=regularizer,
                                     kernel_initializer=init.GlorotUniform(seed=seed + 100 + j)))
    layers.append(k.layers.Dense(n_classes, activation="softmax",
                                 name=f"dense_{len(dense_units) + 1}",
                                 kernel_regularizer=regularizer,
                                 kernel_initializer=init.GlorotUniform(seed=seed + 200)))
    return k.Sequential(layers, name="cnnviz_reference_cnn")


def _check_architecture(conv_filters: Sequence[int], pool_after: Sequence[int],
                        dense_units: Sequence[int], input_shape: tuple[int, int, int],
                        kernel_size: int) -> None:
    """Refuse layer lists Keras would fail on, before building: sizes, pool positions, and an
    image that would shrink to nothing."""
    if not conv_filters:
        raise CnnvizError("a CNN needs at least one conv layer")
    for what, sizes in (("conv filters", conv_filters), ("dense units", dense_units)):
        bad = [n for n in sizes if not 1 <= n <= 65536]
        if bad:
            raise CnnvizError(f"{what} must be between 1 and 65536, got {bad[0]}")
    bad = [i for i in pool_after if not 1 <= i <= len(conv_filters)]
    if bad:
        raise CnnvizError(f"--pool-after {bad[0]}: there are conv layers 1..{len(conv_filters)}")
    side = min(input_shape[:2])
    for i in range(1, len(conv_filters) + 1):
        side = side - (kernel_size - 1)
        side = side // 2 if i in pool_after else side
        if side < 1:
            raise CnnvizError(f"a {input_shape[0]}×{input_shape[1]} image shrinks to nothing "
                              f"by conv layer {i}: use fewer conv or pooling layers")


def pixel_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and variance of model-scaled images (N, H, W, C); a pixel that never
    varies gets variance 1, so it passes unchanged (StandardScaler's rule)."""
    x = np.asarray(images, np.float64)
    mean, variance = x.mean(axis=0), x.var(axis=0)
    return mean, np.where(variance > 0, variance, 1.0)


def standardizing_statistics(x_train: np.ndarray, y_train: np.ndarray,
                             shape: tuple[int, ...], validation: float | str | None,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """What a standardizing layer is adapted on: :func:`pixel_statistics` of the training
    images (scaled to 0..1) left after holding out ``validation`` (a fraction, drawn with
    ``seed`` as :func:`train` draws it; ``"test"`` and ``None`` hold none out)."""
    if validation not in (None, "test"):
        x_train = split_validation(x_train, y_train, float(validation), seed)[0]
    return pixel_statistics(images_to_model_input(x_train, shape, (0.0, 1.0)))


def schedule_name(kind: str) -> str:
    """``kind`` as one of :data:`SCHEDULES` (Keras's class names accepted), or an error."""
    name = SCHEDULE_NAMES.get(kind.lower().replace("_", ""), kind)
    if name not in SCHEDULES:
        raise CnnvizError(f"unknown schedule '{kind}': use one of {', '.join(SCHEDULES.names())} "
                          "(or InverseTimeDecay, ExponentialDecay)")
    return name


def learning_rate_schedule(kind: str = "inverse_time", initial: float = 1e-3,
                           decay_steps: int | None = None,
                           decay_rate: float | None = None) -> Any:
    """A Keras learning-rate schedule: ``inverse_time`` (lr / (1 + rate·step/steps); by default
    the seed blog's rates, steps 1 and rate 0.001), ``exponential`` (lr · rate^(step/steps);
    by default halving every 1000 steps) or ``constant``."""
    k = keras()
    kind = schedule_name(kind)
    default_steps, default_rate = DECAY[kind]
    decay_steps = default_steps if decay_steps is None else decay_steps
    decay_rate = default_rate if decay_rate is None else decay_rate
    check_finite(("the learning rate", initial), ("the decay rate", decay_rate))
    if decay_steps <= 0 or decay_rate < 0 or initial <= 0:
        raise CnnvizError(f"the learning rate and decay steps must be positive and the decay "
                          f"rate ≥ 0, got {initial}, {decay_steps} and {decay_rate}")
    if kind == "inverse_time":
        return k.optimizers.schedules.InverseTimeDecay(initial, decay_steps, decay_rate)
    if kind == "exponential":
        return k.optimizers.schedules.ExponentialDecay(initial, decay_steps, decay_rate)
    return initial


@dataclass
class TrainResult:
    """A trained model, its per-epoch history (loss, accuracy, their ``val_`` twins when there
    was validation data, ``learning_rate`` at each epoch's end) and test metrics."""

    model: Any
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    validation: str = ""


ProgressFn = Callable[[int, int, dict[str, float]], None]


def _current_rate(model: Any) -> float:
    return float(keras().ops.convert_to_numpy(model.optimizer.learning_rate))


def _callbacks(on_progress: ProgressFn | None, rates: list[float]) -> list[Any]:
    k = keras()

    class _Record(k.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if on_progress is not None:
                values = {key: float(v) for key, v in (logs or {}).items()}
                on_progress(self._epoch, batch + 1, {**values, "lr": _current_rate(self.model)})

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            rates.append(_current_rate(self.model))

    return [_Record()]


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of (x, y), drawn with ``seed``: train x, y, validation x, y."""
    if not 0 < fraction < 1:
        raise CnnvizError(f"--validation takes a fraction between 0 and 1 or 'test', got "
                          f"{fraction}")
    if not len(x):
        raise CnnvizError("the training data holds no images")
    held = max(1, round(fraction * len(x)))
    if held >= len(x):
        raise CnnvizError(f"holding out {fraction:g} of {len(x)} images leaves none to train on")
    order = np.random.default_rng(seed).permutation(len(x))
    keep, out = np.sort(order[held:]), np.sort(order[:held])
    return x[keep], y[keep], x[out], y[out]


@timed("compute")
def train(dataset: Dataset, *, model: Any | None = None, epochs: int = 5, batch_size: int = 64,
          learning_rate: float = 1e-3, momentum: float = 0.5, schedule: str = "inverse_time",
          decay_steps: int | None = None, decay_rate: float | None = None, l2: float = 5e-4,
          l1: float = 0.0, n_train: int | None = None, seed: int = 0,
          validation: float | str | None = 0.1, standardize: bool = False,
          callbacks: Sequence[Any] = (), on_progress: ProgressFn | None = None,
          checkpoint: Checkpoint | None = None) -> TrainResult:
    """Train ``model`` (default: the reference CNN, with a per-pixel standardizing layer when
    ``standardize``) with RMSprop + momentum and a learning-rate schedule on ``dataset``'s
    train split, holding out a ``validation`` fraction of it (or validating on its test split
    with ``"test"``, or not with ``None``); report loss and accuracy on its test split.
    ``callbacks`` are Keras callbacks (:mod:`cnnviz.training.callbacks`). With ``checkpoint``, the
    model after every epoch (with its optimizer's state) and the best one so far are saved
    while it trains, and a run that stopped continues from its last finished epoch."""
    k = keras()
    if epochs <= 0 or batch_size <= 0:
        raise CnnvizError(f"epochs and batch size must be positive (got {epochs}, {batch_size})")
    k.utils.set_random_seed(seed)
    x_train, y_train = dataset.x_train[:n_train], dataset.y_train[:n_train]
    shape = tuple(x_train.shape[1:]) if x_train.ndim == 4 else (*x_train.shape[1:], 1)
    held, described = None, ""
    if validation == "test":
        held, described = (dataset.x_test, dataset.y_test), f"the {len(dataset.x_test)} test images"
    elif validation is not None:
        x_train, y_train, *pair = split_validation(x_train, y_train, float(validation), seed)
        held, described = (pair[0], pair[1]), f"{len(pair[0])} held-out training images"
    if model is None:
        # x_train is what is left after the hold-out already
        stats = standardizing_statistics(x_train, y_train, shape, None) if standardize else None
        model = build_cnn(input_shape=shape, n_classes=len(dataset.class_names), l2=l2, l1=l1,
                          seed=seed, standardize=stats)
    value_range = for_model(model)
    x = images_to_model_input(x_train, shape, value_range)
    x_test = images_to_model_input(dataset.x_test, shape, value_range)
    lr = learning_rate_schedule(schedule, learning_rate, decay_steps, decay_rate)
    model.compile(optimizer=k.optimizers.RMSprop(learning_rate=lr, momentum=momentum),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history: dict[str, list[float]] = {}
    if checkpoint is not None and checkpoint.exists():
        model, history = checkpoint.restore()
    rates = history.pop("learning_rate", [])
    done = len(rates)
    val = None if held is None else (images_to_model_input(held[0], shape, value_range), held[1])
    watch = [] if checkpoint is None else [checkpoint.callback(history, rates)]
    if done < epochs:
        fit = model.fit(x, y_train, epochs=epochs, initial_epoch=done, batch_size=batch_size,
                        shuffle=True, validation_data=val, verbose=0,
                        callbacks=[*_callbacks(on_progress, rates), *callbacks, *watch])
        for key, values in fit.history.items():
            history[key] = history.get(key, []) + [float(v) for v in values]
    test_loss, test_accuracy = model.evaluate(x_test, dataset.y_test, batch_size=256, verbose=0)
    history["learning_rate"] = rates
    return TrainResult(model, history, float(test_loss), float(test_accuracy), described)


class Checkpoint:
    """Where a training run keeps its state beside the model file ``out``: after every epoch
    the model with its optimizer (``NAME.checkpoint.keras``) and the history with the run's
    ``settings`` (``NAME.checkpoint.json``, written last), and the best model so far by
    validation accuracy (training accuracy without validation): ``NAME.best.keras``."""

    def __init__(self, out: str | Path, settings: dict[str, Any] | None = None) -> None:
        out = Path(out)
        self.model = out.with_name(f"{out.stem}.checkpoint.keras")
        self.state = out.with_name(f"{out.stem}.checkpoint.json")
        self.best = out.with_name(f"{out.stem}.best.keras")
        self.settings = settings or {}

    def exists(self) -> bool:
        """Whether a run left a finished epoch to continue from."""
        return self.state.is_file() and self.model.is_file()

    def read(self) -> dict[str, Any]:
        """The saved state: ``epochs`` finished, ``settings``, ``history``."""
        try:
            state = json.loads(self.state.read_text())
        except (OSError, ValueError) as exc:
            raise CnnvizError(f"cannot read {self.state}: {exc}") from None
        if not isinstance(state, dict) or not isinstance(state.get("history"), dict) \
                or not isinstance(state.get("settings"), dict):
            raise CnnvizError(f"{self.state} is not a cnnviz training checkpoint")
        return state

    def planned_epochs(self) -> int | None:
        """The epochs the stopped run was started for (``None`` without a checkpoint)."""
        return int(self.read()["settings"].get("epochs", 0)) or None if self.exists() else None

    def restore(self) -> tuple[Any, dict[str, list[float]]]:
        """The model after the last finished epoch (compiled, its optimizer where it was) and
        the history up to it."""
        state = self.read()
        try:
            model = keras().models.load_model(self.model, safe_mode=True)
        except Exception as exc:  # Keras raises many kinds for a damaged file
            raise CnnvizError(f"cannot read {self.model}: {str(exc).splitlines()[0]}") from None
        return model, {key: [float(v) for v in values]
                       for key, values in state["history"].items()}

    def callback(self, history: dict[str, list[float]], rates: list[float]) -> Any:
        """The Keras callback that saves each finished epoch (and the best one), continuing
        ``history``; ``rates`` is the learning rate of each epoch, as training records it."""
        return _epoch_saver(self, {key: list(v) for key, v in history.items()}, rates)

    def remove(self) -> None:
        """The run finished: its epoch checkpoint goes (the best model stays)."""
        self.state.unlink(missing_ok=True)
        self.model.unlink(missing_ok=True)


def _epoch_saver(checkpoint: Checkpoint, history: dict[str, list[float]],
                 rates: list[float]) -> Any:
    from cnnviz.core.fileio import atomic_path, write_text

    class _Saver(keras().callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {key: float(v) for key, v in (logs or {}).items()}
            for key in {*history, *logs}:
                history[key] = history.get(key, []) + [logs.get(key, float("nan"))]
            watched = history.get("val_accuracy", history.get("accuracy", []))
            if watched and watched[-1] >= max(watched):
                save_model(self.model, checkpoint.best)
            with atomic_path(checkpoint.model) as tmp:
                self.model.save(tmp)  # with the optimizer's state, to continue from
            write_text(checkpoint.state, json.dumps({
                "epochs": epoch + 1, "settings": checkpoint.settings,
                "history": {**history, "learning_rate": list(rates)}}) + "\n")

    return _Saver()


def save_model(model: Any, path: str | Path) -> Path:
    """Save the architecture and weights (not the optimizer state) as ``.keras`` or legacy
    ``.h5``, atomically."""
    from cnnviz.core.fileio import atomic_path

    path = Path(path)
    if path.suffix.lower() not in (".keras", ".h5"):
        raise CnnvizError(f"model path must end in .keras or .h5, got {path.name}")
    bare = type(model).from_config(model.get_config())  # uncompiled: no optimizer state
    bare.set_weights(model.get_weights())
    with atomic_path(path) as tmp:  # the temporary name keeps the suffix Keras insists on
        bare.save(tmp)
    return path
