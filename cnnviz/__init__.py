"""cnnviz: see what a trained Keras CNN has learned.

The Python API mirrors the command line: ``cnnviz.activations(model, images)`` is what
``cnnviz activations`` computes, and :mod:`cnnviz.jobs` holds what each command does as one
call. ``cnnviz.load`` gives model facts (the model and how it wants its pixels) that every
computation takes; a plain Keras model works too. Importing cnnviz does not import TensorFlow;
the first call that needs Keras does. Figures for notebooks are in ``cnnviz.plot``
(:mod:`cnnviz.render.plot`).
"""

from typing import TYPE_CHECKING

from cnnviz.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names below are imported on first use: importing cnnviz stays fast
    from cnnviz.attribution import (
        GradCAM,
        GradCAMPlusPlus,
        IntegratedGradients,
        LayerCAM,
        Saliency,
        SmoothGrad,
        explain,
    )
    from cnnviz.core.errors import CnnvizError
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
    from cnnviz.maps.activations import activations, channel_means, top_examples
    from cnnviz.maps.patterns import class_patterns
    from cnnviz.model.facts import (
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
    from cnnviz.model.graph import feature_model
    from cnnviz.model.receptive import receptive_field, receptive_fields
    from cnnviz.oip.filters import resume_filters, visualize_filters
    from cnnviz.oip.presets import preset
    from cnnviz.oip.settings import Settings
    from cnnviz.results import Activations, Attributions, ClassPatterns, FilterResult, Meta, merge
    from cnnviz.training.train import build_cnn, learning_rate_schedule, save_model, train
    from cnnviz.version import __version__

_WHERE = {
    "__version__": "cnnviz.version",
    "activations": "cnnviz.maps.activations",
    "Activations": "cnnviz.results",
    "as_facts": "cnnviz.model.facts",
    "Attributions": "cnnviz.results",
    "build_cnn": "cnnviz.training.train",
    "channel_means": "cnnviz.maps.activations",
    "class_patterns": "cnnviz.maps.patterns",
    "ClassPatterns": "cnnviz.results",
    "CnnvizError": "cnnviz.core.errors",
    "conv_kernels": "cnnviz.model.facts",
    "Dataset": "cnnviz.data",
    "default_layer": "cnnviz.model.facts",
    "explain": "cnnviz.attribution",
    "feature_model": "cnnviz.model.graph",
    "FilterResult": "cnnviz.results",
    "get_layer": "cnnviz.model.facts",
    "GradCAM": "cnnviz.attribution",
    "GradCAMPlusPlus": "cnnviz.attribution",
    "images_to_model_input": "cnnviz.data",
    "input_range": "cnnviz.model.facts",
    "IntegratedGradients": "cnnviz.attribution",
    "LayerCAM": "cnnviz.attribution",
    "LayerInfo": "cnnviz.model.facts",
    "learning_rate_schedule": "cnnviz.training.train",
    "list_layers": "cnnviz.model.facts",
    "load": "cnnviz.model.facts",
    "load_dataset": "cnnviz.data",
    "load_fashion_mnist": "cnnviz.data",
    "load_mnist": "cnnviz.data",
    "load_model": "cnnviz.model.facts",
    "map_layers": "cnnviz.model.facts",
    "merge": "cnnviz.results",
    "Meta": "cnnviz.results",
    "ModelFacts": "cnnviz.model.facts",
    "preset": "cnnviz.oip.presets",
    "read_image": "cnnviz.data",
    "receptive_field": "cnnviz.model.receptive",
    "receptive_fields": "cnnviz.model.receptive",
    "reference_model_path": "cnnviz.model.facts",
    "resume_filters": "cnnviz.oip.filters",
    "Saliency": "cnnviz.attribution",
    "save_model": "cnnviz.training.train",
    "select_input": "cnnviz.data.inputs",
    "Settings": "cnnviz.oip.settings",
    "SmoothGrad": "cnnviz.attribution",
    "to_model_input": "cnnviz.data",
    "top_examples": "cnnviz.maps.activations",
    "train": "cnnviz.training.train",
    "visualize_filters": "cnnviz.oip.filters",
}


# Modules a user reaches from the front door: ``cnnviz.plot.filters(result)``,
# ``cnnviz.callbacks.FilterSnapshots``, ``cnnviz.metrics.evaluate``, ``cnnviz.tables.ATTRIBUTIONS``.
_MODULES = {
    "callbacks": "cnnviz.training.callbacks",
    "jobs": "cnnviz.jobs",
    "metrics": "cnnviz.attribution.metrics",
    "plot": "cnnviz.render.plot",
    "tables": "cnnviz.core.tables",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, _MODULES)


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
