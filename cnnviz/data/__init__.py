"""Data: one idea of it — a :class:`Source` of images with optional labels, class names and
splits, read in batches — and everything that makes one.

- :mod:`~cnnviz.data.readers`: the Source and its kinds (arrays, image folders, iterables);
- :mod:`~cnnviz.data.formats`: data sets with splits (the bundled MNIST sample, keras.datasets,
  Fashion-MNIST, a user's ``.npz``);
- :mod:`~cnnviz.data.images`: image files and pixels, converted to a model's input;
- :mod:`~cnnviz.data.sources`: the one reader of data specs (:func:`open_source`), the one
  default rule (:func:`data_for`), model inputs in batches, shards;
- :mod:`~cnnviz.data.inputs`: the one input a command explains (:func:`select_input`).

Names are imported from their module on first use.
"""

from cnnviz.core.lazy import lazy_exports

_WHERE = {
    "ArraySource": "cnnviz.data.readers",
    "as_source": "cnnviz.data.sources",
    "Batch": "cnnviz.data.readers",
    "bundled_fits": "cnnviz.data.sources",
    "checked_labels": "cnnviz.data.labels",
    "converted": "cnnviz.data.sources",
    "data_for": "cnnviz.data.sources",
    "Dataset": "cnnviz.data.formats",
    "decode": "cnnviz.data.images",
    "DIGITS": "cnnviz.data.formats",
    "FASHION_CLASSES": "cnnviz.data.formats",
    "FASHION_MNIST_DIR": "cnnviz.data.formats",
    "FolderSource": "cnnviz.data.readers",
    "IMAGE_SUFFIXES": "cnnviz.data.readers",
    "images_to_model_input": "cnnviz.data.images",
    "InputChoice": "cnnviz.data.inputs",
    "IterableSource": "cnnviz.data.readers",
    "load_dataset": "cnnviz.data.formats",
    "load_fashion_mnist": "cnnviz.data.formats",
    "load_mnist": "cnnviz.data.formats",
    "load_npz_dataset": "cnnviz.data.formats",
    "MAX_CLASSES": "cnnviz.data.labels",
    "MAX_MEGAPIXELS": "cnnviz.data.images",
    "MIN_SIDE": "cnnviz.data.images",
    "MNIST_SAMPLE": "cnnviz.data.formats",
    "model_inputs": "cnnviz.data.sources",
    "no_data_note": "cnnviz.data.sources",
    "open_source": "cnnviz.data.sources",
    "pick_digit": "cnnviz.data.inputs",
    "pil_pixels": "cnnviz.data.images",
    "prefetched": "cnnviz.data.readers",
    "read_idx": "cnnviz.data.formats",
    "read_image": "cnnviz.data.images",
    "select_input": "cnnviz.data.inputs",
    "Shape": "cnnviz.data.readers",
    "shard": "cnnviz.data.sources",
    "Source": "cnnviz.data.readers",
    "tf_batches": "cnnviz.data.readers",
    "tf_decodes": "cnnviz.data.readers",
    "TF_SUFFIXES": "cnnviz.data.readers",
    "tfds_source": "cnnviz.data.sources",
    "to_model_input": "cnnviz.data.images",
    "to_unit_range": "cnnviz.data.images",
    "UNIT": "cnnviz.data.readers",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
__all__ = sorted(_WHERE)
