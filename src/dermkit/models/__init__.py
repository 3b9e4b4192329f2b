"""Model factories: the study's compact CNN (LFN) and ImageNet backbones to freeze or fine-tune.

Every factory builds a ``keras.Model`` that takes raw RGB pixels in [0, 255] (input
layer ``image``) and ends in a softmax layer named ``probabilities``; the input
preprocessing is a layer inside the model. Importing this package is cheap: Keras and
TensorFlow are imported only when a model is built or loaded.

Saved models contain dermkit's custom preprocessing layers, which Keras can only load
once they are registered. After ``import dermkit.models``,
``keras.models.load_model(path, safe_mode=True)`` works whatever the import order: the
layers are registered at once if Keras is already loaded, and otherwise right after
Keras itself is first imported (a post-import hook), so this import stays free of
TensorFlow. :func:`dermkit.models.load_model` does the same with clearer errors.
"""

from __future__ import annotations

from dermkit.models.applications import InceptionV3, ResNet50
from dermkit.models.efficientnet_lite import (
    EfficientNetLite0,
    EfficientNetLite1,
    EfficientNetLite2,
    EfficientNetLite3,
    EfficientNetLite4,
    imagenet_classifier,
)
from dermkit.models.lfn import LFN
from dermkit.models.registry import create_model, model_factory
from dermkit.models.saving import load_model, register_layers, register_layers_with_keras

register_layers_with_keras()

__all__ = [
    "LFN",
    "EfficientNetLite0",
    "EfficientNetLite1",
    "EfficientNetLite2",
    "EfficientNetLite3",
    "EfficientNetLite4",
    "InceptionV3",
    "ResNet50",
    "create_model",
    "imagenet_classifier",
    "load_model",
    "model_factory",
    "register_layers",
]
