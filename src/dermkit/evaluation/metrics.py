"""Classification metrics from integer labels and class probabilities, in plain numpy.

scikit-learn is deliberately not a runtime dependency: it would pull SciPy into every
install for a handful of formulas. The tests check each function here against
scikit-learn on random inputs, so the numbers are the ones readers expect.

Conventions that matter when classes are rare (HAM10000's ``df`` and ``vasc`` can have
a dozen test images, and a resample or a small split can have none):

* A quantity whose denominator is zero is ``NaN``, never a silent 0: the recall of a
  class absent from ``y_true``, the precision of a class never predicted, the F1 of a
  class neither present nor predicted, the AUC of a class that is absent or is every
  sample. Reports print these as "–".
* **Balanced accuracy** is the mean recall over the classes *present in* ``y_true``
  (ISIC 2018 Task 3's metric, and scikit-learn's ``balanced_accuracy_score``). An absent
  class has no recall to average, and counting it as 0 would punish a model for a gap
  in the test data.
* **Macro F1** averages over classes present in ``y_true`` or predicted at least once
  (scikit-learn's default label set); **weighted F1** weights by support, so absent
  classes weigh nothing.
* **Macro AUC** averages the one-vs-rest AUCs that are defined; it is ``NaN`` when none is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from dermkit.errors import DataError
from dermkit.evaluation._io import jsonable, numbers

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_SPECIFICITIES: tuple[float, ...] = (0.80, 0.90, 0.95)
"""Specificities at which the positive class's sensitivity is reported (screening use)."""

ECE_BINS = 15
"""Equal-width confidence bins for the expected calibration error (Guo et al., 2017)."""


# --------------------------------------------------------------------------- inputs


def as_labels(y_true: npt.ArrayLike, num_classes: int | None = None) -> IntArray:
    """``y_true`` as a 1-D int64 array, checked to be in ``[0, num_classes)``."""
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        raise DataError(f"labels must be one-dimensional, got shape {labels.shape}", where="y_true")
    integral = np.issubdtype(labels.dtype, np.integer) or np.all(np.mod(labels, 1) == 0)
    if labels.size and not integral:
        raise DataError("labels must be integers", where="y_true")
    out = labels.astype(np.int64)
    if out.size and out.min() < 0:
        raise DataError(f"labels cannot be negative, got {int(out.min())}", where="y_true")
    if num_classes is not None and out.size and out.max() >= num_classes:
        raise DataError(
            f"label {int(out.max())} is out of range for {num_classes} classes", where="y_true"
        )
    return out


def as_probabilities(probabilities: npt.ArrayLike, n: int | None = None) -> FloatArray:
    """``probabilities`` as an ``(n, k)`` float64 array of finite, non-negative scores."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise DataError(
            f"probabilities must have shape (n, num_classes), got {probs.shape}",
            where="probabilities",
        )
    if n is not None and probs.shape[0] != n:
        raise DataError(
            f"{probs.shape[0]} rows of probabilities for {n} labels",
            where="probabilities",
            hint="predict on exactly the records being evaluated, in the same order",
        )
    if not np.all(np.isfinite(probs)):
        raise DataError("probabilities contain NaN or infinity", where="probabilities")
    return probs


# --------------------------------------------------------------------------- counts


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, num_classes: int) -> IntArray:
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as ``j``."""
    truth = as_labels(y_true, num_classes)
    pred = as_labels(y_pred, num_classes)
    if truth.shape != pred.shape:
        raise DataError(f"{truth.size} labels but {pred.size} predictions", where="y_pred")
    flat = np.bincount(truth * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def normalise_rows(confusion: npt.ArrayLike) -> FloatArray:
    """Row-normalised confusion matrix (each row sums to 1); rows without samples are NaN."""
    counts = np.asarray(confusion, dtype=np.float64)
    totals = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), np.nan)


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, np.nan)


def per_class_scores(confusion: npt.ArrayLike) -> dict[str, FloatArray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    Works on a stack of matrices too (``(..., k, k)``), which is what the bootstrap uses.
    """
    counts = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    support = counts.sum(axis=-1)
    predicted = counts.sum(axis=-2)
    fp = predicted - tp
    fn = support - tp
    return {
        "precision": _ratio(tp, predicted),
        "recall": _ratio(tp, support),
        "f1": _ratio(2.0 * tp, 2.0 * tp + fp + fn),
        "support": support,
    }


def _nanmean(values: FloatArray, axis: int = -1) -> FloatArray:
    """Mean over the defined (non-NaN) entries; NaN where none is defined, without warnings."""
    defined = ~np.isnan(values)
    count = defined.sum(axis=axis)
    total = np.where(defined, values, 0.0).sum(axis=axis)
    return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Fraction of samples predicted correctly."""
    truth = as_labels(y_true)
    pred = as_labels(y_pred)
    if truth.shape != pred.shape:
        raise DataError(f"{truth.size} labels but {pred.size} predictions", where="y_pred")
    if truth.size == 0:
        return float("nan")
    return float(np.mean(truth == pred))


def balanced_accuracy_from_confusion(confusion: npt.ArrayLike) -> FloatArray:
    """Mean recall over the classes with samples; works on stacks of matrices."""
    return _nanmean(per_class_scores(confusion)["recall"])


def balanced_accuracy(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, num_classes: int | None = None
) -> float:
    """Mean per-class recall over the classes present in ``y_true`` (ISIC 2018 Task 3)."""
    truth = as_labels(y_true)
    pred = as_labels(y_pred)
    k = num_classes or int(max(truth.max(initial=-1), pred.max(initial=-1)) + 1)
    return float(balanced_accuracy_from_confusion(confusion_matrix(truth, pred, max(k, 1))))


def macro_f1_from_confusion(confusion: npt.ArrayLike) -> FloatArray:
    """Mean F1 over classes present or predicted; works on stacks of matrices."""
    return _nanmean(per_class_scores(confusion)["f1"])


def weighted_f1_from_confusion(confusion: npt.ArrayLike) -> float:
    scores = per_class_scores(confusion)
    support = scores["support"]
    if support.sum() == 0:
        return float("nan")
    f1 = np.where(np.isnan(scores["f1"]), 0.0, scores["f1"])
    return float(np.sum(f1 * support) / support.sum())


# --------------------------------------------------------------------------- ranking


def rankdata(values: npt.ArrayLike) -> FloatArray:
    """1-based ranks, ties given their average rank (``scipy.stats.rankdata``'s default)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    n = x.size
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]] if n else np.zeros(0, bool)
    group = np.cumsum(starts_group) - 1
    bounds = np.r_[np.flatnonzero(starts_group), n]
    mean_rank = (bounds[:-1] + 1 + bounds[1:]) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def binary_auc(is_positive: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """ROC AUC from ranks (Mann-Whitney U), ties counted half; NaN if one class is missing.

    Equal to the trapezoidal area under the ROC curve, hence to scikit-learn's
    ``roc_auc_score``, but O(n log n) and exact under ties.
    """
    positive = np.asarray(is_positive, dtype=bool).reshape(-1)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc_ovr(y_true: npt.ArrayLike, probabilities: npt.ArrayLike) -> FloatArray:
    """One-vs-rest ROC AUC of every class; NaN for a class that is absent or is everything."""
    probs = as_probabilities(probabilities)
    truth = as_labels(y_true, probs.shape[1])
    return np.array(
        [binary_auc(truth == c, probs[:, c]) for c in range(probs.shape[1])], dtype=np.float64
    )


def roc_curve(
    is_positive: npt.ArrayLike, scores: npt.ArrayLike, *, drop_intermediate: bool = True
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(fpr, tpr, thresholds)`` like ``sklearn.metrics.roc_curve``.

    A sample is called positive when its score is ``>= threshold``; the first point is
    ``(0, 0)`` at threshold ``+inf``. ``drop_intermediate`` removes points that lie on a
    straight segment between their neighbours (they add nothing to the curve or its
    area), which keeps curves of large test sets small in ``report.json``. FPR (TPR) is
    NaN throughout when there are no negatives (positives).
    """
    positive = np.asarray(is_positive, dtype=bool).reshape(-1)
    score = np.asarray(scores, dtype=np.float64).reshape(-1)
    if positive.shape != score.shape:
        raise DataError(f"{positive.size} labels but {score.size} scores", where="scores")
    order = np.argsort(-score, kind="mergesort")
    score = score[order]
    hits = positive[order].astype(np.float64)
    distinct = np.flatnonzero(np.diff(score))
    last = np.r_[distinct, score.size - 1] if score.size else np.zeros(0, np.int64)
    tps = np.cumsum(hits)[last]
    fps = 1.0 + last - tps
    thresholds = score[last]
    if drop_intermediate and tps.size > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    tps = np.r_[0.0, tps]
    fps = np.r_[0.0, fps]
    thresholds = np.r_[np.inf, thresholds]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thresholds


# --------------------------------------------------------------------------- value objects


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(values).reshape(-1))


def _int_rows(values: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(_ints(row) for row in np.asarray(values))


@attrs.frozen(slots=True)
class RocCurve:
    """One class's one-vs-rest ROC curve (points after dropping collinear ones)."""

    fpr: tuple[float, ...] = attrs.field(converter=_floats)
    tpr: tuple[float, ...] = attrs.field(converter=_floats)
    thresholds: tuple[float, ...] = attrs.field(converter=_floats)

    def to_json(self) -> dict[str, Any]:
        return {
            "fpr": jsonable(self.fpr),
            "tpr": jsonable(self.tpr),
            "thresholds": jsonable(self.thresholds),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RocCurve:
        return cls(numbers(data["fpr"]), numbers(data["tpr"]), numbers(data["thresholds"]))


@attrs.frozen(slots=True)
class OperatingPoint:
    """The best sensitivity reachable at a specificity of at least ``target_specificity``.

    ``threshold`` is the score cut-off (call positive when ``score >= threshold``) that
    achieves it, and ``specificity`` is what that threshold really achieves on this data.
    """

    target_specificity: float
    sensitivity: float
    specificity: float
    threshold: float

    def to_json(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in attrs.asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OperatingPoint:
        return cls(*numbers(data[f.name] for f in attrs.fields(cls)))


@attrs.frozen(slots=True)
class ReliabilityBins:
    """Top-label confidence histogram: per bin, count, mean confidence and accuracy."""

    edges: tuple[float, ...] = attrs.field(converter=_floats)
    counts: tuple[int, ...] = attrs.field(converter=_ints)
    confidence: tuple[float, ...] = attrs.field(converter=_floats)
    accuracy: tuple[float, ...] = attrs.field(converter=_floats)

    def to_json(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in attrs.asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReliabilityBins:
        return cls(
            edges=numbers(data["edges"]),
            counts=data["counts"],
            confidence=numbers(data["confidence"]),
            accuracy=numbers(data["accuracy"]),
        )


def sensitivity_at_specificity(
    is_positive: npt.ArrayLike,
    scores: npt.ArrayLike,
    specificities: Sequence[float] = DEFAULT_SPECIFICITIES,
) -> tuple[OperatingPoint, ...]:
    """Sensitivity at fixed specificities, read off the full (undropped) ROC curve.

    For each target we take the *achievable* operating point with specificity at
    least the target and the highest sensitivity (ties: the higher specificity), rather
    than interpolating between points: an interpolated value is a threshold no one can
    set, and it flatters small test sets.
    """
    fpr, tpr, thresholds = roc_curve(is_positive, scores, drop_intermediate=False)
    out = []
    for target in specificities:
        if np.isnan(fpr[-1]) or np.isnan(tpr[-1]):
            out.append(OperatingPoint(float(target), float("nan"), float("nan"), float("nan")))
            continue
        allowed = np.flatnonzero(1.0 - fpr >= float(target) - 1e-12)
        best = allowed[-1]  # fpr and tpr never decrease along the curve
        first = int(np.flatnonzero(tpr[: best + 1] == tpr[best])[0])
        out.append(
            OperatingPoint(
                target_specificity=float(target),
                sensitivity=float(tpr[first]),
                specificity=float(1.0 - fpr[first]),
                threshold=float(thresholds[first]),
            )
        )
    return tuple(out)


def reliability_bins(
    y_true: npt.ArrayLike, probabilities: npt.ArrayLike, n_bins: int = ECE_BINS
) -> ReliabilityBins:
    """Bin samples by top-label confidence into ``n_bins`` equal-width bins ``(lo, hi]``."""
    probs = as_probabilities(probabilities)
    truth = as_labels(y_true, probs.shape[1])
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == truth).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins).astype(np.float64)
    acc_sum = np.bincount(index, weights=correct, minlength=n_bins).astype(np.float64)
    return ReliabilityBins(
        edges=edges,
        counts=counts,
        confidence=_ratio(conf_sum, counts),
        accuracy=_ratio(acc_sum, counts),
    )


def expected_calibration_error(
    y_true: npt.ArrayLike, probabilities: npt.ArrayLike, n_bins: int = ECE_BINS
) -> float:
    """Top-label ECE: the count-weighted mean gap between accuracy and confidence per bin."""
    return ece_from_bins(reliability_bins(y_true, probabilities, n_bins))


def ece_from_bins(bins: ReliabilityBins) -> float:
    counts = np.asarray(bins.counts, dtype=np.float64)
    if counts.sum() == 0:
        return float("nan")
    gap = np.abs(np.asarray(bins.accuracy) - np.asarray(bins.confidence))
    return float(np.sum(np.where(counts > 0, gap, 0.0) * counts) / counts.sum())


@attrs.frozen(slots=True)
class Metrics:
    """Every score of one evaluation, as plain numbers (JSON-able through the report).

    Per-class tuples are in class-index order. ``positive_class`` is the label whose
    sensitivity is reported at ``operating_points`` (``None`` when not computed).
    """

    n: int
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    weighted_f1: float
    macro_auc: float
    precision: tuple[float, ...] = attrs.field(converter=_floats)
    recall: tuple[float, ...] = attrs.field(converter=_floats)
    f1: tuple[float, ...] = attrs.field(converter=_floats)
    support: tuple[int, ...] = attrs.field(converter=_ints)
    auc: tuple[float, ...] = attrs.field(converter=_floats)
    confusion: tuple[tuple[int, ...], ...] = attrs.field(converter=_int_rows)
    roc: tuple[RocCurve, ...]
    ece: float
    reliability: ReliabilityBins
    positive_class: int | None = None
    operating_points: tuple[OperatingPoint, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.support)

    def confusion_array(self) -> IntArray:
        return np.asarray(self.confusion, dtype=np.int64).reshape(
            self.num_classes, self.num_classes
        )

    def confusion_normalised(self) -> FloatArray:
        """Row-normalised confusion matrix: row ``i`` is where class ``i`` went."""
        return normalise_rows(self.confusion_array())

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for field in attrs.fields(Metrics):
            value = getattr(self, field.name)
            if field.name == "roc":
                data["roc"] = [curve.to_json() for curve in value]
            elif field.name == "operating_points":
                data["operating_points"] = [point.to_json() for point in value]
            elif field.name == "reliability":
                data["reliability"] = value.to_json()
            else:
                data[field.name] = jsonable(value)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Metrics:
        scalar = {name: numbers([data[name]])[0] for name in _SCALARS}
        positive = data.get("positive_class")
        return cls(
            n=int(data["n"]),
            **scalar,
            precision=numbers(data["precision"]),
            recall=numbers(data["recall"]),
            f1=numbers(data["f1"]),
            support=data["support"],
            auc=numbers(data["auc"]),
            confusion=data["confusion"],
            roc=tuple(RocCurve.from_json(c) for c in data["roc"]),
            reliability=ReliabilityBins.from_json(data["reliability"]),
            positive_class=None if positive is None else int(positive),
            operating_points=tuple(
                OperatingPoint.from_json(p) for p in data.get("operating_points", ())
            ),
        )


_SCALARS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "macro_auc", "ece")


def compute_metrics(
    y_true: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    *,
    positive_class: int | None = None,
    specificities: Sequence[float] = DEFAULT_SPECIFICITIES,
    n_bins: int = ECE_BINS,
) -> Metrics:
    """All metrics for labels ``y_true`` and an ``(n, k)`` probability matrix.

    The predicted class is the arg-max of each row. ``positive_class`` (a label) adds
    its sensitivity at ``specificities``.
    """
    probs = as_probabilities(probabilities)
    k = probs.shape[1]
    truth = as_labels(y_true, k)
    probs = as_probabilities(probs, truth.size)
    if truth.size == 0:
        raise DataError("there is nothing to evaluate: no labels", where="y_true")
    if positive_class is not None and not 0 <= positive_class < k:
        raise DataError(f"positive class {positive_class} is not one of {k} classes")
    pred = probs.argmax(axis=1)
    confusion = confusion_matrix(truth, pred, k)
    scores = per_class_scores(confusion)
    auc = roc_auc_ovr(truth, probs)
    bins = reliability_bins(truth, probs, n_bins)
    points: tuple[OperatingPoint, ...] = ()
    if positive_class is not None:
        points = sensitivity_at_specificity(
            truth == positive_class, probs[:, positive_class], specificities
        )
    return Metrics(
        n=int(truth.size),
        accuracy=float(np.mean(truth == pred)),
        balanced_accuracy=float(balanced_accuracy_from_confusion(confusion)),
        macro_f1=float(macro_f1_from_confusion(confusion)),
        weighted_f1=weighted_f1_from_confusion(confusion),
        macro_auc=float(_nanmean(auc)),
        precision=scores["precision"],
        recall=scores["recall"],
        f1=scores["f1"],
        support=scores["support"],
        auc=auc,
        confusion=confusion,
        roc=tuple(RocCurve(*roc_curve(truth == c, probs[:, c])) for c in range(k)),
        ece=ece_from_bins(bins),
        reliability=bins,
        positive_class=positive_class,
        operating_points=points,
    )
