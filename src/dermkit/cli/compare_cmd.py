"""``dermkit compare``: several runs side by side, from the reports they already wrote.

Nothing is predicted again: each run's ``report_<part>/report.json`` holds every
number, including the bootstrap intervals, so the comparison is instant and shows the
figures exactly as each run reported them. Overlapping intervals are the reader's cue
that a difference may be noise.

A table invites reading the best row as the best model, so the command also says when
that reading is wrong (runs scored on different test sets or with different class
lists: a warning on stderr) and what else differed between the runs (the settings
table under the figures). See :mod:`dermkit.evaluation.comparison`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dermkit.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.evaluation.report import Report


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare finished runs: balanced accuracy with CI, accuracy, macro F1, recall",
        description=(
            "Compare runs from their saved reports (RUN/report_<part>/report.json); a RUN may "
            "also be a report folder, such as one written by `dermkit evaluate`."
        ),
    )
    parser.add_argument("runs", metavar="RUN", nargs="+", help="run folders (or report folders)")
    parser.add_argument(
        "--part", default="test", choices=("test", "val"), help="which report (default: test)"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(handler=run)


def report_path(run: Path, part: str) -> Path:
    """``RUN/report_<part>/report.json``, or ``RUN/report.json`` for a report folder."""
    direct = run / "report.json"
    if direct.is_file():
        return direct
    return run / f"report_{part}" / "report.json"


def read_reports(runs: list[str], part: str) -> dict[str, Report]:
    """Reports by run label; one :class:`ConfigError` naming every run without one."""
    from dermkit.evaluation.report import Report

    absent = [run for run in runs if not Path(run).exists()]
    if absent:
        raise ConfigError(
            f"no such run folder: {', '.join(absent)}",
            hint="check the path; runs are the folders `dermkit train --out` wrote",
        )
    not_folders = [run for run in runs if not Path(run).is_dir()]
    if not_folders:
        raise ConfigError(
            f"not a folder: {', '.join(not_folders)}",
            hint="pass run folders, or report folders written by `dermkit evaluate`",
        )
    missing = [run for run in runs if not report_path(Path(run), part).is_file()]
    if missing:
        raise ConfigError(
            f"no report_{part}/report.json in {', '.join(missing)}",
            hint="a run writes its reports when training ends; finish it with "
            "`dermkit train ... --resume`"
            + ("" if part == "val" else ", or compare the validation reports (--part val)"),
        )
    reports: dict[str, Report] = {}
    for run in runs:
        label = run
        number = 1
        while label in reports:
            number += 1
            label = f"{run} ({number})"
        reports[label] = Report.read(report_path(Path(run), part))
    return reports


def run_folder(label: str) -> Path:
    """The folder a report label came from (labels of repeated runs end in `` (n)``)."""
    path = Path(label)
    if not path.exists() and label.endswith(")") and " (" in label:
        path = Path(label.rsplit(" (", 1)[0])
    return path


def test_set(report: Report, folder: Path, part: str) -> str | None:
    """The identity of the images a report scored (see ``records_digest``).

    Reports store it; for older ones it is rebuilt from the run's ``split.csv``.
    ``None`` when neither is there.
    """
    from dermkit.data.splits import read_split_manifest
    from dermkit.evaluation.comparison import DIGEST_KEY, records_digest

    stored = report.evaluation.get(DIGEST_KEY)
    if isinstance(stored, str):
        return stored
    manifest = folder / "split.csv"
    if (folder / "report.json").is_file() or not manifest.is_file():
        return None  # a report folder: its split.csv, if any, is not the one it scored
    try:
        split = read_split_manifest(manifest)
    except DataError:
        return None
    records = getattr(split, part)
    names = report.class_names
    if any(r.label >= len(names) for r in records):
        return None
    return records_digest((names[r.label], r.path) for r in records)


def test_sets(reports: dict[str, Report], part: str) -> dict[str, str | None]:
    return {label: test_set(r, run_folder(label), part) for label, r in reports.items()}


def _interval(report: Report, name: str) -> list[float] | None:
    if report.intervals is None:
        return None
    interval = getattr(report.intervals, name)
    return [interval.low, interval.high] if interval.defined else None


def to_json(
    reports: dict[str, Report], part: str, sets: dict[str, str | None] | None = None
) -> list[dict[str, Any]]:
    from dermkit.evaluation._io import jsonable
    from dermkit.evaluation.comparison import MISSING, run_settings, setting_differences

    sets = sets if sets is not None else test_sets(reports, part)
    differences = setting_differences({k: run_settings(r) for k, r in reports.items()})
    rows = []
    for label, report in reports.items():
        rows.append(
            {
                "run": label,
                "part": part,
                "images": report.metrics.n,
                "balanced_accuracy": report.balanced_accuracy,
                "balanced_accuracy_ci": _interval(report, "balanced_accuracy"),
                "accuracy": report.accuracy,
                "accuracy_ci": _interval(report, "accuracy"),
                "macro_f1": report.macro_f1,
                "recall": {name: report.recall_of(name) for name in report.class_names},
                "class_names": list(report.class_names),
                "test_set": sets.get(label),
                "differing_settings": {
                    key: None if row[label] is MISSING else row[label] for key, row in differences
                },
                "warnings": list(report.warnings),
            }
        )
    result: list[dict[str, Any]] = jsonable(rows)
    return result


def run(args: argparse.Namespace) -> int:
    from dermkit.evaluation.comparison import (
        compare_reports,
        comparison_warnings,
        render_differences,
        run_settings,
        setting_differences,
    )

    reports = read_reports(list(args.runs), args.part)
    sets = test_sets(reports, args.part)
    for warning in comparison_warnings(reports, sets):
        print(f"dermkit: warning: {warning}", file=sys.stderr)
    for label, report in reports.items():
        for warning in report.warnings:
            print(f"dermkit: warning: {label}: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(reports, args.part, sets), indent=2, ensure_ascii=False))
        return 0
    print(compare_reports(reports), end="")
    if len(reports) > 1:
        differences = setting_differences({k: run_settings(r) for k, r in reports.items()})
        print()
        print(render_differences(differences), end="")
    return 0
