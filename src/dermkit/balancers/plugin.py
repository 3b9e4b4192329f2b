"""Built-in balancers, registered through the same hook third-party plugins use."""

from __future__ import annotations

from dermkit.balancers.augment import Augment
from dermkit.balancers.balanced_batches import BalancedBatches
from dermkit.balancers.class_weights import ClassWeights
from dermkit.balancers.gan_oversampling import GanOversampling
from dermkit.balancers.logit_adjustment import LogitAdjustment
from dermkit.balancers.oversample import Oversample
from dermkit.hookspecs import Factories, hookimpl


@hookimpl
def dermkit_balancers() -> Factories:
    return {
        "class_weights": ClassWeights,
        "balanced_batches": BalancedBatches,
        "oversample": Oversample,
        "augment": Augment,
        "gan_oversampling": GanOversampling,
        "logit_adjustment": LogitAdjustment,
    }
