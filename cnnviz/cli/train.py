"""``train``: the reference CNN of the seed blog, trained and saved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cnnviz.cli.common import (
    ForceOpt,
    StandaloneOpt,
    err_console,
    ints,
    out_option,
    show,
    split,
    stop_live,
)
from cnnviz.core import tables

ARCH = "Architecture"
FIT = "Training"
WATCH = "Watching it learn"


def train(
    out: Annotated[Path, out_option(
        "cnnviz-out/reference_cnn.keras", "Where to save the model (.keras or .h5).",
        numbered=False)] = Path("cnnviz-out/reference_cnn.keras"),
    data: Annotated[str, typer.Option(
        metavar="[bundled|keras|fashion|FILE.npz]", rich_help_panel=FIT,
        help="bundled MNIST sample, full MNIST (keras.datasets, online), Fashion-MNIST "
             "(Debian's IDX files) or an .npz with x_train/y_train/x_test/y_test.")]
        = "bundled",
    conv: Annotated[str, typer.Option(help="Filters of each conv layer.",
                                      rich_help_panel=ARCH)] = "32,64,128",
    pool_after: Annotated[str, typer.Option(help="Max-pool after these conv layers (1-based).",
                                            rich_help_panel=ARCH)] = "1,2",
    dense: Annotated[str, typer.Option(help="Units of each hidden dense layer.",
                                       rich_help_panel=ARCH)] = "120",
    l2: Annotated[float, typer.Option(help="L2 penalty on the dense layers.",
                                      rich_help_panel=ARCH)] = 5e-4,
    l1: Annotated[float, typer.Option(help="L1 penalty on the dense layers.",
                                      rich_help_panel=ARCH)] = 0.0,
    epochs: Annotated[int, typer.Option(help="Passes over the training images.",
                                        rich_help_panel=FIT)] = 5,
    batch_size: Annotated[int, typer.Option(help="Images per step.", rich_help_panel=FIT)] = 64,
    lr: Annotated[float, typer.Option(help="Initial learning rate.", rich_help_panel=FIT)]
        = 1e-3,
    momentum: Annotated[float, typer.Option(help="RMSprop momentum.", rich_help_panel=FIT)]
        = 0.5,
    schedule: Annotated[str, typer.Option(
        metavar=tables.SCHEDULES.metavar(), rich_help_panel=FIT,
        help="Learning-rate schedule: inverse_time (InverseTimeDecay, lr / (1 + rate·step / "
             "steps)) or exponential (ExponentialDecay, lr · rate^(step / steps)).")]
        = "inverse_time",
    decay_steps: Annotated[int | None, typer.Option(
        help="Steps over which the rate decays by --decay-rate.", rich_help_panel=FIT,
        show_default="inverse_time: 1 (the seed blog's rates); exponential: 1000")] = None,
    decay_rate: Annotated[float | None, typer.Option(
        help="Decay of the learning rate.", rich_help_panel=FIT,
        show_default="inverse_time: 0.001; exponential: 0.5")] = None,
    validation: Annotated[str, typer.Option(
        metavar=tables.HOLD_OUTS.metavar("FRACTION"), rich_help_panel=FIT,
        help="Hold out this fraction of the training images to validate on after each "
             "epoch, or validate on the test split, or not at all.")] = "0.1",
    snapshots: Annotated[str | None, typer.Option(
        metavar="LAYER[,LAYER]", rich_help_panel=WATCH, show_default="none",
        help="Keep these layers' optimal input patterns (and the maps of one test image per "
             "class) while training, in NAME.snapshots/ beside the model, with a page that "
             "plays them across the epochs.")] = None,
    snapshot_every: Annotated[int, typer.Option(help="Epochs between snapshots.",
                                                rich_help_panel=WATCH)] = 1,
    snapshot_steps: Annotated[int, typer.Option(help="Ascent steps of a snapshot's patterns.",
                                                rich_help_panel=WATCH)] = 50,
    standardize: Annotated[bool, typer.Option(
        "--standardize", rich_help_panel=ARCH,
        help="Standardize each pixel by its mean and spread over the training images "
             "(StandardScaler), inside the model: every command preprocesses the same way.")]
        = False,
    n_train: Annotated[int | None, typer.Option(help="Use only the first N training images.",
                                                rich_help_panel=FIT, show_default="all")]
        = None,
    seed: Annotated[int, typer.Option(help="Seed of the initial weights and the shuffling.",
                                      rich_help_panel=FIT)] = 0,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run that stopped while training --out, from its last "
                         "finished epoch, with the settings it was started with.")] = False,
    force: ForceOpt = False,
) -> None:
    """Train the reference CNN (RMSprop with momentum, a learning-rate schedule, L2) and save it.
    The last finished epoch and the best one are kept beside the model while it trains:
    Ctrl-C keeps them, and --resume continues."""
    from cnnviz.jobs import resume_train_job, train_job

    if resume:
        from cnnviz.training.train import Checkpoint

        with _EpochBars(Checkpoint(out).planned_epochs() or epochs) as bars:
            outcome = resume_train_job(out, progress=bars.update)
        show(outcome)
        return
    with _EpochBars(epochs) as bars:
        outcome = train_job(out, data=data, conv=ints(conv, "--conv"),
                            pool_after=ints(pool_after, "--pool-after"),
                            dense=ints(dense, "--dense"), epochs=epochs, batch_size=batch_size,
                            n_train=n_train, force=force, progress=bars.update,
                            learning_rate=lr, momentum=momentum, schedule=schedule,
                            decay_steps=decay_steps, decay_rate=decay_rate, l2=l2, l1=l1,
                            seed=seed, validation=validation, standardize=standardize,
                            snapshots=split(snapshots), snapshot_every=snapshot_every,
                            snapshot_steps=snapshot_steps)
    show(outcome)


def evolution(
    folder: Annotated[Path, typer.Argument(
        help="A snapshots folder (cnnviz train --snapshots writes NAME.snapshots/ beside the "
             "model; cnnviz.callbacks.FilterSnapshots writes its out folder).")],
    standalone: StandaloneOpt = False,
    force: ForceOpt = False,
) -> None:
    """How filters developed during training: a page per layer that plays its patterns
    across the epochs with a slider, and a PNG of its first filters across training."""
    from cnnviz.jobs import evolution_job

    show(evolution_job(folder, force=force, standalone=standalone))


class _EpochBars:
    """One rich progress bar per epoch showing loss, accuracy and the current learning rate."""

    def __init__(self, epochs: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.epochs, self.epoch = epochs, -1
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[metrics]}"), console=err_console)

    def __enter__(self) -> _EpochBars:
        stop_live()  # these bars say what training does
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, epoch: int, step: int, steps: int, logs: dict[str, Any]) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.task = self.progress.add_task("train", total=steps, epoch=epoch + 1,
                                               epochs=self.epochs, metrics="")
        metrics = (f"loss {logs.get('loss', float('nan')):.4f}  "
                   f"acc {logs.get('accuracy', float('nan')):.4f}  lr {logs['lr']:.2e}")
        self.progress.update(self.task, completed=step, metrics=metrics)
