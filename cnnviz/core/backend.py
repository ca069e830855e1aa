"""The ground floor under Keras: lazy import (importing cnnviz or running ``cnnviz --help``
never imports TensorFlow), the few lines that take a gradient and compile a step for TensorFlow
and for JAX, and the per-model cache of compiled functions."""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from cnnviz.core.errors import CnnvizError
from cnnviz.core.timing import phase

BACKENDS = ("tensorflow", "jax")
# Set before TensorFlow loads (and handed to worker processes, so they compute the same):
# quiet native logs, and oneDNN kernels (measured 25% faster OIP steps on a 2-core x86 CPU;
# off by default in some TensorFlow builds).
START_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1"}


def keras() -> ModuleType:
    """Import and return ``keras``, keeping TensorFlow's C++ start-up chatter off the terminal."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    requested = choose_backend()
    for name, value in START_ENV.items():
        os.environ.setdefault(name, value)
    # TensorFlow's native start-up logs ("Could not find cuda drivers ...") stay off the terminal.
    with phase("import"), native_logs_muted():
        start = _KerasStart(without_jax=requested == "tensorflow")
        sys.meta_path.insert(0, start)
        try:
            import keras as _keras

            _keras.ops.zeros(())  # backend start-up, where the remaining native logs are written
            if _keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                tf.get_logger().setLevel("ERROR")  # no retracing advice in a user's terminal
        finally:
            sys.meta_path.remove(start)
    # Keras and TensorFlow leave ~10^6 long-lived objects: out of the collector's sight, every
    # later collection stops re-walking them (0.2 s each on a 2-core machine).
    gc.freeze()
    return _keras


class _KerasStart:
    """Finder consulted while Keras loads. Keras imports pyplot for an image-gallery helper
    cnnviz never calls: it loads lazily, on its first use (by the user too). Keras's file editor
    imports IPython to show tables in notebooks: IPython stays out unless already loaded (as in
    every notebook and IPython shell; 0.6 s of every command on a 2-core machine for both).
    With ``without_jax``, JAX stays out while TensorFlow loads: TensorFlow Lite imports it, where
    installed, for a converter from JAX (0.4 s, and TensorFlow's steps ran 35 % slower with JAX
    loaded); imported later, by the user, JAX loads as usual."""

    def __init__(self, without_jax: bool) -> None:
        self.without_jax = without_jax

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name == "IPython" or (self.without_jax and name.partition(".")[0] == "jax"):
            raise ImportError(f"{name} is not loaded while cnnviz starts Keras")
        if name != "matplotlib.pyplot":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = None if finder is self or find is None else find(name, path, target)
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def installed(package: str) -> bool:
    """Whether ``package`` can be imported here (found without importing it)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def choose_backend() -> str:
    """The Keras backend cnnviz starts, checked before Keras loads: ``KERAS_BACKEND`` where set,
    else the one Keras's config file names if not TensorFlow (Keras writes TensorFlow there by
    default), else TensorFlow where installed, else JAX."""
    requested, source = os.environ.get("KERAS_BACKEND"), "KERAS_BACKEND"
    if requested is None:
        requested, source = _configured_backend(), "Keras's config file keras.json"
        if requested in (None, "tensorflow") and not installed("tensorflow"):
            if not installed("jax"):
                raise CnnvizError("cnnviz needs a Keras backend: pip install "
                                  "'cnnviz[tensorflow]' (any machine) or 'cnnviz[jax]' (GPUs)")
            os.environ["KERAS_BACKEND"] = requested = "jax"
        requested = requested or "tensorflow"
    if requested not in BACKENDS:
        raise CnnvizError(f"unknown Keras backend '{requested}' ({source}): cnnviz runs on "
                          f"{' or '.join(BACKENDS)}")
    if not installed(requested):
        other = next(b for b in BACKENDS if b != requested)
        raise CnnvizError(f"{source} names {requested} but {requested} is not installed: pip "
                          f"install 'cnnviz[{requested}]', or use {other} "
                          f"(KERAS_BACKEND={other})")
    return requested


def _configured_backend() -> str | None:
    """The backend Keras's config file names (``$KERAS_HOME/keras.json``, else
    ``~/.keras/keras.json``), or ``None``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        backend = json.loads(Path(home, "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) else None


@contextmanager
def native_logs_muted() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null meanwhile: the native start-up logs of a
    TensorFlow that loads (they bypass Python and TF_CPP_MIN_LOG_LEVEL) stay off the terminal."""
    saved = _mute_stderr()
    try:
        yield
    finally:
        _restore_stderr(saved)


def _mute_stderr() -> int | None:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return saved
    except OSError:
        return None


def _restore_stderr(saved: int | None) -> None:
    if saved is not None:
        os.dup2(saved, 2)
        os.close(saved)


LossFn = Callable[[Any], tuple[Any, Any]]


def weights_version(model: Any) -> int:
    """A checksum of the model's weights (CRC-32 of their bytes, in order): it changes when
    training or ``set_weights`` changes any of them."""
    import zlib

    import numpy as np

    total = 0
    for weights in model.get_weights():
        total = zlib.crc32(np.ascontiguousarray(weights).tobytes(), total)
    return total


class ModelCache:
    """Compiled functions kept per model (by identity), its weights and key, the oldest dropped
    past ``size``: a second call with the same model and settings does not trace again. The
    weights are part of the key, because a compiled function may hold them as they were when
    it was traced (JAX does): a model trained since gets new functions."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def get(self, model: Any, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The value cached for ``model`` (as its weights are now) and ``key``, built (and kept)
        on a miss."""
        full = (id(model), weights_version(model), *key)
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
    """Compile a pure step function: ``tf.function`` (XLA with ``jit_compile``) or ``jax.jit``.
    A call with argument shapes not seen before (it traces and compiles) counts as the
    ``compile`` phase. TensorFlow traces without AutoGraph: a Keras 3 model runs under JAX too,
    so it has no Python control flow on tensors to convert (and converting took 0.9 s of each
    first step on a 2-core machine)."""
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(step, jit_compile=jit_compile, autograph=False)
    elif name == "jax":
        import jax

        compiled = jax.jit(step)
    else:
        raise CnnvizError(f"the optimization engine supports the tensorflow and jax backends, "
                          f"not {name}")
    seen: set[tuple[Any, ...]] = set()

    def call(*args: Any) -> Any:
        signature = tuple(_signature(a) for a in args)
        if signature in seen:
            return compiled(*args)
        with phase("compile"):
            result = compiled(*args)
        seen.add(signature)
        return result

    return call


def _signature(value: Any) -> Any:
    """What makes a compiled function trace again: an array's shape and dtype, a list's items,
    a Python value itself."""
    if isinstance(value, (list, tuple)):
        return tuple(_signature(v) for v in value)
    shape = getattr(value, "shape", None)
    if shape is not None:
        return tuple(shape), str(getattr(value, "dtype", ""))
    return value if isinstance(value, (int, float, str, bool, type(None))) else type(value)
