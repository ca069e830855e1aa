"""cnnviz: see what a trained Keras CNN has learned.

The Python API mirrors the command line: ``cnnviz.activations(model, images)`` is what
``cnnviz activations`` computes, and :mod:`cnnviz.jobs` holds what each command does as one
call. ``cnnviz.load`` gives model facts (the model and how it wants its pixels) that every
computation takes; a plain Keras model works too. Importing cnnviz does not import TensorFlow;
the first call that needs Keras does. Figures for notebooks are in :mod:`cnnviz.plot`.
"""

from cnnviz.activations import activations, channel_means, class_patterns, top_examples
from cnnviz.attribution import (
    GradCAM,
    GradCAMPlusPlus,
    IntegratedGradients,
    LayerCAM,
    Saliency,
    SmoothGrad,
    explain,
)
from cnnviz.data import (
    Dataset,
    images_to_model_input,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    read_image,
    to_model_input,
)
from cnnviz.errors import CnnvizError
from cnnviz.graph import feature_model
from cnnviz.inputs import select_input
from cnnviz.models import (
    LayerInfo,
    ModelFacts,
    as_facts,
    conv_kernels,
    default_layer,
    get_layer,
    input_range,
    list_layers,
    load,
    load_model,
    map_layers,
    reference_model_path,
)
from cnnviz.oip.filters import resume_filters, visualize_filters
from cnnviz.oip.presets import preset
from cnnviz.oip.settings import Settings
from cnnviz.receptive import receptive_field, receptive_fields
from cnnviz.results import Activations, Attributions, ClassPatterns, FilterResult, Meta, merge
from cnnviz.train import build_cnn, learning_rate_schedule, save_model, train
from cnnviz.version import __version__

__all__ = [
    "Activations", "Attributions", "ClassPatterns", "CnnvizError", "Dataset", "FilterResult",
    "GradCAM", "GradCAMPlusPlus", "IntegratedGradients", "LayerCAM", "LayerInfo", "Meta",
    "ModelFacts", "Saliency", "Settings", "SmoothGrad", "__version__", "activations", "as_facts",
    "build_cnn", "channel_means", "class_patterns", "conv_kernels", "default_layer", "explain",
    "feature_model", "get_layer", "images_to_model_input", "input_range",
    "learning_rate_schedule", "list_layers", "load", "load_dataset", "load_fashion_mnist",
    "load_mnist", "load_model", "map_layers", "merge", "preset", "read_image",
    "receptive_field", "receptive_fields", "reference_model_path", "resume_filters",
    "save_model", "select_input", "to_model_input", "top_examples", "train",
    "visualize_filters",
]
