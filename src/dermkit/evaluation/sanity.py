"""Warnings about results that are numbers but not a working classifier.

A network that collapsed onto one class (too high a learning rate, no balancing on
HAM10000's 67% ``nv``, too few epochs) still gets a respectable accuracy and a
report full of figures. The signs are in the confusion matrix: nearly every image
predicted as one class while the true labels have several. The check works on the
metrics alone, so every :class:`~dermkit.evaluation.report.Report` carries it, however
it was made (an experiment, ``dermkit evaluate``, ``run.evaluate``, a plugin evaluator,
or ``Report.read`` of an older report).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dermkit.evaluation.metrics import Metrics

SINGLE_CLASS_SHARE = 0.95
"""Share of predictions in one class from which a model counts as predicting one class."""

MIN_IMAGES = 5
"""Below this many evaluated images a lopsided prediction says too little to warn about."""


def single_class_warning(
    metrics: Metrics,
    class_names: Sequence[str],
    *,
    share: float = SINGLE_CLASS_SHARE,
    min_images: int = MIN_IMAGES,
) -> str | None:
    """A warning when one class takes at least ``share`` of the predictions although
    the true labels have several classes and that class is a smaller share of them."""
    confusion = metrics.confusion_array()
    n = int(confusion.sum())
    if n < min_images:
        return None
    predicted = confusion.sum(axis=0)
    true = confusion.sum(axis=1)
    if np.count_nonzero(true) < 2:
        return None
    top = int(np.argmax(predicted))
    predicted_share = predicted[top] / n
    true_share = true[top] / n
    if predicted_share < share or true_share >= share:
        return None
    name = class_names[top]
    return (
        f"the model predicts {name} for {predicted_share:.0%} of the {n} images "
        f"(only {true_share:.0%} are {name}): it has probably collapsed onto one class; "
        "check the class balancing, the learning rate and the number of epochs"
    )


def prediction_warnings(metrics: Metrics, class_names: Sequence[str]) -> tuple[str, ...]:
    """Every warning about ``metrics`` (so far: the single-class check)."""
    warning = single_class_warning(metrics, class_names)
    return () if warning is None else (warning,)
