"""Keras callbacks that watch a CNN learn: :class:`FilterSnapshots` keeps the optimal input
patterns of a layer's filters every few epochs, :class:`ActivationSnapshots` the maps of fixed
inputs. Each snapshot is a result file and a PNG under ``out`` (``epoch_0000`` is the
untrained model, taken when training begins); :func:`cnnviz.jobs.evolution_job` turns the
filter snapshots into a page that plays them across epochs. With ``log_dir`` and TensorFlow,
each snapshot's PNG is also written as a TensorBoard image summary (when TensorBoard is
installed).

    model.fit(x, y, epochs=20, callbacks=[FilterSnapshots("conv2d_1", "snapshots")])
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.backend import backend_name, keras
from cnnviz.core.errors import CnnvizError
from cnnviz.core.text import file_stem
from cnnviz.maps.activations import activations
from cnnviz.model.facts import as_facts, get_layer
from cnnviz.oip.filters import visualize_filters
from cnnviz.oip.presets import preset
from cnnviz.render import grids, sheet


def snapshot_name(epoch: int) -> str:
    """The file stem of the snapshot after ``epoch`` epochs."""
    return f"epoch_{epoch:04d}"


class _Snapshots(keras().callbacks.Callback):  # importing this module starts Keras
    """What both callbacks share: when to take a snapshot, where it goes, TensorBoard."""

    def __init__(self, out: str | Path, every: int, log_dir: str | Path | None) -> None:
        super().__init__()
        if every <= 0:
            raise CnnvizError(f"snapshots are taken every N epochs, N ≥ 1; got {every}")
        self.out, self.every, self.log_dir = Path(out), every, log_dir
        self.written: list[Path] = []
        self._writer: Any = None

    def due(self, epoch: int) -> bool:
        """Whether the snapshot after ``epoch`` (1-based) epochs is taken."""
        return epoch % self.every == 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.take(0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.due(epoch + 1):
            self.take(epoch + 1)

    def take(self, epoch: int) -> Any:
        """The snapshot of the model as it is after ``epoch`` epochs (each callback's own)."""
        raise NotImplementedError

    def summary(self, tag: str, png: Path, epoch: int) -> None:
        """The PNG as a TensorBoard image at ``epoch`` (where TensorFlow and TensorBoard
        are installed)."""
        if self.log_dir is None or backend_name() != "tensorflow" \
                or importlib.util.find_spec("tensorboard") is None:
            return
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        image = tf.io.decode_png(png.read_bytes(), channels=4)[None]
        with self._writer.as_default():
            tf.summary.image(tag, image, step=epoch)
        self._writer.flush()


class FilterSnapshots(_Snapshots):
    """Every ``every`` epochs (and before training), the optimal input patterns of ``filters``
    (default: all) of ``layer`` with the default preset and ``steps`` ascent steps, saved as
    ``out/<layer>/epoch_NNNN.npz`` (a :class:`~cnnviz.results.FilterResult`) and ``.png``."""

    def __init__(self, layer: str, out: str | Path = "snapshots", *, every: int = 1,
                 steps: int = 50, filters: list[int] | None = None, seed: int = 0,
                 log_dir: str | Path | None = None) -> None:
        super().__init__(out, every, log_dir)
        self.layer, self.steps, self.filters, self.seed = layer, steps, filters, seed
        self.folder = self.out / file_stem(layer)

    def take(self, epoch: int) -> Path:
        """The snapshot of the model as it is after ``epoch`` epochs; returns its PNG."""
        facts = as_facts(self.model)
        shape = tuple(facts.model.inputs[0].shape[1:])
        settings = preset("default", facts, self.layer, shape, seed=self.seed,
                          steps=self.steps)
        result = visualize_filters(facts, self.layer, self.filters, settings)
        result.params = {**result.params, "epoch": epoch}
        stem = self.folder / snapshot_name(epoch)
        self.written += result.save(stem.with_suffix(".npz"))
        shown = result.meta.display(result.patterns())
        labels = [f"{f}: {v:.2f}" for f, v in zip(result.filters, result.output, strict=True)]
        png = grids.save_png(sheet.image_gallery(
            shown, labels, value_range=(0.0, 1.0),
            title=f"{self.layer} after {epoch} epoch{'s' if epoch != 1 else ''}"),
            stem.with_suffix(".png"))
        self.written.append(png)
        self.summary(f"filters/{self.layer}", png, epoch)
        return png


class ActivationSnapshots(_Snapshots):
    """Every ``every`` epochs (and before training), the maps of ``layers`` (default: every
    conv and pooling layer) for fixed model-ready ``images``, saved as
    ``out/activations/epoch_NNNN.npz`` (:class:`~cnnviz.results.Activations`) and, for the
    first image, one PNG grid per layer (``epoch_NNNN_<layer>.png``)."""

    def __init__(self, images: np.ndarray, out: str | Path = "snapshots", *,
                 layers: list[str] | None = None, every: int = 1,
                 log_dir: str | Path | None = None) -> None:
        super().__init__(out, every, log_dir)
        self.images = np.asarray(images, np.float32)
        if self.images.ndim != 4 or not len(self.images):
            raise CnnvizError(f"snapshot images must be model-ready (N, H, W, C), got shape "
                              f"{self.images.shape}")
        self.layers = layers
        self.folder = self.out / "activations"

    def take(self, epoch: int) -> list[Path]:
        """The maps of the model as it is after ``epoch`` epochs; returns the PNGs."""
        if self.layers is not None:
            for name in self.layers:
                get_layer(self.model, name)
        result = activations(as_facts(self.model), self.images, self.layers,
                             data=f"after {epoch} epochs")
        stem = self.folder / snapshot_name(epoch)
        self.written += result.save(stem.with_suffix(".npz"))
        pngs = []
        for name in result.layers:
            png = grids.save_png(grids.map_grid(
                result.maps[name][0], title=f"{name} after {epoch} epochs"),
                self.folder / f"{snapshot_name(epoch)}_{file_stem(name)}.png")
            self.summary(f"activations/{name}", png, epoch)
            pngs.append(png)
        self.written += pngs
        return pngs
