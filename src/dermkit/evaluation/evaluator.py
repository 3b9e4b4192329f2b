"""The standard evaluator: predictions on labelled records in, a :class:`Report` out.

It takes *probabilities*, not a model: prediction (plain, with test-time augmentation,
or after temperature scaling) is the caller's choice, and keeping TensorFlow out of
scoring makes every metric testable with plain arrays.

Probability columns follow the model's class index; record labels follow the class
index of the dataset they were read from. The two are matched by name
(:mod:`~dermkit.evaluation.classmap`) whenever the records' index is known: pass a
:class:`~dermkit.core.LoadedDataset` (it carries its classes) or ``record_classes=``.

Balanced-test mode reproduces the original study's test: the same number of random
test images of every class, so plain accuracy stops being mostly a measure of ``nv``.
Small classes are drawn with replacement to reach that number; the duplicates share
their lesion id, so the cluster bootstrap still sees them as one lesion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import numpy as np
import numpy.typing as npt

from dermkit.core import ClassIndex, LoadedDataset, Record
from dermkit.data.sampling import balanced_indices
from dermkit.errors import ConfigError, DataError
from dermkit.evaluation.bootstrap import bootstrap_intervals
from dermkit.evaluation.classmap import align_records
from dermkit.evaluation.comparison import DIGEST_KEY, records_digest
from dermkit.evaluation.metrics import DEFAULT_SPECIFICITIES, as_probabilities, compute_metrics
from dermkit.evaluation.report import Report

ROW_SUM_TOLERANCE = 1e-2
"""How far a row of probabilities may be from summing to 1 (float16 outputs drift)."""


def _specificities(value: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value)


def _check_specificities(_: object, __: attrs.Attribute[Any], value: tuple[float, ...]) -> None:
    for v in value:
        if not 0.0 < v < 1.0:
            raise ConfigError(
                f"specificity {v} is not strictly between 0 and 1", where="specificities"
            )


def _optional_positive(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{attribute.name} must be at least 1, got {value}", where=attribute.name)


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise ConfigError(f"{attribute.name} cannot be negative, got {value}", where=attribute.name)


@attrs.frozen(slots=True)
class StandardEvaluator:
    """Every metric dermkit reports, with lesion-level bootstrap intervals.

    ``n_boot=0`` skips the intervals. ``positive_class`` names the class whose
    sensitivity is reported at ``specificities``; if the class list lacks the default
    ``"mel"`` that table is left out with a note, while any other missing name is an
    error. ``balanced_test`` evaluates on ``per_class_test`` random images per class
    (default: the size of the smallest class present, so nothing is duplicated).
    """

    name: ClassVar[str] = "standard"
    n_boot: int = attrs.field(default=1000, validator=_non_negative)
    seed: int = 0
    positive_class: str = "mel"
    specificities: tuple[float, ...] = attrs.field(
        default=DEFAULT_SPECIFICITIES, converter=_specificities, validator=_check_specificities
    )
    balanced_test: bool = False
    per_class_test: int | None = attrs.field(default=None, validator=_optional_positive)

    def __attrs_post_init__(self) -> None:
        if self.per_class_test is not None and not self.balanced_test:
            raise ConfigError(
                "per_class_test only applies to a balanced test",
                where="per_class_test",
                hint="set balanced_test=True as well, or drop per_class_test",
            )

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["specificities"] = list(self.specificities)
        return data

    def evaluate(
        self,
        probabilities: npt.ArrayLike,
        records: Sequence[Record] | LoadedDataset,
        classes: ClassIndex,
        *,
        record_classes: ClassIndex | None = None,
    ) -> Report:
        """Score ``probabilities``: one row per record, columns in ``classes`` order.

        ``classes`` is the model's class index. The records' labels are read in
        ``record_classes``: by default the :class:`LoadedDataset`'s own classes when
        ``records`` is one, else ``classes`` itself. When the two differ, labels are
        mapped by name; images of a class the model does not know are a
        :class:`DataError`.
        """
        if isinstance(records, LoadedDataset):
            record_classes = record_classes or records.classes
            source = records.source or None
            records = records.records
        else:
            source = None
        k = len(classes)
        probs = as_probabilities(probabilities, len(records))
        if probs.shape[1] != k:
            raise DataError(
                f"probabilities have {probs.shape[1]} columns but the model's class index has "
                f"{k} classes ({', '.join(classes)})",
                where="probabilities",
                hint="pass the class index of the model that made the predictions "
                "(run.classes), or score with run.evaluate(dataset)",
            )
        sums = probs.sum(axis=1)
        if np.any(probs < 0) or np.any(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE):
            raise DataError(
                "rows of probabilities must be non-negative and sum to 1",
                where="probabilities",
                hint="apply a softmax to logits first "
                "(TemperatureScaling(1.0).apply(logits, kind='logits'))",
            )
        if record_classes is not None:
            records = align_records(records, record_classes, classes, where=source).records
        synthetic = [r for r in records if r.is_synthetic]
        if synthetic:
            raise DataError(
                f"{len(synthetic)} synthetic record(s) among the evaluated ones, e.g. "
                f"{synthetic[0].path}",
                where="records",
                hint="generated images may be used for training only",
            )
        labels = np.array([r.label for r in records], dtype=np.int64)
        if labels.size and labels.max() >= k:
            raise DataError(
                f"label {int(labels.max())} is out of range for {k} classes", where="records"
            )
        groups = [r.group for r in records]

        notes: list[str] = []
        evaluation: dict[str, Any] = {
            "evaluator": self.name,
            "options": self.to_json(),
            "records": len(records),
            DIGEST_KEY: records_digest((classes.name(r.label), r.path) for r in records),
        }
        if self.balanced_test:
            present = np.bincount(labels, minlength=k)
            per_class = self.per_class_test or int(present[present > 0].min())
            index = balanced_indices(labels.tolist(), per_class, seed=self.seed)
            probs, labels = probs[index], labels[index]
            groups = [groups[i] for i in index]
            small = [classes.name(c) for c in range(k) if 0 < present[c] < per_class]
            absent = [classes.name(c) for c in range(k) if present[c] == 0]
            evaluation.update(
                balanced_test=True,
                per_class=per_class,
                seed=self.seed,
                drawn_with_replacement=small,
                absent_classes=absent,
            )
            if absent:
                notes.append(
                    f"Balanced test: no test images of {', '.join(absent)}; "
                    "these classes are not part of the balance."
                )

        positive = self._positive_index(classes, notes)
        metrics = compute_metrics(
            labels, probs, positive_class=positive, specificities=self.specificities
        )
        intervals = None
        if self.n_boot > 0:
            intervals = bootstrap_intervals(
                labels,
                probs.argmax(axis=1),
                k,
                groups=groups,
                n_boot=self.n_boot,
                seed=self.seed,
            )
        missing = [classes.name(c) for c in range(k) if metrics.support[c] == 0]
        if missing and not self.balanced_test:
            notes.append(
                f"No evaluated images of {', '.join(missing)}: their recall and AUC are "
                "undefined and balanced accuracy averages the other classes."
            )
        return Report(
            class_names=classes.names,
            metrics=metrics,
            intervals=intervals,
            evaluation=evaluation,
            notes=tuple(notes),
        )

    def _positive_index(self, classes: ClassIndex, notes: list[str]) -> int | None:
        if self.positive_class in classes:
            return classes.index(self.positive_class)
        if self.positive_class == "mel":
            notes.append(
                "No class named 'mel': sensitivity at fixed specificity was not computed "
                "(set positive_class to report it for another class)."
            )
            return None
        raise ConfigError(
            f"positive_class {self.positive_class!r} is not one of the classes",
            where="positive_class",
            hint=f"use one of {', '.join(classes.names)}",
        )
