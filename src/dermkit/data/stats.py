"""Class-count statistics: loss weights against imbalance, and how imbalanced a set is.

Pure functions of a list of per-class image counts (label ``i`` has ``counts[i]``
images), so they are cheap, easy to test, and usable before any pixels are loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from dermkit.errors import ConfigError, DataError

WeightMode = Literal["balanced", "majority"]


def _checked(counts: Sequence[int], where: str) -> list[int]:
    values = [int(c) for c in counts]
    if any(v != c for v, c in zip(values, counts, strict=True)):
        raise DataError(f"class counts must be whole numbers, got {list(counts)}", where=where)
    negative = [i for i, v in enumerate(values) if v < 0]
    if negative:
        raise DataError(
            f"class counts cannot be negative (label {negative[0]} has {values[negative[0]]})",
            where=where,
        )
    if sum(values) == 0:
        raise DataError(
            "every class has zero images",
            where=where,
            hint="compute the statistics on a non-empty training part",
        )
    return values


def class_weights(counts: Sequence[int], mode: WeightMode = "balanced") -> dict[int, float]:
    """Loss weight per label, larger for rarer classes, for Keras' ``class_weight``.

    ``"balanced"`` is scikit-learn's ``n / (k * n_c)``: every class contributes the same
    total weight, and the mean weight over the images is 1, so the loss (and hence the
    learning rate) keeps its usual scale. ``"majority"`` is ``n_max / n_c``, the original
    study's normalisation, in which the largest class (nv in HAM10000) weighs exactly 1.0.
    The ratios between classes are the same in both modes.

    A class with zero images gets weight 0.0 and is left out of ``k``: it never appears in
    a batch, so its weight is never used, while an infinite weight would break JSON and
    make Keras' weighted mean undefined. Leaving it out of ``k`` keeps the "mean weight is
    1" property of the balanced mode over the images that do exist.
    """
    if mode not in ("balanced", "majority"):
        raise ConfigError(
            f"unknown class-weight mode {mode!r}",
            where="mode",
            hint="use 'balanced' or 'majority'",
        )
    values = _checked(counts, "class_weights")
    present = [v for v in values if v > 0]
    if mode == "balanced":
        total, k = sum(present), len(present)
        return {i: (total / (k * v) if v > 0 else 0.0) for i, v in enumerate(values)}
    largest = max(present)
    return {i: (largest / v if v > 0 else 0.0) for i, v in enumerate(values)}


def imbalance_ratio(counts: Sequence[int]) -> float:
    """Images of the largest class per image of the smallest: 1.0 for a balanced set.

    Only classes with at least one image count: a missing class is a different problem
    (the splitter refuses to produce one) and an infinite ratio would tell nothing about
    the classes that are there. HAM10000's full release gives 6705 / 115, about 58.3.
    """
    present = [v for v in _checked(counts, "imbalance_ratio") if v > 0]
    return max(present) / min(present)
