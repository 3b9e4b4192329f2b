"""dermkit-keras-zoo: more ``keras.applications`` backbones for dermkit, as a plugin.

After ``pip install dermkit-keras-zoo``, ``dermkit train --model densenet121`` (or
``efficientnet_b0`` … ``b3``, ``efficientnet_v2_b0``, ``efficientnet_v2_s``,
``mobilenet_v3_large``, ``convnext_tiny``, ``xception``) works like the built-in
``resnet50``, with the same ``--model-option``\\ s.
"""

from __future__ import annotations

from dermkit_keras_zoo.models import (
    ZOO,
    Backbone,
    ConvNeXtTiny,
    DenseNet121,
    EfficientNetB0,
    EfficientNetB1,
    EfficientNetB2,
    EfficientNetB3,
    EfficientNetV2B0,
    EfficientNetV2S,
    KerasApplication,
    MobileNetV3Large,
    Xception,
)

__version__ = "0.1.0"

__all__ = [
    "ZOO",
    "Backbone",
    "ConvNeXtTiny",
    "DenseNet121",
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetV2B0",
    "EfficientNetV2S",
    "KerasApplication",
    "MobileNetV3Large",
    "Xception",
    "__version__",
]
