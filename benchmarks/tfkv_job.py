"""The job of ``cnnviz filters --preset classic`` done with tf-keras-vis, as a user would: one
process that loads the reference CNN, synthesizes the optimal input of every filter of
conv2d_3 in one batch (100 steps, RMS-normalized gradient steps of 5 % of the input range, no
input modifiers or regularizers, the layer read before its ReLU) and writes a PNG gallery.

    TF_USE_LEGACY_KERAS=1 python benchmarks/tfkv_job.py OUT_DIR

tf-keras-vis runs on Keras 2 (``pip install tf-keras tf-keras-vis``): the model is rebuilt in
tf.keras from the bundled file's configuration and weights (``model.weights.h5`` in the
``.keras`` zip). Used by ``benchmarks/overhead.py``; never by the tests.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from importlib import resources
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf
from tf_keras_vis.activation_maximization import ActivationMaximization
from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer, ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

LAYER, STEPS, LR = "conv2d_3", 100, 0.05


def reference_cnn() -> tf.keras.Model:
    """The bundled reference CNN, rebuilt in tf.keras with its own weights."""
    path = resources.files("cnnviz") / "assets" / "reference_cnn.keras"
    with zipfile.ZipFile(str(path)) as archive:
        config = json.loads(archive.read("config.json"))["config"]
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        stored = [[np.asarray(weights[f"layers/{name}/vars/{i}"])
                   for i in range(len(weights[f"layers/{name}/vars"]))]
                  for name in weights["layers"] if len(weights[f"layers/{name}/vars"])]
    layers: list[tf.keras.layers.Layer] = []
    for entry in config["layers"]:
        kind, c = entry["class_name"], entry["config"]
        if kind == "InputLayer":
            layers.append(tf.keras.Input(tuple(c["batch_shape"][1:])))
        elif kind == "Rescaling":
            layers.append(tf.keras.layers.Rescaling(c["scale"], c["offset"], name=c["name"]))
        elif kind == "Conv2D":
            layers.append(tf.keras.layers.Conv2D(c["filters"], c["kernel_size"],
                                                 activation=c["activation"], name=c["name"]))
        elif kind == "MaxPooling2D":
            layers.append(tf.keras.layers.MaxPooling2D(c["pool_size"], name=c["name"]))
        elif kind == "Flatten":
            layers.append(tf.keras.layers.Flatten(name=c["name"]))
        elif kind == "Dense":
            layers.append(tf.keras.layers.Dense(c["units"], activation=c["activation"],
                                                name=c["name"]))
    model = tf.keras.Sequential(layers)
    weighted = [layer for layer in model.layers if layer.weights]
    for layer, values in zip(weighted, stored, strict=True):  # the file lists them in order
        layer.set_weights(values)
    return model


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    model = reference_cnn()
    filters = model.get_layer(LAYER).filters
    visualize = ActivationMaximization(model, model_modifier=[
        ExtractIntermediateLayer(LAYER), ReplaceToLinear()], clone=True)
    seed = np.random.default_rng(0).uniform(96, 160, (filters, 28, 28, 1)).astype(np.float32)

    def rms_normalized(grads: tf.Tensor) -> tf.Tensor:
        rms = tf.sqrt(tf.reduce_mean(tf.square(grads), axis=(1, 2, 3), keepdims=True))
        return grads / (rms + 1e-12)

    images = visualize(CategoricalScore(list(range(filters))), seed_input=seed,
                       input_range=(0, 255), input_modifiers=[], regularizers=[], steps=STEPS,
                       optimizer=tf.keras.optimizers.SGD(LR * 255), training=False,
                       gradient_modifier=rms_normalized)
    from matplotlib.figure import Figure

    columns = 16
    rows = -(-filters // columns)
    mosaic = np.full((rows * 30, columns * 30), 255.0)
    for i, image in enumerate(np.asarray(images)[..., 0]):
        top, left = (i // columns) * 30, (i % columns) * 30
        mosaic[top:top + 28, left:left + 28] = image
    figure = Figure(figsize=(columns, rows))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(mosaic, cmap="gray", vmin=0, vmax=255)
    axes.set_axis_off()
    figure.savefig(out / "filters.png", dpi=110)
    np.savez(out / "filters.npz", images=np.asarray(images))


if __name__ == "__main__":
    main()
