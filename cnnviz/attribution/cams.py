"""Class activation maps: a layer's maps A weighted by the target score's gradient g = ∂S/∂A,
placed on the input along the layer's receptive-field centres. Non-negative by definition.

- Grad-CAM (Selvaraju et al. 2017): ReLU(Σ_k mean_ij(g_k) · A_k).
- Grad-CAM++ (Chattopadhay et al. 2018): weights Σ_ij α_kij · ReLU(g_kij), with
  α = g² / (2g² + Σ_ab A_kab · g³), the closed form for an exponential score.
- LayerCAM (Jiang et al. 2021): ReLU(Σ_k ReLU(g_k) · A_k), position by position.

Where no layer is named, a CAM reads :func:`cam_layer`: the deepest top-level layer whose maps
are at least 7×7 at the input's size — the deepest convolution of a small CNN is often 3×3, and a
3×3 map drawn over a digit is three flat blocks that land on the background as often as on the
ink (measured on the bundled model: ink share 1.0× chance at conv2d_3, 1.9× at conv2d_2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.attribution.gradients import ChannelTarget, Target, resolve_target, score_model
from cnnviz.core.backend import backend_name, compile_step, keras, value_and_grad
from cnnviz.core.errors import CnnvizError
from cnnviz.model.facts import (
    ModelFacts,
    as_facts,
    conv_layers,
    default_layer,
    get_layer,
    input_struct,
    layer_output_shape,
    resolve_map_layers,
)
from cnnviz.model.graph import output_feeding
from cnnviz.model.receptive import map_grids, receptive_field, upsample

# The smallest map side a CAM is read at by default: coarser maps put their blocks anywhere.
CAM_MIN_SIDE = 7


def cam_layer(model: ModelFacts | Any, size: tuple[int, int] | None = None) -> str:
    """The layer a class-activation map reads when none is named: the deepest top-level layer,
    at or after the first convolution, whose maps are at least 7×7 at the input's size (``size``
    for a model that takes any; a nested model counts as one layer, its output) — else, where
    every map is smaller, the deepest convolution (or the nested model holding it)."""
    facts = as_facts(model)
    fallback = default_layer(facts.model, top_level=True, purpose="Grad-CAM")
    grids = map_grids(facts, size)
    convs = conv_layers(facts.model)
    chosen, seen_conv = None, False
    for layer in facts.model.layers:
        shape = layer_output_shape(layer)
        seen_conv = seen_conv or any(n == layer.name or n.startswith(f"{layer.name}/")
                                     for n in convs)
        grid = grids.get(layer.name, tuple(shape[1:3]) if len(shape) == 4 else None)
        if seen_conv and len(shape) == 4 and grid and None not in grid and \
                min(grid) >= CAM_MIN_SIDE:
            chosen = layer.name
    return chosen or fallback


class ClassActivationMap:
    """Shared set-up of the CAM family; subclasses say how maps and gradients combine."""

    signed = False

    def __init__(self, model: ModelFacts | Any, layer: str | None = None, *,
                 size: tuple[int, int] | None = None) -> None:
        self.facts = as_facts(model)
        self.model = model = self.facts.model
        self.layer = layer or cam_layer(self.facts, size)
        resolve_map_layers(model, [self.layer])
        if "/" in self.layer:
            raise CnnvizError(f"Grad-CAM needs a top-level layer; '{self.layer}' is inside a "
                              f"nested model (use '{self.layer.split('/')[0]}', its output)")
        self.is_class = len(model.outputs[0].shape) == 2
        self._heads: dict[str | None, tuple[Any, Any]] = {}
        self._scores: dict[str | None, Any] = {}  # per explained layer: input → its scores

    def _head(self, target_layer: str | None) -> tuple[Any, Any]:
        """The model giving (maps, scores) and the compiled (maps, gradient) of the target,
        per explained layer. One model with both outputs: the maps tensor it returns is the
        one the scores are computed from, so residual paths around the layer are handled."""
        if target_layer not in self._heads:
            k = keras()
            scores = score_model(self.model, target_layer)
            try:
                maps = output_feeding(scores.outputs[0], get_layer(self.model, self.layer))
            except CnnvizError:
                raise CnnvizError(f"Grad-CAM layer '{self.layer}' does not feed "
                                  f"{'the output' if target_layer is None else target_layer}: "
                                  "choose an earlier --layer") from None
            both = k.Model(input_struct(self.model), [maps, scores.outputs[0]])
            grads = _tf_grads(both) if backend_name() == "tensorflow" else \
                _head_grads(both, get_layer(self.model, self.layer))
            self._heads[target_layer] = (both, compile_step(grads))
        return self._heads[target_layer]

    def maps_and_gradients(self, images: np.ndarray, target: Target = None
                           ) -> tuple[np.ndarray, np.ndarray, ChannelTarget]:
        """The layer's maps A and ∂score/∂A, both (N, h, w, K), and the chosen targets."""
        ops = keras().ops
        x = np.asarray(images, dtype=np.float32)
        chosen = self.targets(x, target)
        both, grads = self._head(chosen.layer)
        onehot = np.eye(int(both.outputs[1].shape[-1]), dtype=np.float32)[chosen.channel]
        a, g = grads(ops.convert_to_tensor(x), ops.convert_to_tensor(onehot))
        return (ops.convert_to_numpy(a).astype(np.float64),
                ops.convert_to_numpy(g).astype(np.float64), chosen)

    def targets(self, images: np.ndarray, target: Target) -> ChannelTarget:
        """The given targets (checked), or the highest-scoring ones, one column per image."""
        layer = target.layer if isinstance(target, ChannelTarget) else None
        if layer not in self._scores:
            both = self._head(layer)[0]
            self._scores[layer] = keras().Model(both.inputs, both.outputs[1])
        return resolve_target(target, self._scores[layer], np.asarray(images, dtype=np.float32),
                              self.is_class)

    def layer_map(self, maps: np.ndarray, grads: np.ndarray) -> np.ndarray:
        """(N, h, w) from maps and gradients."""
        raise NotImplementedError

    def attribute(self, images: np.ndarray, target: Target = None) -> np.ndarray:
        """One (H, W) map per image: the layer's map, each value placed at the centre of its
        unit's receptive field and interpolated linearly between centres."""
        x = np.asarray(images, dtype=np.float32)
        maps, grads, _ = self.maps_and_gradients(x, target)
        size = x.shape[1:3]
        field = receptive_field(self.facts, self.layer,
                                tuple(size) if self.facts.any_size else None)
        return upsample(self.layer_map(maps, grads), field, size).astype(np.float32)


class GradCAM(ClassActivationMap):
    """Grad-CAM: the maps of a layer (default: the last conv layer) weighted by the spatial mean
    of the target score's gradient, summed, passed through ReLU."""

    def layer_map(self, maps: np.ndarray, grads: np.ndarray) -> np.ndarray:
        weights = grads.mean(axis=(1, 2), keepdims=True)
        return np.maximum((weights * maps).sum(axis=-1), 0.0)


class GradCAMPlusPlus(ClassActivationMap):
    """Grad-CAM++: positive gradients weighted per position by α, which favours the positions
    that raise the score, so several instances of a class all light up."""

    def layer_map(self, maps: np.ndarray, grads: np.ndarray) -> np.ndarray:
        g2, g3 = grads**2, grads**3
        denominator = 2 * g2 + maps.sum(axis=(1, 2), keepdims=True) * g3
        alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
        weights = (alpha * np.maximum(grads, 0.0)).sum(axis=(1, 2), keepdims=True)
        return np.maximum((weights * maps).sum(axis=-1), 0.0)


class LayerCAM(ClassActivationMap):
    """LayerCAM: each position of each map weighted by its own positive gradient, so the map
    keeps the layer's resolution of detail."""

    def layer_map(self, maps: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return np.maximum((np.maximum(grads, 0.0) * maps).sum(axis=-1), 0.0)


def _tf_grads(both: Any) -> Any:
    """TensorFlow: the gradient with respect to the returned maps tensor itself."""
    import tensorflow as tf

    def grads(x: Any, onehot: Any) -> Any:
        with tf.GradientTape() as tape:
            a, out = both(x)
            score = tf.reduce_sum(out * onehot)
        return a, tape.gradient(score, a)

    return grads


def _head_grads(both: Any, layer: Any) -> Any:
    """Other backends (JAX): the gradient with respect to the layer's output, taken as the
    gradient with respect to a zero tensor added to that output while the model runs — so
    paths around the layer (residual connections) are followed as TensorFlow's tape does."""
    ops = keras().ops
    added: dict[str, Any] = {}

    def shifted(*args: Any, **kwargs: Any) -> Any:
        return ops.add(type(layer).call(layer, *args, **kwargs), added["delta"])

    def grads(x: Any, onehot: Any) -> Any:
        zero = ops.zeros_like(both(x)[0])

        def score(delta: Any) -> tuple[Any, Any]:
            added["delta"] = delta
            a, out = both(x)
            return ops.sum(out * onehot), a

        layer.call = shifted  # only while this traces: the compiled step keeps the sum
        try:
            (_, a), g = value_and_grad(score)(zero)
        finally:
            del layer.call
        return a, g

    return grads
