"""``train``: the reference CNN trained and saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnviz.data import load_dataset
from cnnviz.errors import CnnvizError
from cnnviz.fileio import check_writable, refuse_overwrite
from cnnviz.jobs.common import Outcome

TrainProgressFn = Callable[[int, int, int, dict[str, float]], None]


def train_job(out: Path, *, data: str = "bundled", conv: list[int] | None = None,
              pool_after: list[int] | None = None, dense: list[int] | None = None,
              epochs: int = 5, batch_size: int = 64, n_train: int | None = None,
              force: bool = False, progress: TrainProgressFn | None = None,
              **fit: Any) -> Outcome:
    """``cnnviz train``: build the reference CNN, train it (``fit``: learning rate, momentum,
    schedule, decay, l1, l2, seed), save it."""
    from cnnviz.train import build_cnn, learning_rate_schedule, save_model, train

    if out.suffix.lower() not in (".keras", ".h5"):
        raise CnnvizError(f"--out must end in .keras or .h5, got {out.name}")
    refuse_overwrite(out, force)
    check_writable(out.parent)  # before minutes of training, not after
    learning_rate_schedule(fit.get("schedule", "inverse_time"))  # checked before data loads
    dataset = load_dataset(data)
    x = dataset.x_train
    model = build_cnn(conv or [32, 64, 128], pool_after or [1, 2], dense or [120],
                      n_classes=len(dataset.class_names),
                      input_shape=(*x.shape[1:3], 1 if x.ndim == 3 else x.shape[3]),
                      l2=fit.get("l2", 5e-4), l1=fit.get("l1", 0.0), seed=fit.get("seed", 0))
    n = len(x) if n_train is None else min(n_train, len(x))
    steps = -(-n // max(batch_size, 1))  # train() refuses a batch size < 1 itself
    result = train(dataset, model=model, epochs=epochs, batch_size=batch_size, n_train=n_train,
                   on_progress=None if progress is None else
                   (lambda epoch, step, logs: progress(epoch, step, steps, logs)), **fit)
    save_model(result.model, out)
    return Outcome([out], [f"test accuracy {result.test_accuracy:.4f} (loss "
                           f"{result.test_loss:.4f}) on {len(dataset.x_test)} {dataset.name} "
                           f"test images; wrote {out}"])
