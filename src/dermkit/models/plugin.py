"""The built-in model factories, registered through the same hook as any plugin."""

from __future__ import annotations

from dermkit.hookspecs import Factories, hookimpl
from dermkit.models.applications import InceptionV3, ResNet50
from dermkit.models.efficientnet_lite import FACTORIES as EFFICIENTNET_LITE
from dermkit.models.lfn import LFN


@hookimpl
def dermkit_models() -> Factories:
    """``googlenet`` is the study's name for InceptionV3 and builds the same network."""
    return {
        "lfn": LFN,
        "resnet50": ResNet50,
        "inception_v3": InceptionV3,
        "googlenet": InceptionV3,
        **EFFICIENTNET_LITE,
    }
