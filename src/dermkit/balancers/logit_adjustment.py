"""Logit adjustment: counter the imbalance in the loss's margins instead of its weights."""

from __future__ import annotations

import math
from typing import ClassVar

import attrs

from dermkit.core import BalanceContext, TrainingPlan
from dermkit.errors import ConfigError


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive number, got {value}")


@attrs.frozen(slots=True)
class LogitAdjustment:
    """Train with the logit-adjusted cross-entropy of Menon et al. (ICLR 2021).

    Each class's log-probability is shifted by ``tau * log(n_c / n)`` inside the loss
    (see :mod:`dermkit.training.losses`); predictions are the model's plain outputs.
    ``tau=1`` makes the model's outputs estimate the class as if all classes were
    equally frequent, which is what balanced accuracy scores. Counts come from the
    plan's records, so they reflect any oversampling done by an earlier balancer.

    It replaces class weights rather than adding to them: both counter the same
    imbalance, and together they over-correct toward the rare classes, so a plan with
    both is refused (by :class:`~dermkit.core.TrainingPlan` itself, whatever set them).
    """

    name: ClassVar[str] = "logit_adjustment"
    tau: float = attrs.field(default=1.0, converter=float, validator=_positive)

    def apply(self, plan: TrainingPlan, context: BalanceContext) -> TrainingPlan:
        counts = plan.counts(len(context.classes))
        total = sum(counts)
        missing = [context.classes.name(i) for i, n in enumerate(counts) if n == 0]
        if missing:
            raise ConfigError(
                f"logit_adjustment needs every class in the training part; none of "
                f"{', '.join(missing)}",
                where="training part",
                hint="check the split, or leave logit_adjustment out",
            )
        offsets = tuple(self.tau * math.log(n / total) for n in counts)
        shown = ", ".join(
            f"{context.classes.name(i)}={value:+.2f}" for i, value in enumerate(offsets)
        )
        return attrs.evolve(
            plan,
            logit_offsets=offsets,
            notes=(*plan.notes, f"logit_adjustment (tau {self.tau:g}), loss offsets: {shown}"),
        )
