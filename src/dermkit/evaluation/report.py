"""The evaluation report: every number of a run, and how to write it for people and tools.

A :class:`Report` is a frozen value: metrics and their confidence intervals from the
evaluator, plus the context a reader needs to judge them (configuration, how many
images of each class each part had, which inputs were skipped, the training history).
The evaluator fills in the metrics; the experiment that knows the rest adds it with
:meth:`Report.with_context`. ``write`` produces a folder that stands on its own:

* ``report.json``: everything, strict JSON; :meth:`Report.read` restores the report.
* ``report.md``: the same for people, with the figures linked by relative paths so
  the folder can be moved, zipped or rendered on GitHub.
* the PNG figures of :mod:`dermkit.evaluation.plots`.

matplotlib is imported only by ``write``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dermkit.core import ClassIndex, Problem, Record
from dermkit.errors import DataError
from dermkit.evaluation._io import atomic_write_text, fmt, jsonable, number
from dermkit.evaluation.bootstrap import NAN_INTERVAL, BootstrapResult, Interval
from dermkit.evaluation.metrics import Metrics

FORMAT = "dermkit-report"
FORMAT_VERSION = 1

MAX_SKIPPED_IN_MARKDOWN = 50
"""Skipped files listed in ``report.md``; ``report.json`` always has all of them."""


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


def _flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _cell(value: Any) -> str:
    text = json.dumps(jsonable(value), ensure_ascii=False) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


def _with_ci(value: float, interval: Interval | None, spec: str = ".3f") -> tuple[str, str]:
    if interval is None or not interval.defined:
        return fmt(value, spec), "–"
    mark = "*" if interval.widened else ""
    return fmt(value, spec), f"{interval.low:{spec}} – {interval.high:{spec}}{mark}"


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

    # ------------------------------------------------------------------ Markdown

    def headline(self) -> dict[str, float | int]:
        """The headline numbers as a flat mapping (for ``summary.json`` and logs).

        Intervals appear as ``<metric>_ci_low`` / ``<metric>_ci_high`` when computed.
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
            for key in ("balanced_accuracy", "accuracy"):
                interval: Interval = getattr(self.intervals, key)
                out[f"{key}_ci_low"] = interval.low
                out[f"{key}_ci_high"] = interval.high
        out["n"] = m.n
        return out

    def summary_line(self) -> str:
        """One line: balanced accuracy with its interval, and on how much data."""
        interval = None if self.intervals is None else self.intervals.balanced_accuracy
        value, ci = _with_ci(self.balanced_accuracy, interval)
        ci_text = "" if ci == "–" else f" (95% CI {ci.rstrip('*')})"
        return (
            f"Balanced accuracy {value}{ci_text}, accuracy {fmt(self.accuracy)}, "
            f"macro F1 {fmt(self.macro_f1)} on {self.metrics.n} images."
        )

    def to_markdown(self, figures: Mapping[str, str] | None = None) -> str:
        """The report as Markdown; ``figures`` maps plot name to a relative PNG path."""
        from dermkit.evaluation.plots import PLOT_FILES

        m = self.metrics
        iv = self.intervals
        lines = [f"# {self.title}", "", f"**{self.summary_line()}**", ""]

        if self.config:
            lines += ["## Configuration", "", "| Setting | Value |", "|---|---|"]
            lines += [f"| {key} | {_cell(value)} |" for key, value in _flatten(self.config)]
            lines.append("")

        lines += self._data_section()
        lines += self._evaluation_section()

        level = 95 if iv is None else round(iv.level * 100)
        lines += ["## Metrics", "", f"| Metric | Value | {level}% CI |", "|---|---:|---:|"]
        rows: list[tuple[str, float, Interval | None]] = [
            (
                "Balanced accuracy (mean recall)",
                m.balanced_accuracy,
                None if iv is None else iv.balanced_accuracy,
            ),
            ("Accuracy", m.accuracy, None if iv is None else iv.accuracy),
            ("Macro F1", m.macro_f1, None if iv is None else iv.macro_f1),
            ("Weighted F1", m.weighted_f1, None),
            ("Macro ROC AUC (one vs rest)", m.macro_auc, None),
            (f"Expected calibration error ({len(m.reliability.counts)} bins)", m.ece, None),
        ]
        for label, value, interval in rows:
            shown, ci = _with_ci(value, interval)
            lines.append(f"| {label} | {shown} | {ci} |")
        lines.append("")

        lines += [
            "## Per class",
            "",
            f"| Class | Support | Precision | Recall | Recall {level}% CI | F1 | ROC AUC |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c, name in enumerate(self.class_names):
            recall, ci = _with_ci(m.recall[c], None if iv is None else iv.recall[c])
            lines.append(
                f"| {name} | {m.support[c]} | {fmt(m.precision[c])} | {recall} | {ci} | "
                f"{fmt(m.f1[c])} | {fmt(m.auc[c])} |"
            )
        lines += [
            "",
            "A dash marks a value that is undefined on this data "
            "(no images of the class, or the class never predicted).",
        ]
        if iv is not None and any(
            i.widened for i in (iv.accuracy, iv.balanced_accuracy, iv.macro_f1, *iv.recall)
        ):
            lines.append(
                "\\* The percentile interval did not contain the estimate (skewed resamples); "
                "it was widened to include it."
            )
        lines.append("")

        if m.positive_class is not None and m.operating_points:
            name = self.class_names[m.positive_class]
            lines += [
                f"## Sensitivity for {name} at fixed specificity",
                "",
                "Best achievable operating point with at least the target specificity "
                f"(call {name} when its probability is at least the threshold).",
                "",
                "| Target specificity | Sensitivity | Achieved specificity | Threshold |",
                "|---:|---:|---:|---:|",
            ]
            for p in m.operating_points:
                lines.append(
                    f"| {p.target_specificity:.2f} | {fmt(p.sensitivity)} | "
                    f"{fmt(p.specificity)} | {fmt(p.threshold, '.4f')} |"
                )
            lines.append("")

        lines += self._confusion_section()

        if figures is None:
            figures = {}
        captions = {
            "training_curves": "Training curves",
            "confusion_matrix": "Confusion matrix",
            "roc_curves": "ROC curves",
            "per_class_recall": "Per-class recall",
            "reliability": "Reliability diagram",
        }
        present = [(k, figures[k]) for k in PLOT_FILES if k in figures]
        if present:
            lines += ["## Figures", ""]
            for key, rel in present:
                lines += [
                    f"### {captions.get(key, key)}",
                    "",
                    f"![{captions.get(key, key)}]({rel})",
                    "",
                ]

        if self.skipped:
            lines += self._skipped_section()
        if self.notes:
            lines += ["## Notes", ""] + [f"- {note}" for note in self.notes] + [""]
        return "\n".join(lines).rstrip() + "\n"

    def _data_section(self) -> list[str]:
        if not self.data_counts:
            return []
        parts = list(self.data_counts)
        names = list(self.class_names)
        for part_counts in self.data_counts.values():
            names += [c for c in part_counts if c not in names]
        header = "| Class | " + " | ".join(parts) + " | total |"
        lines = [
            "## Data",
            "",
            "Images per class in each part.",
            "",
            header,
            "|---|" + "---:|" * (len(parts) + 1),
        ]
        totals = [0] * len(parts)
        for name in names:
            row = [self.data_counts[p].get(name, 0) for p in parts]
            totals = [t + v for t, v in zip(totals, row, strict=True)]
            lines.append(f"| {name} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
        lines.append(
            "| **total** | " + " | ".join(f"**{t}**" for t in totals) + f" | **{sum(totals)}** |"
        )
        lines += [
            "",
            f"Skipped inputs: {len(self.skipped)}"
            + (" (listed at the end)." if self.skipped else "."),
            "",
        ]
        return lines

    def _evaluation_section(self) -> list[str]:
        ev = self.evaluation
        iv = self.intervals
        lines = ["## Evaluation", ""]
        lines.append(f"- Images evaluated: {self.metrics.n}.")
        if ev.get("balanced_test"):
            per = ev.get("per_class")
            lines.append(
                f"- Balanced test: {per} random images per class drawn from the test part "
                f"(seed {ev.get('seed')}); classes with fewer images were drawn with "
                "replacement. Accuracy on a balanced test is close to balanced accuracy."
            )
        if iv is not None:
            unit = (
                f"{iv.n_groups} lesions (cluster bootstrap)"
                if iv.grouped
                else (f"{iv.n_groups} images")
            )
            lines.append(
                f"- Confidence intervals: {round(iv.level * 100)}% percentile bootstrap, "
                f"{iv.n_boot} resamples of {unit}, seed {iv.seed}."
            )
        else:
            lines.append("- Confidence intervals: not computed.")
        lines.append(
            "- Balanced accuracy averages recall over the classes present in the evaluated images."
        )
        lines.append("")
        return lines

    def _confusion_section(self) -> list[str]:
        counts = self.metrics.confusion_array()
        names = self.class_names
        lines = [
            "## Confusion matrix",
            "",
            "Rows: true class; columns: predicted class.",
            "",
            "| true \\ predicted | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for name, row in zip(names, counts, strict=True):
            lines.append(f"| **{name}** | " + " | ".join(str(int(v)) for v in row) + " |")
        lines.append("")
        return lines

    def _skipped_section(self) -> list[str]:
        lines = ["## Skipped inputs", "", f"{len(self.skipped)} input(s) could not be used:", ""]
        for problem in self.skipped[:MAX_SKIPPED_IN_MARKDOWN]:
            lines.append(
                f"- `{problem.source}`: {problem.reason}"
                + (f" ({problem.hint})" if problem.hint else "")
            )
        rest = len(self.skipped) - MAX_SKIPPED_IN_MARKDOWN
        if rest > 0:
            lines.append(f"- … and {rest} more (all are listed in report.json).")
        lines.append("")
        return lines

    # ------------------------------------------------------------------ files

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
        if context is not None:
            return self.with_run_context(context).write(out_dir, plots=plots)
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        if plots:
            from dermkit.evaluation.plots import write_plots

            written.update(write_plots(self, folder))
        figures = {name: path.name for name, path in written.items()}
        atomic_write_text(folder / "report.md", self.to_markdown(figures))
        written["markdown"] = folder / "report.md"
        atomic_write_text(folder / "report.json", self.dumps())
        written["json"] = folder / "report.json"
        return written


def compare_reports(reports: Mapping[str, Report]) -> str:
    """A Markdown table comparing runs: BA and accuracy with CIs, macro F1, recall per class.

    Classes are matched by name, in the order first seen; a run without a class shows a
    dash for it.
    """
    if not reports:
        return "_No reports to compare._\n"
    names: list[str] = []
    for report in reports.values():
        names += [n for n in report.class_names if n not in names]
    header = [
        "Run",
        "Balanced accuracy (95% CI)",
        "Accuracy (95% CI)",
        "Macro F1",
        *[f"Recall {n}" for n in names],
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]

    def with_ci(value: float, interval: Interval | None) -> str:
        shown, ci = _with_ci(value, interval)
        return shown if ci == "–" else f"{shown} ({ci.rstrip('*')})"

    for run, report in reports.items():
        iv = report.intervals
        cells = [
            run.replace("|", "\\|"),
            with_ci(report.balanced_accuracy, None if iv is None else iv.balanced_accuracy),
            with_ci(report.accuracy, None if iv is None else iv.accuracy),
            fmt(report.macro_f1),
        ]
        for name in names:
            value = report.recall_of(name) if name in report.class_names else math.nan
            cells.append(fmt(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
