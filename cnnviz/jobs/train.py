"""``train``: the reference CNN trained and saved, with its history and curves beside it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnviz.core.errors import CnnvizError
from cnnviz.core.fileio import check_writable, refuse_overwrite, write_text
from cnnviz.data import images_to_model_input, load_dataset
from cnnviz.jobs.common import Outcome
from cnnviz.jobs.evolution import evolution_job
from cnnviz.model.facts import get_layer
from cnnviz.render.grids import save_png
from cnnviz.render.history import history_figure, history_png
from cnnviz.render.page import write_page

TrainProgressFn = Callable[[int, int, int, dict[str, float]], None]


def history_paths(out: Path) -> dict[str, Path]:
    """Where the history of the model saved at ``out`` goes: ``NAME.history.json``, ``.png``
    and ``.html`` beside it."""
    return {kind: out.with_name(f"{out.stem}.history.{kind}") for kind in ("json", "png", "html")}


def parse_validation(value: str | float | None) -> float | str | None:
    """``--validation``: a fraction of the training images, ``test`` or ``none``."""
    if value is None or value in ("none", "0", 0):
        return None
    if value == "test":
        return "test"
    try:
        fraction = float(value)
    except ValueError:
        raise CnnvizError(f"--validation takes a fraction (0.1), 'test' or 'none', got "
                          f"'{value}'") from None
    if not 0 < fraction < 1:
        raise CnnvizError(f"--validation takes a fraction between 0 and 1, got {fraction}")
    return fraction


def train_job(out: Path, *, data: str = "bundled", conv: list[int] | None = None,
              pool_after: list[int] | None = None, dense: list[int] | None = None,
              epochs: int = 5, batch_size: int = 64, n_train: int | None = None,
              force: bool = False, progress: TrainProgressFn | None = None,
              validation: float | str | None = 0.1, standardize: bool = False,
              snapshots: list[str] | None = None, snapshot_every: int = 1,
              snapshot_steps: int = 50, **fit: Any) -> Outcome:
    """``cnnviz train``: build the reference CNN (standardizing each pixel with
    ``standardize``), train it (``fit``: learning rate, momentum, schedule, decay, l1, l2,
    seed) holding out ``validation``, save it and its history (JSON, PNG and HTML curves).
    While it trains, the last finished epoch and the best one are kept beside the model
    (:class:`~cnnviz.training.train.Checkpoint`): Ctrl-C keeps them, and :func:`resume_train_job`
    continues. With ``snapshots`` (layer names), the patterns of those layers' filters and the
    maps of one test image per class are kept every ``snapshot_every`` epochs in
    ``NAME.snapshots/`` beside the model, with a page that plays them (:func:`evolution_job`)."""
    from cnnviz.training.train import Checkpoint, learning_rate_schedule

    settings = {"data": data, "conv": conv, "pool_after": pool_after, "dense": dense,
                "epochs": epochs, "batch_size": batch_size, "n_train": n_train,
                "validation": validation, "standardize": standardize, "snapshots": snapshots,
                "snapshot_every": snapshot_every, "snapshot_steps": snapshot_steps, "fit": fit}
    checkpoint = Checkpoint(out, settings)
    _check_target(out, force, snapshots, checkpoint)
    learning_rate_schedule(fit.get("schedule", "inverse_time"), fit.get("learning_rate", 1e-3),
                           fit.get("decay_steps"), fit.get("decay_rate"))  # before data loads
    return _train_run(out, checkpoint, progress)


def resume_train_job(out: Path, progress: TrainProgressFn | None = None) -> Outcome:
    """``cnnviz train --resume``: continue the run that stopped while training ``out`` from its
    last finished epoch, with the settings it was started with."""
    from cnnviz.training.train import Checkpoint

    checkpoint = Checkpoint(out)
    if not checkpoint.exists():
        raise CnnvizError(f"nothing to resume: no {checkpoint.state.name} beside {out.name} "
                          "(a run keeps one while it trains)")
    checkpoint.settings = checkpoint.read()["settings"]
    if checkpoint.settings.get("snapshots"):
        raise CnnvizError("a run that kept --snapshots cannot be continued (its snapshots "
                          "would restart): run it again with --force")
    return _train_run(out, checkpoint, progress)


def _check_target(out: Path, force: bool, snapshots: list[str] | None, checkpoint: Any) -> None:
    """Before minutes of training: ``out`` a model file that can be written, nothing of an
    earlier run replaced without ``force`` (which removes an interrupted run's checkpoint)."""
    if out.suffix.lower() not in (".keras", ".h5"):
        raise CnnvizError(f"--out must end in .keras or .h5, got {out.name}")
    if out.is_dir():
        raise CnnvizError(f"{out} is a folder: --out names the model file to write")
    if not force and checkpoint.exists():
        raise CnnvizError(f"{checkpoint.state} holds an interrupted training run: --resume "
                          "continues it, --force starts again")
    folder = out.with_name(f"{out.stem}.snapshots")
    for path in (out, *history_paths(out).values(), *([folder] if snapshots else [])):
        refuse_overwrite(path, force)
    check_writable(out.parent)
    if force:
        checkpoint.remove()


def _check_space(out: Path, model: Any) -> None:
    """Refuse to start when the folder cannot hold the model, its best and last epochs (with
    the optimizer's state) and the history."""
    need = model.count_params() * 4 * 6 + 2**20
    free = shutil.disk_usage(out.parent).free
    if free < need:
        raise CnnvizError(f"{out.parent} has {free / 2**20:.1f} MiB free: the model, its "
                          f"checkpoints and history need about {need / 2**20:.1f} MiB")


def _train_run(out: Path, checkpoint: Any, progress: TrainProgressFn | None) -> Outcome:
    """Train as ``checkpoint.settings`` say (from the last finished epoch where it has one)
    and write the model, its history and snapshots."""
    from cnnviz.training.train import save_model, train

    settings = checkpoint.settings
    fit, epochs, snapshots = settings["fit"], settings["epochs"], settings["snapshots"]
    validation = parse_validation(settings["validation"])
    dataset = load_dataset(settings["data"])
    x = dataset.x_train
    shape = (*x.shape[1:3], 1 if x.ndim == 3 else x.shape[3])
    model = _model(dataset, shape, settings["conv"], settings["pool_after"], settings["dense"],
                   settings["n_train"], validation, settings["standardize"], fit)
    _check_space(out, model)
    folder = out.with_name(f"{out.stem}.snapshots")
    if snapshots:
        for name in snapshots:
            get_layer(model, name)  # a wrong name fails now, not after the first epoch
        if folder.is_dir():  # --force: the old snapshots go
            shutil.rmtree(folder)
    watchers = _watchers(snapshots or [], folder, dataset, shape, model,
                         settings["snapshot_every"], settings["snapshot_steps"],
                         fit.get("seed", 0))
    steps = _steps(len(x), settings["n_train"], validation, settings["batch_size"])
    try:
        result = train(dataset, model=model, epochs=epochs, batch_size=settings["batch_size"],
                       n_train=settings["n_train"], validation=validation, callbacks=watchers,
                       checkpoint=checkpoint, on_progress=None if progress is None else
                       (lambda epoch, step, logs: progress(epoch, step, steps, logs)), **fit)
    except KeyboardInterrupt:
        return _stopped(out, checkpoint, epochs)
    save_model(result.model, out)
    checkpoint.remove()
    written = [out, *_write_history(history_paths(out), result, dataset.title)]
    if watchers:
        for watcher in watchers:
            written += watcher.written
        written += evolution_job(folder, force=True).written
    lines = [f"test accuracy {result.test_accuracy:.4f} (loss {result.test_loss:.4f}) on "
             f"{len(dataset.x_test)} {dataset.title} test images"]
    if "val_accuracy" in result.history:
        best = max(range(epochs), key=lambda e: result.history["val_accuracy"][e])
        lines.append(f"validation on {result.validation}: accuracy "
                     f"{result.history['val_accuracy'][-1]:.4f} after the last epoch, best "
                     f"{result.history['val_accuracy'][best]:.4f} after epoch {best + 1}")
    lines.append(f"wrote {out} and its history: {', '.join(p.name for p in written[1:5])}"
                 + (f"; snapshots in {folder}/ (evolution_*.html plays them)" if watchers
                    else "") + f"; the best epoch in {checkpoint.best.name}")
    written.append(checkpoint.best)
    return Outcome(written, lines)




def _steps(images: int, n_train: int | None, validation: Any, batch_size: int) -> int:
    """Batches an epoch takes."""
    n = images if n_train is None else min(n_train, images)
    if isinstance(validation, float):
        n -= max(1, round(validation * n))
    return -(-n // max(batch_size, 1))  # train() refuses a batch size < 1 itself


def _stopped(out: Path, checkpoint: Any, epochs: int) -> Outcome:
    """What Ctrl-C kept: the last finished epoch, and how to continue."""
    if not checkpoint.exists():
        return Outcome(interrupted="stopped before the first epoch finished: nothing to keep")
    done = int(checkpoint.read().get("epochs", 0))
    return Outcome([checkpoint.model, checkpoint.state], interrupted=(
        f"kept epoch {done} of {epochs} in {checkpoint.model.name} (the best so far in "
        f"{checkpoint.best.name}); cnnviz train --resume --out {out} continues"))


def _write_history(paths: dict[str, Path], result: Any, data: str) -> list[Path]:
    title = (f"training on {data}: test accuracy {result.test_accuracy:.4f}"
             + (f", validation on {result.validation}" if result.validation else ""))
    record = {"epochs": len(result.history.get("loss", [])), **result.history,
              "test_loss": result.test_loss, "test_accuracy": result.test_accuracy,
              "validation": result.validation, "data": data}
    written = [write_text(paths["json"], json.dumps(record, indent=1) + "\n"),
               save_png(history_png(result.history, title), paths["png"])]
    written += write_page(paths["html"], title, [("training curves",
                                                  history_figure(result.history, title))])
    return written


def _watchers(layers: list[str], folder: Path, dataset: Any, shape: tuple[int, ...],
              model: Any, every: int, steps: int, seed: int) -> list[Any]:
    """The snapshot callbacks of ``cnnviz train --snapshots``: each layer's filters, and the
    maps of the first test image of each class."""
    if not layers:
        return []
    import numpy as np

    from cnnviz.core.preprocess import for_model
    from cnnviz.training.callbacks import ActivationSnapshots, FilterSnapshots

    firsts = [int(np.flatnonzero(dataset.y_test == c)[0]) for c in np.unique(dataset.y_test)]
    images = images_to_model_input(dataset.x_test[firsts], shape, for_model(model))
    return [*(FilterSnapshots(name, folder, every=every, steps=steps, seed=seed)
              for name in layers),
            ActivationSnapshots(images, folder, layers=layers, every=every)]


def _model(dataset: Any, shape: tuple[int, ...], conv: list[int] | None,
           pool_after: list[int] | None, dense: list[int] | None, n_train: int | None,
           validation: float | str | None, standardize: bool, fit: dict[str, Any]) -> Any:
    """The reference CNN to train; with ``standardize``, its per-pixel statistics over the
    pixels it trains on, as the model scales them (0..1)."""
    from cnnviz.training.train import build_cnn, standardizing_statistics

    stats = standardizing_statistics(dataset.x_train[:n_train], dataset.y_train[:n_train],
                                     shape, validation, fit.get("seed", 0)) \
        if standardize else None
    return build_cnn(conv or [32, 64, 128], pool_after or [1, 2], dense or [120],
                     n_classes=len(dataset.class_names), input_shape=shape,
                     l2=fit.get("l2", 5e-4), l1=fit.get("l1", 0.0), seed=fit.get("seed", 0),
                     standardize=stats)
