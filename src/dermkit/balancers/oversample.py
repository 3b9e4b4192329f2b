"""Oversampling: repeat minority-class records, usually paired with augmentation."""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np

from dermkit.core import BalanceContext, Record, TrainingPlan


def _ratio_in_unit_interval(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value}")


@attrs.frozen(slots=True)
class Oversample:
    """Repeat records of small classes until each has ``ratio`` times the largest count.

    Repeats are drawn at random (seeded) without replacement until a class is used up,
    so every original record appears either ``m`` or ``m + 1`` times. Repeated records
    are identical; pair this with :class:`~dermkit.balancers.augment.Augment` so the
    network does not see the same pixels over and over.
    """

    name: ClassVar[str] = "oversample"
    ratio: float = attrs.field(default=1.0, validator=_ratio_in_unit_interval)

    def apply(self, plan: TrainingPlan, context: BalanceContext) -> TrainingPlan:
        rng = np.random.default_rng(context.seed)
        by_class: dict[int, list[Record]] = {}
        for record in plan.records:
            by_class.setdefault(record.label, []).append(record)
        largest = max((len(v) for v in by_class.values()), default=0)
        target = round(largest * self.ratio)
        added: list[Record] = []
        changes: list[str] = []
        for label in sorted(by_class):
            members = by_class[label]
            missing = target - len(members)
            if missing <= 0:
                continue
            full, rest = divmod(missing, len(members))
            extra = members * full + [members[i] for i in rng.permutation(len(members))[:rest]]
            added.extend(extra)
            changes.append(f"{context.classes.name(label)} {len(members)}->{target}")
        note = "oversample (ratio {:.2f}): {}".format(self.ratio, ", ".join(changes) or "no change")
        return attrs.evolve(plan, records=(*plan.records, *added), notes=(*plan.notes, note))
