"""The evaluation report as data: every number of a run, and the context to judge it.

A :class:`Report` is a frozen value: metrics and their confidence intervals from the
evaluator, plus the context a reader needs to judge them (configuration, how many
images of each class each part had, which inputs were skipped, the training history).
The evaluator fills in the metrics; the experiment that knows the rest adds it with
:meth:`Report.with_context`.

This module is the data model and its JSON form (:meth:`Report.read` restores a
``report.json``). How a report looks to people lives in
:mod:`~dermkit.evaluation.report_markdown`, how it becomes a folder of files in
:mod:`~dermkit.evaluation.report_files`, and runs side by side in
:mod:`~dermkit.evaluation.comparison`; ``to_markdown`` and ``write`` are shortcuts to
them. matplotlib is imported only by ``write``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dermkit.core import ClassIndex, Problem, Record
from dermkit.errors import DataError
from dermkit.evaluation._io import fmt, jsonable, number
from dermkit.evaluation.bootstrap import NAN_INTERVAL, BootstrapResult, Interval
from dermkit.evaluation.metrics import Metrics
from dermkit.evaluation.sanity import prediction_warnings

FORMAT = "dermkit-report"
FORMAT_VERSION = 1


def _history(value: Mapping[str, Sequence[Any]] | None) -> dict[str, tuple[float, ...]] | None:
    if value is None:
        return None
    return {str(k): tuple(number(v) for v in values) for k, values in value.items()}


def _strings(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _problems(value: Sequence[Problem]) -> tuple[Problem, ...]:
    return tuple(value)


def _counts(value: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    return {str(part): {str(c): int(n) for c, n in row.items()} for part, row in value.items()}


def count_by_class(
    parts: Mapping[str, Sequence[Record]], classes: ClassIndex
) -> dict[str, dict[str, int]]:
    """Images per class for each part (e.g. ``split.parts()``), every class listed."""
    out: dict[str, dict[str, int]] = {}
    for part, records in parts.items():
        row = dict.fromkeys(classes.names, 0)
        for record in records:
            row[classes.name(record.label)] += 1
        out[part] = row
    return out


def _part_counts(
    value: Mapping[str, Sequence[int] | Mapping[str, int]],
) -> dict[str, Sequence[int] | Mapping[str, int]]:
    return dict(value)


def _skipped(value: Sequence[Problem | Mapping[str, str]]) -> tuple[Problem, ...]:
    return tuple(p if isinstance(p, Problem) else Problem(**p) for p in value)


@attrs.frozen(slots=True)
class RunContext:
    """What an experiment knows about a run that the evaluator does not.

    ``counts`` maps part name to images per class, either as a list in class-index
    order or as ``{class name: count}``; ``skipped`` holds :class:`Problem` objects or
    their JSON; ``part`` names the evaluated part (``"val"``, ``"test"``).
    """

    config: Mapping[str, Any] = attrs.field(factory=dict)
    part: str | None = None
    counts: dict[str, Sequence[int] | Mapping[str, int]] = attrs.field(
        factory=dict, converter=_part_counts
    )
    skipped: tuple[Problem, ...] = attrs.field(default=(), converter=_skipped)
    history: Mapping[str, Sequence[Any]] | None = None
    notes: tuple[str, ...] = attrs.field(default=(), converter=_strings)


@attrs.frozen(slots=True)
class Report:
    """Metrics with intervals, and the context needed to read them.

    ``evaluation`` describes how the numbers were made (evaluator options, balanced-test
    draw, images evaluated); ``config`` is the run's configuration summary;
    ``data_counts`` maps part name to images per class; ``skipped`` lists inputs the
    dataset could not use; ``history`` is Keras' ``History.history``.
    """

    class_names: tuple[str, ...] = attrs.field(converter=_strings)
    metrics: Metrics
    intervals: BootstrapResult | None = None
    history: dict[str, tuple[float, ...]] | None = attrs.field(default=None, converter=_history)
    config: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    data_counts: dict[str, dict[str, int]] = attrs.field(factory=dict, converter=_counts)
    skipped: tuple[Problem, ...] = attrs.field(default=(), converter=_problems)
    evaluation: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    notes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    title: str = "Evaluation report"

    def __attrs_post_init__(self) -> None:
        if len(self.class_names) != self.metrics.num_classes:
            raise DataError(
                f"{len(self.class_names)} class names for metrics of "
                f"{self.metrics.num_classes} classes",
                where="Report",
            )

    # ------------------------------------------------------------------ shortcuts

    @property
    def accuracy(self) -> float:
        return self.metrics.accuracy

    @property
    def balanced_accuracy(self) -> float:
        return self.metrics.balanced_accuracy

    @property
    def macro_f1(self) -> float:
        return self.metrics.macro_f1

    @property
    def macro_auc(self) -> float:
        return self.metrics.macro_auc

    def recall_of(self, class_name: str) -> float:
        return self.metrics.recall[self._index(class_name)]

    def _index(self, class_name: str) -> int:
        try:
            return self.class_names.index(class_name)
        except ValueError:
            raise DataError(
                f"unknown class {class_name!r}", hint=f"classes are {', '.join(self.class_names)}"
            ) from None

    def recall_interval(self, class_name: str) -> Interval:
        if self.intervals is None:
            return NAN_INTERVAL
        return self.intervals.recall[self._index(class_name)]

    def with_context(
        self,
        *,
        history: Mapping[str, Sequence[Any]] | None = None,
        config: Mapping[str, Any] | None = None,
        data_counts: Mapping[str, Mapping[str, int]] | None = None,
        skipped: Sequence[Problem] | None = None,
        notes: Sequence[str] = (),
        title: str | None = None,
    ) -> Report:
        """A copy with the run's context added (arguments left ``None`` keep their value)."""
        changes: dict[str, Any] = {"notes": (*self.notes, *notes)}
        for key, value in (
            ("history", history),
            ("config", config),
            ("data_counts", data_counts),
            ("skipped", skipped),
            ("title", title),
        ):
            if value is not None:
                changes[key] = value
        return attrs.evolve(self, **changes)

    def with_run_context(self, context: RunContext) -> Report:
        """:meth:`with_context` from a :class:`RunContext`."""
        counts: dict[str, dict[str, int]] = {}
        for part, row in context.counts.items():
            if isinstance(row, Mapping):
                counts[part] = {str(k): int(v) for k, v in row.items()}
            else:
                values = list(row)
                if len(values) != len(self.class_names):
                    raise DataError(
                        f"{len(values)} counts for {len(self.class_names)} classes",
                        where=f"counts[{part!r}]",
                    )
                counts[part] = dict(zip(self.class_names, map(int, values), strict=True))
        title = None if context.part is None else f"Evaluation report: {context.part} part"
        report = self.with_context(
            history=context.history,
            config=context.config,
            data_counts=counts,
            skipped=context.skipped,
            notes=context.notes,
            title=title,
        )
        if context.part is not None:
            report = attrs.evolve(report, evaluation={**report.evaluation, "part": context.part})
        return report

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "title": self.title,
            "class_names": list(self.class_names),
            "metrics": self.metrics.to_json(),
            "intervals": None if self.intervals is None else self.intervals.to_json(),
            "history": jsonable(self.history),
            "config": jsonable(self.config),
            "data_counts": jsonable(self.data_counts),
            "skipped": [p.to_json() for p in self.skipped],
            "evaluation": jsonable(self.evaluation),
            "notes": list(self.notes),
            "warnings": list(self.warnings),  # derived; recomputed by from_json
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        if data.get("format") != FORMAT:
            raise DataError("not a dermkit report", hint=f'expected "format": "{FORMAT}"')
        if int(data.get("version", 0)) > FORMAT_VERSION:
            raise DataError(
                f"report format version {data.get('version')} is newer than this dermkit "
                f"reads ({FORMAT_VERSION})",
                hint="upgrade dermkit",
            )
        intervals = data.get("intervals")
        return cls(
            class_names=data["class_names"],
            metrics=Metrics.from_json(data["metrics"]),
            intervals=None if intervals is None else BootstrapResult.from_json(intervals),
            history=data.get("history"),
            config=data.get("config") or {},
            data_counts=data.get("data_counts") or {},
            skipped=tuple(Problem(**p) for p in data.get("skipped", ())),
            evaluation=data.get("evaluation") or {},
            notes=data.get("notes", ()),
            title=data.get("title", "Evaluation report"),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Report:
        """A report from ``report.json`` or from the folder that holds it."""
        source = Path(path)
        if source.is_dir():
            source = source / "report.json"
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError("no report here", where=str(source)) from None
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON: {error}", where=str(source)) from None
        try:
            return cls.from_json(data)
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"malformed report: {error!r}", where=str(source)) from None
        except DataError as error:
            raise DataError(error.message, where=str(source), hint=error.hint) from None

    # ------------------------------------------------------------------ headline

    @property
    def warnings(self) -> tuple[str, ...]:
        """What makes these figures suspect (e.g. a model that predicts one class).

        Derived from the metrics, so every report has them, however it was made.
        """
        return prediction_warnings(self.metrics, self.class_names)

    @property
    def positive_class(self) -> str | None:
        """The class whose sensitivity the report heads with (``"mel"`` by default)."""
        index = self.metrics.positive_class
        return None if index is None else self.class_names[index]

    def headline(self) -> dict[str, float | int]:
        """The headline numbers as a flat mapping (for ``summary.json`` and logs).

        Intervals appear as ``<metric>_ci_low`` / ``<metric>_ci_high`` when computed;
        the positive class's recall (melanoma sensitivity) as ``sensitivity_<class>``.
        """
        m = self.metrics
        out: dict[str, float | int] = {
            "balanced_accuracy": m.balanced_accuracy,
            "accuracy": m.accuracy,
            "macro_f1": m.macro_f1,
            "macro_auc": m.macro_auc,
            "ece": m.ece,
        }
        if self.intervals is not None:
            for key in ("balanced_accuracy", "accuracy", "macro_f1"):
                interval: Interval = getattr(self.intervals, key)
                out[f"{key}_ci_low"] = interval.low
                out[f"{key}_ci_high"] = interval.high
        positive = self.positive_class
        if positive is not None:
            key = f"sensitivity_{positive}"
            out[key] = self.recall_of(positive)
            if self.intervals is not None:
                interval = self.recall_interval(positive)
                out[f"{key}_ci_low"] = interval.low
                out[f"{key}_ci_high"] = interval.high
        out["n"] = m.n
        return out

    def summary_line(self) -> str:
        """One line: balanced accuracy with its interval, on how much data, and warnings."""
        text = f"Balanced accuracy {fmt(self.balanced_accuracy)}"
        iv = self.intervals
        if iv is not None and iv.balanced_accuracy.defined:
            low, high = iv.balanced_accuracy.low, iv.balanced_accuracy.high
            text += f" ({round(iv.level * 100)}% CI {low:.3f} – {high:.3f})"
        text += (
            f", accuracy {fmt(self.accuracy)}, macro F1 {fmt(self.macro_f1)} "
            f"on {self.metrics.n} images."
        )
        for warning in self.warnings:
            text += f" WARNING: {warning}."
        return text

    # ------------------------------------------------------------------ output

    def to_markdown(self, figures: Mapping[str, str] | None = None) -> str:
        """The report as Markdown; ``figures`` maps plot name to a relative PNG path."""
        from dermkit.evaluation.report_markdown import render_markdown

        return render_markdown(self, figures or {})

    def write(
        self,
        out_dir: str | os.PathLike[str],
        *,
        plots: bool = True,
        context: RunContext | None = None,
    ) -> dict[str, Path]:
        """Write ``report.json``, ``report.md`` and (with ``plots``) the PNG figures.

        ``context`` adds the run's context first (see :meth:`with_run_context`). Figures
        first and the JSON last, each file atomically: a folder whose ``report.json``
        exists is complete. Returns name -> path of every file written.
        """
        from dermkit.evaluation.report_files import write_report

        report = self if context is None else self.with_run_context(context)
        return write_report(report, Path(out_dir), plots=plots)


def compare_reports(reports: Mapping[str, Report]) -> str:
    """Moved to :mod:`dermkit.evaluation.comparison`; kept here for existing imports."""
    from dermkit.evaluation.comparison import compare_reports as table

    return table(reports)
