"""The reference CNN of the seed blog, built from layer lists, and its training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnviz.backend import keras
from cnnviz.data import Dataset, images_to_model_input
from cnnviz.errors import CnnvizError, check_finite, check_seed
from cnnviz.preprocess import for_model
from cnnviz.timing import timed

SCHEDULES = ("inverse_time", "exponential", "constant")


def build_cnn(conv_filters: Sequence[int] = (32, 64, 128), pool_after: Sequence[int] = (1, 2),
              dense_units: Sequence[int] = (120,), n_classes: int = 10,
              input_shape: tuple[int, int, int] = (28, 28, 1), kernel_size: int = 3,
              l2: float = 0.0, l1: float = 0.0, rescale: float | None = 1.0 / 255,
              seed: int = 0) -> Any:
    """A Sequential CNN: conv layers ``conv2d_1..`` (relu) with a max-pooling after the 1-based
    conv numbers in ``pool_after``, Flatten, relu Dense layers (L1/L2 on them), softmax output.
    With ``rescale`` the model takes 0..255 pixels and scales them itself."""
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


def learning_rate_schedule(kind: str = "inverse_time", initial: float = 1e-3,
                           decay_steps: int = 1000, decay_rate: float = 0.5) -> Any:
    """A Keras learning-rate schedule: ``inverse_time`` (lr / (1 + rate·step/steps)),
    ``exponential`` (lr · rate^(step/steps)) or ``constant``."""
    k = keras()
    if kind == "inverse_time":
        return k.optimizers.schedules.InverseTimeDecay(initial, decay_steps, decay_rate)
    if kind == "exponential":
        return k.optimizers.schedules.ExponentialDecay(initial, decay_steps, decay_rate)
    if kind == "constant":
        return initial
    raise CnnvizError(f"unknown schedule '{kind}': use one of {', '.join(SCHEDULES)}")


@dataclass
class TrainResult:
    """A trained model with its per-epoch history and test metrics."""

    model: Any
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float


ProgressFn = Callable[[int, int, dict[str, float]], None]


def _progress_callback(on_progress: ProgressFn) -> Any:
    k = keras()

    class _Progress(k.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            values = {key: float(v) for key, v in (logs or {}).items()}
            values["lr"] = float(k.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            on_progress(self._epoch, batch + 1, values)

    return _Progress()


@timed("compute")
def train(dataset: Dataset, *, model: Any | None = None, epochs: int = 5, batch_size: int = 64,
          learning_rate: float = 1e-3, momentum: float = 0.5, schedule: str = "inverse_time",
          decay_steps: int = 1000, decay_rate: float = 0.5, l2: float = 5e-4, l1: float = 0.0,
          n_train: int | None = None, seed: int = 0,
          on_progress: ProgressFn | None = None) -> TrainResult:
    """Train ``model`` (default: the reference CNN) with RMSprop + momentum and a learning-rate
    schedule on ``dataset``'s train split; report loss and accuracy on its test split."""
    k = keras()
    if epochs <= 0 or batch_size <= 0:
        raise CnnvizError(f"epochs and batch size must be positive (got {epochs}, {batch_size})")
    k.utils.set_random_seed(seed)
    x_train, y_train = dataset.x_train[:n_train], dataset.y_train[:n_train]
    shape = tuple(x_train.shape[1:]) if x_train.ndim == 4 else (*x_train.shape[1:], 1)
    if model is None:
        model = build_cnn(input_shape=shape, n_classes=len(dataset.class_names), l2=l2, l1=l1,
                          seed=seed)
    value_range = for_model(model)
    x = images_to_model_input(x_train, shape, value_range)
    x_test = images_to_model_input(dataset.x_test, shape, value_range)
    lr = learning_rate_schedule(schedule, learning_rate, decay_steps, decay_rate)
    model.compile(optimizer=k.optimizers.RMSprop(learning_rate=lr, momentum=momentum),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [_progress_callback(on_progress)] if on_progress else []
    fit = model.fit(x, y_train, epochs=epochs, batch_size=batch_size, shuffle=True,
                    callbacks=callbacks, verbose=0)
    test_loss, test_accuracy = model.evaluate(x_test, dataset.y_test, batch_size=256, verbose=0)
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    return TrainResult(model, history, float(test_loss), float(test_accuracy))


def save_model(model: Any, path: str | Path) -> Path:
    """Save the architecture and weights (not the optimizer state) as ``.keras`` or legacy
    ``.h5``, atomically."""
    from cnnviz.fileio import atomic_path

    path = Path(path)
    if path.suffix.lower() not in (".keras", ".h5"):
        raise CnnvizError(f"model path must end in .keras or .h5, got {path.name}")
    bare = type(model).from_config(model.get_config())  # uncompiled: no optimizer state
    bare.set_weights(model.get_weights())
    with atomic_path(path) as tmp:  # the temporary name keeps the suffix Keras insists on
        bare.save(tmp)
    return path
