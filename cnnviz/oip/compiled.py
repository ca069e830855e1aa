"""The few lines that need a gradient and a compiled step, for TensorFlow and for JAX.

Everything else in the engine is ``keras.ops`` and runs unchanged on either backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnviz.backend import keras
from cnnviz.errors import CnnvizError

LossFn = Callable[[Any], tuple[Any, Any]]


class ModelCache:
    """Compiled functions kept per model (by identity) and key, the oldest dropped past
    ``size``: a second call with the same model and settings does not trace again."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def get(self, model: Any, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The value cached for ``model`` and ``key``, built (and kept) on a miss."""
        full = (id(model), *key)
        hit = self._items.get(full)
        if hit is not None and hit[0] is model:  # ids of dead models can be reused
            return hit[1]
        if len(self._items) >= self.size:
            self._items.pop(next(iter(self._items)))
        value = build()
        self._items[full] = (model, value)
        return value


def backend_name() -> str:
    """The Keras backend in use ("tensorflow" or "jax")."""
    return keras().backend.backend()


def value_and_grad(fn: LossFn) -> Callable[[Any], tuple[tuple[Any, Any], Any]]:
    """``fn(x) -> (loss, aux)`` becomes ``x -> ((loss, aux), d loss / d x)``."""
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        def tf_value_and_grad(x: Any) -> tuple[tuple[Any, Any], Any]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss, aux = fn(x)
            return (loss, aux), tape.gradient(loss, x)

        return tf_value_and_grad
    if name == "jax":
        import jax

        return jax.value_and_grad(fn, has_aux=True)
    raise CnnvizError(f"the optimization engine supports the tensorflow and jax backends, "
                      f"not {name}")


def compile_step(step: Callable[..., Any], *, jit_compile: bool = False) -> Callable[..., Any]:
    """Compile a pure step function: ``tf.function`` (XLA with ``jit_compile``) or ``jax.jit``."""
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(step, jit_compile=jit_compile)
    if name == "jax":
        import jax

        return jax.jit(step)
    raise CnnvizError(f"the optimization engine supports the tensorflow and jax backends, "
                      f"not {name}")
