"""dermkit: train and evaluate classifiers of dermatoscopic skin-lesion images, honestly.

``import dermkit`` is cheap: TensorFlow is imported only when a model, a training run
or an input pipeline is first used. The names below are loaded on first access.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from dermkit.core import (
    HAM10000_CLASSES,
    BalanceContext,
    ClassIndex,
    LoadedDataset,
    Problem,
    Record,
    Split,
    TrainingPlan,
)
from dermkit.errors import ConfigError, DataError, DermkitError, PluginError
from dermkit.hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Experiment": "dermkit.experiment",
    "Training": "dermkit.training.config",
    "create_model": "dermkit.models.registry",
    "ImageFolder": "dermkit.data.folder",
    "HAM10000": "dermkit.data.ham10000",
    "CSVManifest": "dermkit.data.csv_manifest",
    "ISICGroundTruth": "dermkit.data.isic",
    "GroupedStratifiedSplit": "dermkit.data.splits",
    "GroupedStratifiedKFold": "dermkit.data.splits",
    "GroupedCrossValidation": "dermkit.data.splits",
    "ImageSettings": "dermkit.data.images",
    "ClassWeights": "dermkit.balancers.class_weights",
    "BalancedBatches": "dermkit.balancers.balanced_batches",
    "Oversample": "dermkit.balancers.oversample",
    "Augment": "dermkit.balancers.augment",
    "LogitAdjustment": "dermkit.balancers.logit_adjustment",
    "plugins": "dermkit.plugins",
}

if TYPE_CHECKING:  # pragma: no cover
    from dermkit import plugins
    from dermkit.balancers.augment import Augment
    from dermkit.balancers.balanced_batches import BalancedBatches
    from dermkit.balancers.class_weights import ClassWeights
    from dermkit.balancers.logit_adjustment import LogitAdjustment
    from dermkit.balancers.oversample import Oversample
    from dermkit.data.csv_manifest import CSVManifest
    from dermkit.data.folder import ImageFolder
    from dermkit.data.ham10000 import HAM10000
    from dermkit.data.images import ImageSettings
    from dermkit.data.isic import ISICGroundTruth
    from dermkit.data.splits import (
        GroupedCrossValidation,
        GroupedStratifiedKFold,
        GroupedStratifiedSplit,
    )
    from dermkit.experiment import Experiment
    from dermkit.models.registry import create_model
    from dermkit.training.config import Training


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'dermkit' has no attribute {name!r}")
    module = import_module(module_name)
    value = module if name == "plugins" else getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
    "HAM10000",
    "HAM10000_CLASSES",
    "Augment",
    "BalanceContext",
    "BalancedBatches",
    "CSVManifest",
    "ClassIndex",
    "ClassWeights",
    "ConfigError",
    "DataError",
    "DermkitError",
    "Experiment",
    "GroupedCrossValidation",
    "GroupedStratifiedKFold",
    "GroupedStratifiedSplit",
    "ISICGroundTruth",
    "ImageFolder",
    "ImageSettings",
    "LoadedDataset",
    "LogitAdjustment",
    "Oversample",
    "PluginError",
    "Problem",
    "Record",
    "Split",
    "Training",
    "TrainingPlan",
    "__version__",
    "create_model",
    "hookimpl",
    "plugins",
]
