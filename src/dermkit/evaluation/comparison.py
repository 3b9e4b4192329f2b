"""Runs side by side, and what makes them not comparable.

A table of balanced accuracies invites reading the best row as the best model. That
holds only when the runs were scored on the same images with the same classes, and
says something only when one knows what else differed. So alongside the table this
module finds runs scored on different test sets (by :func:`records_digest`, which the
evaluator stores in each report) or with different class lists, and the settings that
differ between runs (their configurations, flattened to dotted keys).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dermkit.evaluation._format import flatten, value_with_ci
from dermkit.evaluation._io import fmt, jsonable

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.evaluation.report import Report

DIGEST_KEY = "records_digest"
"""Where a report's ``evaluation`` keeps the identity of the images it scored."""

EVALUATION_SETTINGS: dict[str, Any] = {
    "part": None,
    "tta": False,
    "calibrated": False,
    "balanced_test": False,
    "per_class": None,
}
"""How a report's numbers were made (from its ``evaluation``), compared with the config,
with the value a report that does not mention it was made with (``None``: no default)."""


class _Missing:
    """A setting a run does not have (distinct from a setting whose value is null)."""

    def __repr__(self) -> str:
        return "–"

    __str__ = __repr__


MISSING: Any = _Missing()


def records_digest(labelled: Iterable[tuple[str, str | os.PathLike[str]]]) -> str:
    """A short fingerprint of a set of ``(class name, image path)`` pairs.

    Order does not matter, and only the file *name* counts, not its folder: the same
    test images read from another copy of the data, or from another working folder,
    are the same test set, while a different split of the same data is not.
    """
    lines = sorted(f"{name}\t{os.path.basename(os.fspath(path))}" for name, path in labelled)
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
    return f"sha256:{digest[:16]}:{len(lines)}"


def compare_reports(reports: Mapping[str, Report]) -> str:
    """A Markdown table: n, BA and accuracy with CIs, macro F1, recall per class.

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
        "n",
        "Balanced accuracy (95% CI)",
        "Accuracy (95% CI)",
        "Macro F1",
        *[f"Recall {n}" for n in names],
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for run, report in reports.items():
        iv = report.intervals
        cells = [
            run.replace("|", "\\|"),
            str(report.metrics.n),
            value_with_ci(report.balanced_accuracy, None if iv is None else iv.balanced_accuracy),
            value_with_ci(report.accuracy, None if iv is None else iv.accuracy),
            fmt(report.macro_f1),
        ]
        for name in names:
            value = report.recall_of(name) if name in report.class_names else math.nan
            cells.append(fmt(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _groups(values: Mapping[str, Any]) -> list[list[str]]:
    """Runs grouped by equal value, groups in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for run, value in values.items():
        groups.setdefault(json.dumps(jsonable(value), sort_keys=True), []).append(run)
    return list(groups.values())


def comparison_warnings(
    reports: Mapping[str, Report], test_sets: Mapping[str, str | None]
) -> list[str]:
    """Why the rows of :func:`compare_reports` may not be comparable, one line each.

    ``test_sets`` maps each run to its :func:`records_digest`, or ``None`` when the
    images it was scored on are not known.
    """
    warnings: list[str] = []
    class_groups = _groups({run: list(r.class_names) for run, r in reports.items()})
    if len(class_groups) > 1:
        shown = "; ".join(
            f"{', '.join(runs)}: {', '.join(reports[runs[0]].class_names)}" for runs in class_groups
        )
        warnings.append(
            f"the runs have different class lists ({shown}); balanced accuracy and macro F1 "
            "average over different classes"
        )
    known = {run: test_sets[run] for run in reports if test_sets.get(run) is not None}
    set_groups = _groups(known)
    if len(set_groups) > 1:
        shown = "; ".join(
            " and ".join(f"{run} (n={reports[run].metrics.n})" for run in runs)
            for runs in set_groups
        )
        warnings.append(
            f"the runs were scored on different test sets ({shown}); "
            "their figures are not directly comparable"
        )
    unknown = [run for run in reports if test_sets.get(run) is None]
    if unknown and len(reports) > 1:
        warnings.append(
            f"cannot tell which images {', '.join(unknown)} "
            f"{'was' if len(unknown) == 1 else 'were'} scored on (a report from an older "
            "dermkit, without split.csv beside it): check that the test sets match"
        )
    return warnings


def run_settings(report: Report) -> dict[str, Any]:
    """A report's run configuration, plus how its numbers were made, as dotted keys."""
    settings = dict(flatten(report.config))
    for key, default in EVALUATION_SETTINGS.items():
        value = report.evaluation.get(key, default)
        if value is not None:
            settings[f"evaluation.{key}"] = value
    return settings


def setting_differences(
    settings: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, dict[str, Any]]]:
    """``[(dotted key, {run: value})]`` for every key whose value is not the same in all
    runs; a run without the key has :data:`MISSING`. Keys in order of first appearance."""
    keys: list[str] = []
    for values in settings.values():
        keys += [k for k in values if k not in keys]
    out: list[tuple[str, dict[str, Any]]] = []
    for key in keys:
        row = {run: values.get(key, MISSING) for run, values in settings.items()}
        if len(_groups(row)) > 1:
            out.append((key, row))
    return out


def render_differences(differences: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The setting differences as a Markdown table (or a line saying there are none)."""
    if not differences:
        return "Settings: the same in every run.\n"
    runs = list(differences[0][1])
    lines = [
        "Settings that differ:",
        "",
        "| Setting | " + " | ".join(r.replace("|", "\\|") for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for key, row in differences:
        cells = [_setting_cell(row[run]) for run in runs]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _setting_cell(value: Any) -> str:
    if value is MISSING:
        return str(MISSING)
    text = json.dumps(jsonable(value), ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")
