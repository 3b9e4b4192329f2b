"""Grad-CAM: where in the image did the network look for its answer?

A clinician will not trust a melanoma call that rests on a ruler, a hair or the
vignette of the dermatoscope; Grad-CAM (Selvaraju et al., 2017) shows it. The class
score's gradient with respect to a convolutional feature map, averaged over space,
weights the map's channels; their weighted sum, rectified and upsampled to the input
size, is the heatmap.

Two details make this work on dermkit's models:

* **Nested backbones.** Transfer models wrap a ``keras.applications`` network as one
  layer of an outer functional model. The backbone's inner layers are not connected to
  the outer input, so ``keras.Model(outer.input, inner_layer.output)`` fails. We build
  an inner model that returns both the feature map and the backbone's output, then
  re-trace the outer model with :func:`keras.models.clone_model` (reusing, not
  copying, its layers) and swap that inner model in for the backbone. Sequential
  outer models are re-traced layer by layer. Any depth of nesting works.
* **Softmax outputs.** The gradient of a probability vanishes as it saturates, so a
  confident model would give an empty map. For softmax outputs we use the centred
  log-probability ``log p_c - mean_j log p_j``, which equals the centred logit
  ``z_c - mean_j z_j`` exactly (the log-sum-exp cancels) and does not saturate.

TensorFlow is imported only when a heatmap is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from dermkit.errors import ConfigError, DataError
from dermkit.evaluation.metrics import FloatArray

if TYPE_CHECKING:  # pragma: no cover
    import keras


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _spatial_shape(layer: Any) -> tuple[int, ...] | None:
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        return None
    return shape if len(shape) == 4 else None


def find_last_conv_layer(model: keras.Model) -> tuple[str, ...]:
    """Path of names (outer to inner) to the last layer with a spatial 4-D output.

    Searches nested models depth-first from the output end. Layers whose map is 1x1 are
    skipped: a heatmap from a single cell is one flat colour. Pooling or activation
    layers after the last convolution qualify too; they carry the same spatial map.
    """
    import keras

    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if _is_model(layer):
            try:
                return (layer.name, *find_last_conv_layer(layer))
            except ConfigError:
                continue
        shape = _spatial_shape(layer)
        if shape is not None and (shape[1] or 2) * (shape[2] or 2) > 1:
            return (layer.name,)
    raise ConfigError(
        f"model {model.name!r} has no layer with a spatial (4-D) output",
        where="gradcam",
        hint="Grad-CAM needs a convolutional model; pass layer= to choose one",
    )


def _find_path(model: keras.Model, name: str) -> tuple[str, ...] | None:
    for layer in model.layers:
        if layer.name == name:
            return (name,)
    for layer in model.layers:
        if _is_model(layer):
            inner = _find_path(layer, name)
            if inner is not None:
                return (layer.name, *inner)
    return None


def resolve_layer(model: keras.Model, layer: str | Sequence[str] | None) -> tuple[str, ...]:
    """The layer path for ``layer``: ``None`` (automatic), a name, ``"outer/inner"``, a list."""
    if layer is None:
        return find_last_conv_layer(model)
    if isinstance(layer, str):
        if "/" in layer:
            return tuple(layer.split("/"))
        path = _find_path(model, layer)
        if path is None:
            raise ConfigError(
                f"no layer named {layer!r} in model {model.name!r} or its nested models",
                where="gradcam",
                hint="print model.summary(expand_nested=True) to see the layer names",
            )
        return path
    return tuple(layer)


def activation_model(model: keras.Model, path: Sequence[str]) -> keras.Model:
    """A model from ``model``'s input to ``[activation at path, model output]``.

    The model is re-traced rather than cut at ``layer.output``: a layer's ``output`` is
    that of its *first* call, which for a backbone nested in an outer model, or a layer
    shared between two models, lies in another graph.
    """
    import keras

    try:
        target = model.get_layer(path[0])
    except ValueError:
        raise ConfigError(
            f"no layer named {path[0]!r} in model {model.name!r}", where="gradcam"
        ) from None
    inner = activation_model(target, path[1:]) if len(path) > 1 else None
    captured: list[Any] = []

    def call_target(*args: Any, **kwargs: Any) -> Any:
        if inner is None:
            out = target(*args, **kwargs)
            captured.append(out)
            return out
        feature, out = inner(*args, **kwargs)
        captured.append(feature)
        return out

    if isinstance(model, keras.Sequential):
        x = start = keras.Input(shape=tuple(model.inputs[0].shape[1:]))
        for layer in model.layers:
            x = call_target(x) if layer is target else layer(x)
        return keras.Model(start, [captured[-1], x])

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        return call_target(*args, **kwargs) if layer is target else layer(*args, **kwargs)

    traced = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    if not captured:
        raise ConfigError(f"layer {path[0]!r} is not called in {model.name!r}", where="gradcam")
    inputs = traced.inputs[0] if len(traced.inputs) == 1 else traced.inputs
    return keras.Model(inputs, [captured[-1], traced.outputs[0]])


def _class_score(output: Any, classes: Any) -> Any:
    """Per-image score to explain; centred log-probabilities for softmax outputs."""
    import tensorflow as tf

    values = output.numpy()
    if values.shape[-1] == 1:  # one sigmoid unit: its logit, signed by the class asked for
        p = tf.clip_by_value(output[:, 0], 1e-7, 1 - 1e-7)
        logit = tf.math.log(p) - tf.math.log(1 - p)
        sign = tf.constant(np.where(classes == 0, -1.0, 1.0), dtype=logit.dtype)
        return logit * sign
    is_softmax = np.all(values >= 0) and np.allclose(values.sum(axis=-1), 1.0, atol=1e-3)
    picked = tf.gather(output, tf.constant(classes), axis=1, batch_dims=1)
    if not is_softmax:
        return picked
    logp = tf.math.log(tf.maximum(output, 1e-30))
    chosen = tf.gather(logp, tf.constant(classes), axis=1, batch_dims=1)
    return chosen - tf.reduce_mean(logp, axis=1)


def gradcam(
    model: keras.Model,
    images: npt.ArrayLike,
    *,
    class_index: int | Sequence[int] | None = None,
    layer: str | Sequence[str] | None = None,
    batch_size: int = 16,
) -> FloatArray:
    """Grad-CAM heatmaps ``(n, H, W)`` in ``[0, 1]`` at the input resolution.

    ``images`` is a batch ``(n, H, W, C)`` (or one image ``(H, W, C)``) exactly as the
    model takes it (dermkit models take raw RGB pixels). ``class_index`` is the class to
    explain: one for all images, one per image, or ``None`` for each image's predicted
    class. ``layer`` picks the feature map (see :func:`resolve_layer`); by default the
    last spatial layer, searched inside nested backbones. A map that is zero everywhere
    (no positive evidence) stays zero rather than being stretched into noise.
    """
    import tensorflow as tf

    batch = np.asarray(images, dtype=np.float32)
    single = batch.ndim == 3
    if single:
        batch = batch[None]
    if batch.ndim != 4:
        raise DataError(f"expected images (n, H, W, C), got shape {batch.shape}", where="images")
    path = resolve_layer(model, layer)
    grad_model = activation_model(model, path)
    n, height, width = batch.shape[:3]
    wanted: npt.NDArray[np.int64] | None = None
    if class_index is not None:
        wanted = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (n,)).copy()
    maps: list[FloatArray] = []
    for start in range(0, n, batch_size):
        x = tf.constant(batch[start : start + batch_size])
        with tf.GradientTape() as tape:
            feature, output = grad_model(x, training=False)
            if wanted is None:
                classes = np.argmax(output.numpy(), axis=-1).astype(np.int64)
            else:
                classes = wanted[start : start + batch_size]
            score = _class_score(output, classes)
        grads = tape.gradient(score, feature)
        if grads is None:
            raise ConfigError(
                f"the output does not depend on layer {'/'.join(path)!r}", where="gradcam"
            )
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * feature, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, (height, width), method="bilinear")[..., 0].numpy()
        peak = cam.reshape(cam.shape[0], -1).max(axis=1)
        scale = np.where(peak > 0, peak, 1.0)[:, None, None]
        maps.append(np.clip(cam / scale, 0.0, 1.0).astype(np.float64))
    heat = np.concatenate(maps, axis=0)
    return heat[0] if single else heat


def resize_heatmap(heatmap: FloatArray, height: int, width: int) -> FloatArray:
    """Bilinear resize of a 2-D map (align-corners off), so :func:`overlay` needs no TF."""
    h, w = heatmap.shape
    if (h, w) == (height, width):
        return heatmap
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = heatmap[y0][:, x0] * (1 - wx) + heatmap[y0][:, x1] * wx
    bottom = heatmap[y1][:, x0] * (1 - wx) + heatmap[y1][:, x1] * wx
    out: FloatArray = top * (1 - wy) + bottom * wy
    return out


def overlay(
    image: npt.ArrayLike,
    heatmap: npt.ArrayLike,
    *,
    alpha: float = 0.45,
    colormap: str = "jet",
) -> npt.NDArray[np.uint8]:
    """The image with the heatmap colour-mapped on top, as ``uint8`` RGB ``(H, W, 3)``.

    ``image`` is RGB or grey, values in ``[0, 255]``; ``heatmap`` is a 2-D map in
    ``[0, 1]`` of any size (resized to the image). Save it with
    ``matplotlib.image.imsave("cam.png", overlay(image, heat))``.
    """
    from matplotlib import colormaps

    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}", where="alpha")
    picture = np.asarray(image, dtype=np.float64)
    if picture.ndim == 3 and picture.shape[-1] == 1:
        picture = picture[..., 0]
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=-1)
    if picture.ndim != 3 or picture.shape[-1] not in (3, 4):
        raise DataError(
            f"expected an RGB image (H, W, 3), got shape {picture.shape}", where="image"
        )
    picture = np.clip(picture[..., :3], 0, 255)
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.ndim != 2:
        raise DataError(f"expected a 2-D heatmap, got shape {heat.shape}", where="heatmap")
    heat = np.clip(np.nan_to_num(resize_heatmap(heat, *picture.shape[:2])), 0.0, 1.0)
    try:
        cmap = colormaps[colormap]
    except KeyError:
        raise ConfigError(f"unknown matplotlib colormap {colormap!r}", where="colormap") from None
    colour = np.asarray(cmap(heat))[..., :3] * 255.0
    blended = (1.0 - alpha) * picture + alpha * colour
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
