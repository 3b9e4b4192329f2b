"""Class weights: make every class count equally in the loss, without touching the data."""

from __future__ import annotations

from typing import ClassVar, Literal

import attrs

from dermkit.core import BalanceContext, TrainingPlan
from dermkit.data.stats import class_weights


@attrs.frozen(slots=True)
class ClassWeights:
    """Weight each class's loss by its rarity.

    ``mode="balanced"`` gives ``n / (k * n_c)`` (scikit-learn's convention: the mean
    weight over samples is 1, so the learning rate means the same as without weights).
    ``mode="majority"`` gives ``n_max / n_c``, the original study's dictionary in which
    the majority class (nv) weighs exactly 1.0. Both give the same ratios between
    classes; they differ only in overall scale, which interacts with the learning rate.
    Weights are computed on the plan's records, so they reflect any oversampling done
    by an earlier balancer.
    """

    name: ClassVar[str] = "class_weights"
    mode: Literal["balanced", "majority"] = attrs.field(
        default="balanced", validator=attrs.validators.in_(("balanced", "majority"))
    )

    def apply(self, plan: TrainingPlan, context: BalanceContext) -> TrainingPlan:
        weights = class_weights(plan.counts(len(context.classes)), self.mode)
        shown = ", ".join(f"{context.classes.name(i)}={w:.3g}" for i, w in weights.items())
        return attrs.evolve(
            plan,
            class_weight=weights,
            notes=(*plan.notes, f"class_weights ({self.mode}): {shown}"),
        )
