"""The built-in dataset readers, registered through the same hook as any plugin's."""

from __future__ import annotations

from dermkit.data.csv_manifest import CSVManifest
from dermkit.data.folder import ImageFolder
from dermkit.data.ham10000 import HAM10000
from dermkit.data.isic import ISICGroundTruth
from dermkit.hookspecs import Factories, hookimpl


@hookimpl
def dermkit_datasets() -> Factories:
    return {
        ImageFolder.name: ImageFolder,
        HAM10000.name: HAM10000,
        CSVManifest.name: CSVManifest,
        ISICGroundTruth.name: ISICGroundTruth,
    }


# --- splitters -------------------------------------------------------------------------
# The grouped splitters live in dermkit.data.splits (another work item). Until that
# module exists this hook provides nothing, so the registry keeps working either way;
# the lead may replace this with a plain import once splits.py has landed.
@hookimpl
def dermkit_splitters() -> Factories:
    try:
        from dermkit.data.splits import (
            GroupedCrossValidation,
            GroupedStratifiedKFold,
            GroupedStratifiedSplit,
        )
    except ModuleNotFoundError as error:
        if error.name == "dermkit.data.splits":
            return {}
        raise
    return {
        GroupedStratifiedSplit.name: GroupedStratifiedSplit,
        GroupedStratifiedKFold.name: GroupedStratifiedKFold,
        GroupedCrossValidation.name: GroupedCrossValidation,
    }
