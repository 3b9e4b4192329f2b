"""Bootstrap confidence intervals that respect lesions, and are fast enough to always run.

**Why by group.** HAM10000 has several images of many lesions, and they are far more
alike than two random images. Resampling images treats them as independent evidence
and makes intervals too narrow; the cluster bootstrap resamples *lesions* with
replacement and takes all images of each drawn lesion.

**Why it is fast.** Accuracy, balanced accuracy, per-class recall and macro F1 depend
only on the confusion matrix, and each group adds a fixed vector of confusion counts.
Groups that add the same vector are interchangeable, so drawing ``G`` groups uniformly
with replacement is, in distribution, one multinomial draw over the distinct vectors
(weighted by how many groups share each). 1000 resamples of a 10,000-image test set
are then a ``(1000, P) @ (P, k*k)`` product with ``P`` distinct patterns, typically
a few hundred: milliseconds, with no loss of exactness. Without groups every image is
its own group, and the patterns are just the ``k*k`` confusion cells.

**Percentile intervals, widened to contain the estimate.** The 95% interval is the
2.5th and 97.5th percentile of the resampled statistic. With skewed statistics
(recall near 1 on a small class) the percentile interval can exclude the point
estimate; we then widen the near end to the estimate, so a reported interval always
contains the number it is reported with. The widening is recorded per interval
(``widened``) and in the report's method note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from dermkit.errors import ConfigError, DataError
from dermkit.evaluation.metrics import (
    FloatArray,
    IntArray,
    as_labels,
    balanced_accuracy_from_confusion,
    confusion_matrix,
    macro_f1_from_confusion,
    per_class_scores,
)

_MAX_BLOCK = 4_000_000
"""Largest (resamples x patterns) count matrix held in memory at once."""


@attrs.frozen(slots=True)
class Interval:
    """A confidence interval ``[low, high]``; both NaN when the statistic is undefined."""

    low: float
    high: float
    widened: bool = False
    """True if the percentile interval missed the point estimate and was widened to it."""

    def contains(self, value: float, *, tol: float = 1e-12) -> bool:
        return bool(self.low - tol <= value <= self.high + tol)

    @property
    def defined(self) -> bool:
        return not (np.isnan(self.low) or np.isnan(self.high))

    def to_json(self) -> dict[str, float | bool | None]:
        return {
            "low": None if np.isnan(self.low) else self.low,
            "high": None if np.isnan(self.high) else self.high,
            "widened": self.widened,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Interval:
        low, high = data.get("low"), data.get("high")
        return cls(
            low=float("nan") if low is None else float(low),
            high=float("nan") if high is None else float(high),
            widened=bool(data.get("widened", False)),
        )


NAN_INTERVAL = Interval(float("nan"), float("nan"))


def percentile_interval(samples: npt.ArrayLike, point: float, level: float = 0.95) -> Interval:
    """Percentile interval of ``samples`` (NaNs ignored), widened to contain ``point``."""
    values = np.asarray(samples, dtype=np.float64).reshape(-1)
    values = values[~np.isnan(values)]
    if values.size == 0 or np.isnan(point):
        return NAN_INTERVAL
    alpha = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(values, [alpha, 1.0 - alpha]))
    widened = point < low or point > high
    return Interval(low=min(low, point), high=max(high, point), widened=widened)


@attrs.frozen(slots=True)
class BootstrapResult:
    """Intervals for the headline metrics and for each class's recall."""

    accuracy: Interval
    balanced_accuracy: Interval
    macro_f1: Interval
    recall: tuple[Interval, ...]
    n_boot: int
    level: float
    seed: int
    n_groups: int
    """Resampling units: lesions for a cluster bootstrap, else images."""
    grouped: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy.to_json(),
            "balanced_accuracy": self.balanced_accuracy.to_json(),
            "macro_f1": self.macro_f1.to_json(),
            "recall": [r.to_json() for r in self.recall],
            "n_boot": self.n_boot,
            "level": self.level,
            "seed": self.seed,
            "n_groups": self.n_groups,
            "grouped": self.grouped,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BootstrapResult:
        return cls(
            accuracy=Interval.from_json(data["accuracy"]),
            balanced_accuracy=Interval.from_json(data["balanced_accuracy"]),
            macro_f1=Interval.from_json(data["macro_f1"]),
            recall=tuple(Interval.from_json(r) for r in data["recall"]),
            n_boot=int(data["n_boot"]),
            level=float(data["level"]),
            seed=int(data["seed"]),
            n_groups=int(data["n_groups"]),
            grouped=bool(data["grouped"]),
        )


def _group_patterns(
    y_true: IntArray, y_pred: IntArray, num_classes: int, groups: Sequence[object] | None
) -> tuple[IntArray, FloatArray, int]:
    """Distinct per-group confusion vectors, their share of groups, and the group count."""
    cells = y_true * num_classes + y_pred
    if groups is None:
        group_index = np.arange(cells.size)
    else:
        if len(groups) != cells.size:
            raise DataError(f"{len(groups)} groups for {cells.size} labels", where="groups")
        _, group_index = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
        group_index = group_index.reshape(-1)
    n_groups = int(group_index.max()) + 1
    per_group = np.zeros((n_groups, num_classes * num_classes), dtype=np.int64)
    np.add.at(per_group, (group_index, cells), 1)
    patterns, multiplicity = np.unique(per_group, axis=0, return_counts=True)
    return patterns, multiplicity / n_groups, n_groups


def resample_confusions(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    num_classes: int,
    *,
    groups: Sequence[object] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[IntArray, int]:
    """``(n_boot, k, k)`` confusion matrices of bootstrap resamples, and the unit count."""
    truth = as_labels(y_true, num_classes)
    pred = as_labels(y_pred, num_classes)
    if truth.size == 0:
        raise DataError("cannot bootstrap an empty evaluation", where="y_true")
    if truth.shape != pred.shape:
        raise DataError(f"{truth.size} labels but {pred.size} predictions", where="y_pred")
    patterns, share, n_groups = _group_patterns(truth, pred, num_classes, groups)
    rng = np.random.default_rng(seed)
    block = max(1, _MAX_BLOCK // max(1, len(patterns)))
    out = np.empty((n_boot, num_classes * num_classes), dtype=np.int64)
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        draws = rng.multinomial(n_groups, share, size=size)
        out[start : start + size] = draws @ patterns
    return out.reshape(n_boot, num_classes, num_classes), n_groups


def bootstrap_intervals(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    num_classes: int,
    *,
    groups: Sequence[object] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapResult:
    """Percentile bootstrap intervals for accuracy, balanced accuracy, macro F1, recalls.

    ``groups`` (one id per sample, e.g. the lesion id) switches to the cluster
    bootstrap. In a resample that lacks a class, balanced accuracy averages the classes
    it has (the metric's own definition) and that class's recall is left out of its
    interval.
    """
    if n_boot < 1:
        raise ConfigError(f"n_boot must be at least 1, got {n_boot}", where="n_boot")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must be between 0 and 1, got {level}", where="level")
    truth = as_labels(y_true, num_classes)
    pred = as_labels(y_pred, num_classes)
    point_cm = confusion_matrix(truth, pred, num_classes)
    point = per_class_scores(point_cm)
    cms, n_groups = resample_confusions(
        truth, pred, num_classes, groups=groups, n_boot=n_boot, seed=seed
    )
    totals = cms.sum(axis=(1, 2))
    acc = np.trace(cms, axis1=1, axis2=2) / totals
    recalls = per_class_scores(cms)["recall"]
    return BootstrapResult(
        accuracy=percentile_interval(acc, float(np.trace(point_cm) / point_cm.sum()), level),
        balanced_accuracy=percentile_interval(
            balanced_accuracy_from_confusion(cms),
            float(balanced_accuracy_from_confusion(point_cm)),
            level,
        ),
        macro_f1=percentile_interval(
            macro_f1_from_confusion(cms), float(macro_f1_from_confusion(point_cm)), level
        ),
        recall=tuple(
            percentile_interval(recalls[:, c], float(point["recall"][c]), level)
            for c in range(num_classes)
        ),
        n_boot=n_boot,
        level=level,
        seed=seed,
        n_groups=n_groups,
        grouped=groups is not None,
    )
