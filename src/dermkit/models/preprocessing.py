"""Input preprocessing as Keras layers, so every saved model carries its own.

Each built model takes raw RGB pixels in [0, 255] and starts with one of these layers.
The pipeline then never needs to know whether a backbone wants [0, 1], [-1, 1] or
BGR mean-centred input, and a model loaded from disk predicts correctly on its own.

They are real layer classes registered with Keras (package ``dermkit``) rather than
``Lambda`` layers, because Lambda layers hold Python bytecode that Keras refuses to
load in safe mode. Importing this module (which ``dermkit.models.load_model`` does)
is what lets ``keras.models.load_model(path, safe_mode=True)`` find them.

This is the one module of :mod:`dermkit.models` that imports Keras at import time:
the classes must subclass ``keras.layers.Layer``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

IMAGENET_BGR_MEAN: tuple[float, float, float] = (103.939, 116.779, 123.68)
"""The ImageNet channel means (B, G, R) that the Caffe-trained ResNet weights expect."""

LITE_MEAN = 127.0
LITE_STD = 128.0
"""EfficientNet-Lite's input normalisation: (x − 127) / 128 on every channel."""


class _PixelLayer(keras.layers.Layer):  # type: ignore[misc]
    """A stateless per-pixel transform; output shape equals input shape."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="dermkit")
class ScaleToUnit(_PixelLayer):
    """[0, 255] → [0, 1]: what a network trained from scratch (LFN) sees."""

    def call(self, inputs: Any) -> Any:
        return ops.divide(inputs, ops.cast(255.0, inputs.dtype))


@keras.saving.register_keras_serializable(package="dermkit")
class ScaleToSymmetric(_PixelLayer):
    """[0, 255] → [-1, 1]: ``keras.applications.inception_v3.preprocess_input`` ("tf" mode).

    Divides by 127.5 and then subtracts 1, in that order, like Keras does, so the
    result matches Keras' own function bit for bit.
    """

    def call(self, inputs: Any) -> Any:
        x = ops.divide(inputs, ops.cast(127.5, inputs.dtype))
        return ops.subtract(x, ops.cast(1.0, inputs.dtype))


@keras.saving.register_keras_serializable(package="dermkit")
class CaffeImageNet(_PixelLayer):
    """RGB [0, 255] → BGR minus the ImageNet mean: ``resnet50.preprocess_input`` ("caffe").

    The original ResNet weights were trained in Caffe on BGR images with the mean
    pixel subtracted and no scaling; feeding them anything else silently costs
    accuracy, which is why this step lives inside the model.
    """

    def call(self, inputs: Any) -> Any:
        bgr = ops.flip(inputs, axis=-1)
        mean = ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=inputs.dtype)
        return ops.subtract(bgr, mean)


@keras.saving.register_keras_serializable(package="dermkit")
class CenterAt127(_PixelLayer):
    """[0, 255] → (x − 127) / 128, about [−1, 1]: what the EfficientNet-Lite weights expect.

    This is the normalisation the Lite models were trained with (the original
    TensorFlow code's mean 127 and standard deviation 128, one value for every channel),
    not Inception's x / 127.5 − 1: the two differ by up to 0.008, which the exactness
    check against the original model's outputs would notice. Dividing by 128 is exact
    in floating point.
    """

    def call(self, inputs: Any) -> Any:
        centred = ops.subtract(inputs, ops.cast(LITE_MEAN, inputs.dtype))
        return ops.divide(centred, ops.cast(LITE_STD, inputs.dtype))


CUSTOM_OBJECTS: dict[str, type[keras.layers.Layer]] = {
    "dermkit>ScaleToUnit": ScaleToUnit,
    "dermkit>ScaleToSymmetric": ScaleToSymmetric,
    "dermkit>CaffeImageNet": CaffeImageNet,
    "dermkit>CenterAt127": CenterAt127,
}
"""Every custom layer by its registered name, for ``custom_objects=`` arguments."""
