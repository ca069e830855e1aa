"""One table per extension point: every name a user can choose, with its factory (imported on
first use, so that reading a table loads nothing heavy), its traits and a line of help. The
library's checks and dispatch, the CLI's choices and help and the explorer's menus read these
tables; a new attribution method or objective is its own module plus one row here."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cnnviz.core.errors import CnnvizError


@dataclass(frozen=True)
class Entry:
    """One choice: its ``name``, where its factory lives (``"module:attribute"``, or ``""``
    for a choice that is only a name), a line of ``help`` and its ``traits``."""

    name: str
    factory: str = ""
    help: str = ""
    traits: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The factory itself (imports its module)."""
        if not self.factory:
            raise CnnvizError(f"'{self.name}' has no factory")
        module, _, attribute = self.factory.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __getattr__(self, trait: str) -> Any:
        traits = self.__dict__.get("traits", {})
        if trait in traits:
            return traits[trait]
        raise AttributeError(trait)


class Table:
    """The choices of one extension point, in the order they are offered."""

    def __init__(self, what: str, *entries: Entry | str) -> None:
        self.what = what
        self.entries = tuple(e if isinstance(e, Entry) else Entry(e) for e in entries)
        self._by_name = {e.name: e for e in self.entries}

    def names(self, **traits: Any) -> tuple[str, ...]:
        """The names, in order; with ``traits``, those whose traits have these values."""
        return tuple(e.name for e in self.entries
                     if all(e.traits.get(k) == v for k, v in traits.items()))

    def __getitem__(self, name: str) -> Entry:
        """The entry of ``name``, or one line naming the choices."""
        if name not in self._by_name:
            names = self.names()
            choices = " or ".join(names) if len(names) == 2 else "one of " + ", ".join(names)
            raise CnnvizError(f"unknown {self.what} '{name}': use {choices}")
        return self._by_name[name]

    def check(self, name: str) -> str:
        """``name`` when it is one of the choices (else one line naming them)."""
        return self[name].name

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def listing(self) -> str:
        """The names in words: "a, b or c"."""
        names = self.names()
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]

    def helps(self) -> str:
        """Each choice's line of help, in order, for a command line's help."""
        return "; ".join(f"{e.name}: {e.help}" for e in self.entries) + "."

    def metavar(self, *extra: str, **traits: Any) -> str:
        """``[a|b|c]`` for a command line's help (the names with ``traits``), with ``extra``
        forms after the names."""
        return "[" + "|".join([*self.names(**traits), *extra]) + "]"


_GRAD = "cnnviz.attribution.gradients:"
_CAM = "cnnviz.attribution.cams:"
_PERTURB = "cnnviz.attribution.perturbation:"
# Traits: signed (the sign says raise or lower; else a non-negative map), layer (reads a conv
# layer's maps: the CAM family), seeded (draws random numbers), baseline (starts from a
# baseline and reports its completeness error), reference (perturbs the input and reads only
# the output: model-agnostic, the yardstick the others are shown beside).


def _method(*, signed: bool, layer: bool = False, seeded: bool = False, baseline: bool = False,
            reference: bool = False) -> dict[str, bool]:
    return {"signed": signed, "layer": layer, "seeded": seeded, "baseline": baseline,
            "reference": reference}


ATTRIBUTIONS = Table(
    "attribution method",
    Entry("saliency", _GRAD + "Saliency", "the gradient of the score with respect to each pixel",
          _method(signed=True)),
    Entry("smoothgrad", _GRAD + "smoothgrad", "saliency averaged over noisy copies",
          _method(signed=True, seeded=True)),
    Entry("integrated_gradients", _GRAD + "IntegratedGradients",
          "the gradient along the path from a baseline, times the input's difference",
          _method(signed=True, baseline=True)),
    Entry("gradcam", _CAM + "GradCAM", "the layer's maps weighted by their mean gradient",
          _method(signed=False, layer=True)),
    Entry("gradcam++", _CAM + "GradCAMPlusPlus", "Grad-CAM weighting the positive gradients",
          _method(signed=False, layer=True)),
    Entry("layercam", _CAM + "LayerCAM", "the maps weighted by their gradient, place by place",
          _method(signed=False, layer=True)),
    Entry("occlusion", _PERTURB + "Occlusion",
          "the score's drop when a sliding patch hides the pixel (a seventh of the side)",
          _method(signed=True, reference=True)),
    Entry("rise", _PERTURB + "RISE",
          "the score's slope on each pixel over 1000 random masks keeping half the image",
          _method(signed=True, seeded=True, reference=True)),
)

# Traits: references (needs images of the data).
BASELINES = Table(
    "baseline",
    Entry("black", help="the darkest input", traits={"references": False}),
    Entry("blur", help="the input blurred", traits={"references": False}),
    Entry("noise", help="uniform noise", traits={"references": False}),
    Entry("mean", help="the mean image of the data", traits={"references": True}),
    Entry("expected", help="expected gradients over images of the data",
          traits={"references": True}),
)

# What a class-pattern heatmap shows.
PATTERN_VALUES = Table(
    "pattern values",
    Entry("contrast", help="each class's mean minus the map's mean over the classes: which "
                           "maps answer to which class"),
    Entry("means", help="the raw mean activation per class: which maps are on at all"),
)

_OBJ = "cnnviz.oip.objectives:"
OBJECTIVES = Table(
    "objective",
    Entry("auto", help="the centre neuron for a small receptive field, else the channel mean"),
    Entry("channel", _OBJ + "channel", "the mean of the filter's map"),
    Entry("neuron", _OBJ + "neuron", "the centre unit of the filter's map"),
    Entry("layer", _OBJ + "layer",
          "DeepDream: the mean square of every map after its activation (as lucid does)",
          {"dream": True}),
    Entry("layer_pre", _OBJ + "layer",
          "DeepDream on the maps before their activation (squared negative values count too)",
          {"dream": True}),
    Entry("unit", _OBJ + "class_logit",
          "a unit of a vector layer (Dense): for the output layer, the class logit before the "
          "softmax"),
)

PRESETS = Table(
    "preset",
    Entry("default", "cnnviz.oip.presets:default_recipe",
          "decorrelated Fourier image, colour decorrelation, random transforms"),
    Entry("classic", "cnnviz.oip.presets:classic_recipe",
          "the seed blog's pixel ascent from long-range fluctuations"),
    Entry("maco", "cnnviz.oip.presets:maco_recipe",
          "MACO: only the Fourier phase optimized, a photo's spectrum and colours"),
)

# How a --data spec is read. Traits: form — "name" (the spec is the entry's name; the factory
# is called with ``args``), "prefix" or "suffix" (the spec starts or ends with ``match``; the
# factory gets the spec) or "folder" (an existing folder; the factory gets its path). The
# factory returns a Dataset (with splits) or a Source. Checked in the order prefix, folder,
# name, suffix.
DATA = Table(
    "data set",
    Entry("bundled", "cnnviz.data.formats:load_mnist",
          "the bundled MNIST sample (10,000 real digits, offline)",
          {"form": "name", "args": ("bundled",)}),
    Entry("FOLDER", "cnnviz.data.readers:FolderSource",
          "a folder of images (class subfolders give the labels; a flat folder is unlabelled)",
          {"form": "folder"}),
    Entry("FILE.npz", "cnnviz.data.formats:load_npz_dataset",
          "an .npz (x, optional y and class_names; or x_train, y_train, x_test, y_test)",
          {"form": "suffix", "match": ".npz"}),
    Entry("tfds:NAME[:SPLIT]", "cnnviz.data.sources:tfds_source", "a tensorflow-datasets set",
          {"form": "prefix", "match": "tfds:"}),
    Entry("keras", "cnnviz.data.formats:load_mnist", "full MNIST (keras.datasets, online)",
          {"form": "name", "args": ("keras",)}),
    Entry("fashion", "cnnviz.data.formats:load_fashion_mnist",
          "Fashion-MNIST (Debian's IDX files)", {"form": "name", "args": ()}),
)

_CLI = "cnnviz.cli."
# The commands, in the order ``cnnviz --help`` lists them: the factory is the typer function
# (its docstring is the command's help). Traits: job — the one library call it makes
# (module:name in cnnviz.jobs); resume — how an interrupted run continues: "flag" (the same
# command with --resume), "rerun" (the same command again) or "no" (nothing to continue).
COMMANDS = Table(
    "command",
    Entry("layers", _CLI + "inspect:layers", traits={"job": "layers:layers_job", "resume": "no"}),
    Entry("activations", _CLI + "maps:activations",
          traits={"job": "maps:activations_job", "resume": "no"}),
    Entry("filters", _CLI + "filters:filters",
          traits={"job": "filters:filters_job", "resume": "flag"}),
    Entry("kernels", _CLI + "inspect:kernels", traits={"job": "maps:kernels_job", "resume": "no"}),
    Entry("patterns", _CLI + "maps:patterns",
          traits={"job": "maps:patterns_job", "resume": "flag"}),
    Entry("explain", _CLI + "explain:explain",
          traits={"job": "explain:explain_job", "resume": "no"}),
    Entry("report", _CLI + "site:report", traits={"job": "site:report_job", "resume": "no"}),
    Entry("atlas", _CLI + "site:atlas", traits={"job": "atlas:atlas_job", "resume": "rerun"}),
    Entry("serve", _CLI + "serve:serve", traits={"job": "serve:serve_job", "resume": "no"}),
    Entry("gallery", _CLI + "site:gallery", traits={"job": "site:gallery_job", "resume": "rerun"}),
    Entry("train", _CLI + "train:train", traits={"job": "train:train_job", "resume": "flag"}),
    Entry("evolution", _CLI + "train:evolution",
          traits={"job": "evolution:evolution_job", "resume": "no"}),
)

COLOURS = Table("colour basis", "auto", "imagenet", "data", "none")
UPDATES = Table(
    "method",
    Entry("rms", "cnnviz.oip.pieces:RMS", "each step moves an image by lr of the input range"),
    Entry("adam", "cnnviz.oip.pieces:Adam", "Adam: steps from the gradient's moments"))
PENALTIES = Table(
    "penalty",
    Entry("tv", "cnnviz.oip.pieces:TotalVariation", "total variation: smooth images"),
    Entry("l1", "cnnviz.oip.pieces:L1", "distance from mid-grey: sparse images"),
    Entry("l2", "cnnviz.oip.pieces:L2", "squared distance from mid-grey: faint images"),
    Entry("ink", "cnnviz.oip.pieces:Ink", "distance from black: strokes on a dark background"),
    Entry("colourfulness", "cnnviz.oip.pieces:Colourfulness",
          "colourfulness beyond photos': colours as photos have them"))
PARAMETERIZATIONS = Table("parameterization", "pixel", "fourier", "maco")
FILL_MODES = Table("pad", "reflect", "nearest", "constant", "wrap")
ORDERS = Table("order", "index", "activation")
SCALES = Table("scale", "shared", "per-map")
SCHEDULES = Table("schedule", "inverse_time", "exponential", "constant")
PREPROCESSING = Table("preprocessing", "auto", "unit", "symmetric", "raw", "caffe", "torch")
PRECISIONS = Table(
    "precision",
    Entry("float32", help="every step in float32"),
    Entry("bfloat16", help="the model's passes in bfloat16 (weights, images and optimizer in "
                           "float32)"),
    Entry("auto", help="bfloat16 where the device runs it natively (a CPU with AVX512_BF16 or "
                       "AMX, a GPU from compute capability 8.0), else float32"))


def _arch(name: str, pattern: str, preprocess: str) -> Entry:
    return Entry(name, traits={"pattern": pattern, "preprocess": preprocess})


# Keras Applications' architectures, by the default name of the model they build: the
# preprocessing their ImageNet weights were trained with (their preprocess_input), ``raw``
# (0..255 in) where the model preprocesses inside. ``auto`` preprocessing reads this table.
ARCHITECTURES = Table(
    "Keras Applications architecture",
    _arch("VGG16/VGG19", r"vgg(16|19)", "caffe"),
    _arch("ResNet50/101/152", r"resnet(50|101|152)", "caffe"),
    _arch("ResNet50V2/101V2/152V2", r"resnet(50|101|152)v2", "symmetric"),
    _arch("DenseNet", r"densenet(121|169|201)", "torch"),
    _arch("MobileNet", r"mobilenet_[\d.]+_\d+", "symmetric"),
    _arch("MobileNetV2", r"mobilenetv2_[\d.]+_\d+", "symmetric"),
    _arch("MobileNetV3", r"mobilenetv3(small|large)", "raw"),
    _arch("InceptionV3", r"inception_v3", "symmetric"),
    _arch("InceptionResNetV2", r"inception_resnet_v2", "symmetric"),
    _arch("Xception", r"xception", "symmetric"),
    _arch("NASNet", r"nasnet_(mobile|large)", "symmetric"),
    _arch("EfficientNet", r"efficientnetb[0-7]", "raw"),
    _arch("EfficientNetV2", r"efficientnetv2-(b[0-3]|s|m|l)", "raw"),
    _arch("ConvNeXt", r"convnext_(tiny|small|base|large|xlarge)", "raw"),
)
SPLITS = Table("split", "train", "test")
HOLD_OUTS = Table("validation", "test", "none")
STARTS = Table("start", Entry("noise", traits={"image": False}),
               Entry("grey", traits={"image": False}), Entry("image", traits={"image": True}))

ALL = (ATTRIBUTIONS, BASELINES, OBJECTIVES, PRESETS, DATA, COLOURS, UPDATES, PENALTIES,
       PARAMETERIZATIONS, FILL_MODES, ORDERS, SCALES, SCHEDULES, PREPROCESSING, SPLITS,
       HOLD_OUTS, STARTS, PATTERN_VALUES, PRECISIONS)
