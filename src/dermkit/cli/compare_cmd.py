"""``dermkit compare``: several runs side by side, from the reports they already wrote.

Nothing is predicted again: each run's ``report_<part>/report.json`` holds every
number, including the bootstrap intervals, so the comparison is instant and shows the
figures exactly as each run reported them. Overlapping intervals are the reader's cue
that a difference may be noise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dermkit.errors import ConfigError

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


def _interval(report: Report, name: str) -> list[float] | None:
    if report.intervals is None:
        return None
    interval = getattr(report.intervals, name)
    return [interval.low, interval.high] if interval.defined else None


def to_json(reports: dict[str, Report], part: str) -> list[dict[str, Any]]:
    from dermkit.evaluation._io import jsonable

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
            }
        )
    result: list[dict[str, Any]] = jsonable(rows)
    return result


def run(args: argparse.Namespace) -> int:
    from dermkit.evaluation.report import compare_reports

    reports = read_reports(list(args.runs), args.part)
    if args.json:
        print(json.dumps(to_json(reports, args.part), indent=2, ensure_ascii=False))
    else:
        print(compare_reports(reports), end="")
    return 0
