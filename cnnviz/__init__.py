"""cnnviz: see what a trained Keras CNN has learned.

The Python API mirrors the command line: ``cnnviz.activations(model, images)`` is what
``cnnviz activations`` computes, and :mod:`cnnviz.jobs` holds what each command does as one
call. ``cnnviz.load`` gives model facts (the model and how it wants its pixels) that every
computation takes; a plain Keras model works too. Importing cnnviz does not import TensorFlow;
the first call that needs Keras does. Figures for notebooks are in :mod:`cnnviz.plot`.
"""

import sys
import types
from typing import TYPE_CHECKING, Any

from cnnviz.lazy import lazy_exports

if TYPE_CHECKING:  # the names below are imported on first use: importing cnnviz stays fast
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
    from cnnviz.data.inputs import select_input
    from cnnviz.errors import CnnvizError
    from cnnviz.graph import feature_model
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

_WHERE = {
    "__version__": "cnnviz.version",
    "activations": "cnnviz.activations",
    "Activations": "cnnviz.results",
    "as_facts": "cnnviz.models",
    "Attributions": "cnnviz.results",
    "build_cnn": "cnnviz.train",
    "channel_means": "cnnviz.activations",
    "class_patterns": "cnnviz.activations",
    "ClassPatterns": "cnnviz.results",
    "CnnvizError": "cnnviz.errors",
    "conv_kernels": "cnnviz.models",
    "Dataset": "cnnviz.data",
    "default_layer": "cnnviz.models",
    "explain": "cnnviz.attribution",
    "feature_model": "cnnviz.graph",
    "FilterResult": "cnnviz.results",
    "get_layer": "cnnviz.models",
    "GradCAM": "cnnviz.attribution",
    "GradCAMPlusPlus": "cnnviz.attribution",
    "images_to_model_input": "cnnviz.data",
    "input_range": "cnnviz.models",
    "IntegratedGradients": "cnnviz.attribution",
    "LayerCAM": "cnnviz.attribution",
    "LayerInfo": "cnnviz.models",
    "learning_rate_schedule": "cnnviz.train",
    "list_layers": "cnnviz.models",
    "load": "cnnviz.models",
    "load_dataset": "cnnviz.data",
    "load_fashion_mnist": "cnnviz.data",
    "load_mnist": "cnnviz.data",
    "load_model": "cnnviz.models",
    "map_layers": "cnnviz.models",
    "merge": "cnnviz.results",
    "Meta": "cnnviz.results",
    "ModelFacts": "cnnviz.models",
    "preset": "cnnviz.oip.presets",
    "read_image": "cnnviz.data",
    "receptive_field": "cnnviz.receptive",
    "receptive_fields": "cnnviz.receptive",
    "reference_model_path": "cnnviz.models",
    "resume_filters": "cnnviz.oip.filters",
    "Saliency": "cnnviz.attribution",
    "save_model": "cnnviz.train",
    "select_input": "cnnviz.data.inputs",
    "Settings": "cnnviz.oip.settings",
    "SmoothGrad": "cnnviz.attribution",
    "to_model_input": "cnnviz.data",
    "top_examples": "cnnviz.activations",
    "train": "cnnviz.train",
    "visualize_filters": "cnnviz.oip.filters",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)


class _Package(types.ModuleType):
    """``cnnviz.activations`` and ``cnnviz.train`` are the functions, as the API says, even
    after their modules of the same name were imported (which binds the modules here)."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name in ("activations", "train") and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        return value


sys.modules[__name__].__class__ = _Package


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
