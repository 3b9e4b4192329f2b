"""``dermkit evaluate``: score a finished run's model on any labelled image set.

The usual use is an external test set, such as the ISIC 2018 Task 3 test images with
their one-hot ground-truth CSV. The scoring is :mod:`dermkit.evaluation.run_scoring`
(also behind ``run.evaluate(...)`` in Python): classes are matched to the run's by
name, never by position, and images of a class the model was never taught are an
error. This module adds the command line, ``predictions.csv`` and the output folder.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dermkit.cli.options import (
    add_dataset_options,
    add_prediction_options,
    add_trust_option,
    dataset_options,
)
from dermkit.core import ClassIndex, Record
from dermkit.evaluation.run_scoring import dataset_label

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.ensemble import Ensemble
    from dermkit.evaluation.report import Report
    from dermkit.runs import LoadedRun

FORMATS = ("auto", "folder", "ham10000", "csv", "isic-gt")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a finished run's model on a labelled image set",
        description=(
            "Score the best model of a run folder on any labelled set (an image folder, "
            "HAM10000, a CSV manifest or an ISIC ground-truth CSV) and write a report folder."
        ),
    )
    parser.add_argument(
        "run",
        metavar="RUN",
        nargs="+",
        help="run folder written by `dermkit train`, or a model written by `dermkit export`; "
        "two or more are scored as one ensemble (the mean of their probabilities)",
    )
    add_dataset_options(parser)
    parser.add_argument(
        "--part",
        choices=("val", "test"),
        help="score the run's own validation or test part (from its split.csv) instead of "
        "--data: e.g. to see what --tta or --calibrated change on images the run never "
        "trained on",
    )
    add_prediction_options(parser)
    parser.add_argument(
        "--balanced-test",
        action="store_true",
        help="score the same number of random images of every class (the study's test)",
    )
    parser.add_argument(
        "--out",
        help="report folder (default: RUN/eval-<dataset name>[-tta][-calibrated]; for an "
        "exported model, <its name>-eval-... beside it)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the run's training batch size"
    )
    add_trust_option(parser)
    parser.set_defaults(handler=run)


def _dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    return dataset_options(args)


def default_out(run_dir: Path, args: argparse.Namespace, exported: Path | None = None) -> Path:
    """``RUN/eval-<data>[-tta]...``; for an exported model ``<model name>-eval-...``
    beside it, so the reports of a run and of its exports never overwrite each other."""
    name = f"eval-{args.part}" if args.part else f"eval-{dataset_label(args.data)}"
    for flag, suffix in (
        ("tta", "tta"),
        ("calibrated", "calibrated"),
        ("balanced_test", "balanced"),
    ):
        if getattr(args, flag):
            name += f"-{suffix}"
    if exported is not None:
        return exported.parent / f"{exported.name}-{name}"
    return run_dir / name


def predictions_csv(records: tuple[Record, ...], probabilities: Any, classes: ClassIndex) -> str:
    """One row per image: path, true class, predicted class, the probability of each class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "true", "predicted", *classes.names])
    for record, row in zip(records, probabilities, strict=True):
        writer.writerow(
            [
                str(record.path),
                classes.name(record.label),
                classes.name(int(row.argmax())),
                *(f"{float(p):.6f}" for p in row),
            ]
        )
    return buffer.getvalue()


def evaluate(run: LoadedRun | Ensemble, args: argparse.Namespace) -> tuple[Report, Path]:
    """Predict, score and write the report; returns ``(report, report folder)``.

    The scoring itself is :func:`~dermkit.evaluation.run_scoring.score_run`, the same
    as ``run.evaluate(...)`` in Python; warnings go to stderr as well as the report.
    """
    from dermkit import atomic
    from dermkit.evaluation.run_scoring import score_run

    scored = score_run(
        run,
        _data(run, args),
        tta=args.tta,
        calibrated=args.calibrated,
        balanced_test=args.balanced_test,
        batch_size=args.batch_size,
        format=args.format,
        options=_dataset_options(args),
    )
    for warning in scored.warnings:
        print(f"dermkit: warning: {warning.rstrip('.')}", file=sys.stderr)
    out = Path(args.out) if args.out else default_out(run.run_dir, args, run.exported)
    # predictions first: a folder whose report.json exists is complete
    atomic.write_text(
        out / "predictions.csv",
        predictions_csv(scored.records, scored.probabilities, run.classes),
    )
    scored.report.write(out)
    return scored.report, out


def _data(run: LoadedRun | Ensemble, args: argparse.Namespace) -> Any:
    """``--data``, or the run's own ``--part`` of its split as a loaded dataset."""
    from dermkit.errors import ConfigError

    if (args.part is None) == (args.data is None):
        raise ConfigError(
            "give either --data or --part",
            where="dermkit evaluate",
            hint="--data PATH scores any labelled set; --part val|test scores the run's own "
            "validation or test images",
        )
    if args.part is None:
        return args.data
    from dermkit.core import LoadedDataset
    from dermkit.data.splits import read_split_manifest
    from dermkit.ensemble import Ensemble

    if isinstance(run, Ensemble):
        records = run.part_records(args.part)
        source = f"{run.run_dirs[0] / 'split.csv'}:{args.part}"
        return LoadedDataset(
            records=records, classes=run.classes, found=len(records), source=source
        )
    manifest = run.run_dir / "split.csv"
    if not manifest.is_file():
        raise ConfigError(
            "--part needs the run's split.csv, which is not there",
            where=str(manifest),
            hint="keep an exported model beside its run folder, or score with --data",
        )
    split = read_split_manifest(manifest, run.classes)
    records = split.val if args.part == "val" else split.test
    return LoadedDataset(
        records=records, classes=run.classes, found=len(records), source=f"{manifest}:{args.part}"
    )


def run(args: argparse.Namespace) -> int:
    from dermkit.ensemble import load_ensemble
    from dermkit.runs import load_run

    loaded_run: LoadedRun | Ensemble
    if len(args.run) > 1:
        loaded_run = load_ensemble(args.run, trust_code=args.trust_model_code)
    else:
        loaded_run = load_run(args.run[0], trust_code=args.trust_model_code)
    report, out = evaluate(loaded_run, args)
    print(report.summary_line())
    if report.skipped:
        print(f"skipped inputs: {len(report.skipped)} (listed in the report)")
    print(f"report: {out / 'report.md'}")
    return 0
