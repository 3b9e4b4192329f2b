"""Balanced batches: every training batch holds equal random draws from each class."""

from __future__ import annotations

from typing import ClassVar

import attrs

from dermkit.core import BalanceContext, TrainingPlan


@attrs.frozen(slots=True)
class BalancedBatches:
    """Sample each batch with the same number of images per class (the study's generator).

    Small classes are drawn with replacement, so an epoch is a number of steps rather
    than a pass over the data: ``steps_per_epoch`` (default: as many steps as a plain
    epoch over the training part would take). The same sampler
    (:func:`dermkit.data.sampling.balanced_batches`) draws the study's balanced test.
    """

    name: ClassVar[str] = "balanced_batches"
    steps_per_epoch: int | None = attrs.field(default=None)

    @steps_per_epoch.validator
    def _check_steps(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"steps_per_epoch must be at least 1, got {value}")

    def apply(self, plan: TrainingPlan, context: BalanceContext) -> TrainingPlan:
        steps = self.steps_per_epoch or max(1, -(-len(plan.records) // context.batch_size))
        per_class = context.batch_size / max(1, len({r.label for r in plan.records}))
        note = (
            f"balanced_batches: {steps} steps/epoch, "
            f"about {per_class:.1f} images per class per batch"
        )
        return attrs.evolve(
            plan, sampling="balanced", steps_per_epoch=steps, notes=(*plan.notes, note)
        )
