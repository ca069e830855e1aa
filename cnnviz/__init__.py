"""cnnviz: see what a trained Keras CNN has learned.

The Python API mirrors the command line: ``cnnviz.activations(model, images)`` is what
``cnnviz activations`` runs. Importing cnnviz does not import TensorFlow; the first call that
needs Keras does.
"""

from cnnviz.activations import (
    Activations,
    ClassPatterns,
    activations,
    channel_means,
    class_patterns,
    top_examples,
)
from cnnviz.attribution import (
    GradCAM,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    explain,
)
from cnnviz.data import (
    Dataset,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    read_image,
    select_input,
    to_model_input,
)
from cnnviz.errors import CnnvizError
from cnnviz.models import (
    LayerInfo,
    feature_model,
    get_layer,
    input_range,
    list_layers,
    load_model,
    map_layers,
    reference_model_path,
)
from cnnviz.oip.optimize import Settings, visualize_filters
from cnnviz.oip.results import FilterResult
from cnnviz.train import build_cnn, learning_rate_schedule, save_model, train

__version__ = "0.1.0"

__all__ = [
    "Activations", "ClassPatterns", "CnnvizError", "Dataset", "FilterResult", "GradCAM",
    "IntegratedGradients", "LayerInfo", "Saliency", "Settings", "SmoothGrad", "activations",
    "build_cnn", "channel_means",
    "class_patterns", "explain", "feature_model", "get_layer", "input_range",
    "learning_rate_schedule", "list_layers", "load_dataset", "load_fashion_mnist", "load_mnist",
    "load_model", "map_layers", "read_image", "reference_model_path", "save_model",
    "select_input", "to_model_input", "top_examples", "train", "visualize_filters",
]

