"""``dermkit evaluate``: score a finished run's model on any labelled image set.

The usual use is an external test set, such as the ISIC 2018 Task 3 test images with
their one-hot ground-truth CSV: numbers on images from another clinic say more about
a model than its own held-out split does. Classes are matched to the run's by name
(case does not matter), never by position, so a CSV whose columns come in another
order, or a folder that lacks some classes, is scored correctly; images of a class the
model was never taught are an error, because no answer the model gives can be right.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dermkit.cli.options import add_dataset_options, add_prediction_options, dataset_options
from dermkit.core import ClassIndex, LoadedDataset, Problem, Record
from dermkit.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.core import Dataset, Evaluator
    from dermkit.evaluation.report import Report
    from dermkit.runs import LoadedRun

FORMATS = ("auto", "folder", "ham10000", "csv", "isic-gt")
EMPTY_CLASS = "class {name!r} has no usable images"
"""The data readers' problem for a class without images (see ``dermkit.data.common``)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a finished run's model on a labelled image set",
        description=(
            "Score the best model of a run folder on any labelled set (an image folder, "
            "HAM10000, a CSV manifest or an ISIC ground-truth CSV) and write a report folder."
        ),
    )
    parser.add_argument("run", metavar="RUN", help="run folder written by `dermkit train`")
    add_dataset_options(parser, required=True)
    add_prediction_options(parser)
    parser.add_argument(
        "--balanced-test",
        action="store_true",
        help="score the same number of random images of every class (the study's test)",
    )
    parser.add_argument(
        "--out", help="report folder (default: RUN/eval-<dataset name>[-tta][-calibrated])"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the run's training batch size"
    )
    parser.set_defaults(handler=run)


def _dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    return dataset_options(args)


def isic_classes(csv_path: str | Path, known: ClassIndex) -> tuple[str, ...]:
    """The classes to read an ISIC CSV with: the run's classes that have a column, in
    the run's order, then every other diagnosis column (so that rows of a class the
    model does not know are caught by name instead of skipped)."""
    from dermkit.core import HAM10000_CLASSES
    from dermkit.data.common import read_csv
    from dermkit.data.isic import IMAGE_COLUMN, diagnosis_columns

    table = read_csv(csv_path, [IMAGE_COLUMN], what="ISIC ground-truth CSV")
    lowered = [n.lower() for n in known]
    candidates = ClassIndex(tuple(dict.fromkeys([*lowered, *HAM10000_CLASSES])))
    columns = diagnosis_columns(table, candidates)
    ordered = [n for n in lowered if n in columns]
    ordered += [key for key in columns if key not in ordered]
    if not ordered:
        raise DataError(
            "the ISIC ground-truth CSV has no diagnosis columns",
            where=str(csv_path),
            hint=f"expected one-hot columns named after the classes ({', '.join(known)})",
        )
    return tuple(ordered)


def open_for_run(
    path: str, format: str, known: ClassIndex, options: Mapping[str, Any]
) -> tuple[Dataset, str]:
    """The dataset at ``path`` and its format; ISIC CSVs are read with the run's classes."""
    import attrs

    from dermkit.data.isic import ISICGroundTruth
    from dermkit.data.open import detect_format, open_dataset

    chosen = dict(options)
    target: str | Path = path
    if format == "auto":
        format, target, chosen = detect_format(path, chosen)
    dataset = open_dataset(target, format, **chosen)
    if isinstance(dataset, ISICGroundTruth) and dataset.classes is None:
        dataset = attrs.evolve(dataset, classes=isic_classes(dataset.csv, known))
    return dataset, format


def map_to_run(
    loaded: LoadedDataset, known: ClassIndex
) -> tuple[tuple[Record, ...], tuple[Problem, ...], list[str]]:
    """``(records relabelled to the run's class numbers, skipped inputs, empty classes)``.

    Classes match by name, exactly or else ignoring case. A class the run does not
    know is an error when it has images and ignored when it has none. The readers'
    "class has no usable images" lines are dropped from the skipped inputs: for an
    evaluation set a missing class is not a skipped file, and the report says which
    classes had no images.
    """
    counts = loaded.counts()
    folded = {name.casefold(): label for label, name in enumerate(known)}
    table: dict[int, int] = {}
    unknown: list[str] = []
    for label, name in enumerate(loaded.classes):
        if name in known:
            table[label] = known.index(name)
        elif name.casefold() in folded:
            table[label] = folded[name.casefold()]
        elif counts[label] > 0:
            unknown.append(f"{name} ({counts[label]} image{'s' if counts[label] != 1 else ''})")
    if unknown:
        raise DataError(
            f"the dataset has images of class(es) the model does not know: {', '.join(unknown)}",
            where=loaded.source or None,
            hint=f"the run's classes are {', '.join(known)}; remove those images or rows, "
            "or evaluate a run trained on these classes",
        )
    import attrs

    records = tuple(attrs.evolve(r, label=table[r.label]) for r in loaded.records)
    empty = [name for label, name in enumerate(loaded.classes) if counts[label] == 0]
    noise = {EMPTY_CLASS.format(name=name) for name in empty}
    skipped = tuple(p for p in loaded.problems if p.reason not in noise)
    return records, skipped, empty


def make_evaluator(config: Mapping[str, Any], balanced_test: bool) -> Evaluator:
    """The run's own evaluator settings (bootstrap size, seed...) when it used the
    standard evaluator, with the balanced test switched as asked."""
    from dermkit.config import build_component
    from dermkit.evaluation.evaluator import StandardEvaluator

    saved = config.get("evaluator")
    evaluator = StandardEvaluator()
    if isinstance(saved, Mapping) and saved.get("name") == StandardEvaluator.name:
        built = build_component("evaluators", saved)
        if isinstance(built, StandardEvaluator):
            evaluator = built
    import attrs

    per_class = evaluator.per_class_test if balanced_test else None
    return attrs.evolve(evaluator, balanced_test=balanced_test, per_class_test=per_class)


def dataset_label(path: str) -> str:
    """A folder-safe name for the data: the CSV's stem or the folder's name."""
    target = Path(path).resolve()
    name = target.stem if target.is_file() else target.name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "data"


def default_out(run_dir: Path, args: argparse.Namespace) -> Path:
    name = f"eval-{dataset_label(args.data)}"
    for flag, suffix in (
        ("tta", "tta"),
        ("calibrated", "calibrated"),
        ("balanced_test", "balanced"),
    ):
        if getattr(args, flag):
            name += f"-{suffix}"
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


def seen_in_training(run_dir: Path, records: tuple[Record, ...]) -> dict[str, int]:
    """How many evaluated images the run trained or validated on, by part.

    Scores on images a model was fitted (or its best epoch chosen) on overstate how it
    does on new ones; the report says so rather than leave it to the reader's memory.
    Paths are compared after resolving links, relative to the current folder.
    """
    import os

    from dermkit.data.splits import read_split_manifest

    manifest = run_dir / "split.csv"
    if not manifest.is_file():
        return {}
    try:
        split = read_split_manifest(manifest)
    except DataError:
        return {}
    evaluated = {os.path.realpath(r.path) for r in records}
    out: dict[str, int] = {}
    for part in ("train", "val"):
        used = {os.path.realpath(r.path) for r in getattr(split, part)}
        overlap = len(evaluated & used)
        if overlap:
            out[part] = overlap
    return out


def evaluate(run: LoadedRun, args: argparse.Namespace) -> tuple[Report, Path]:
    """Predict, score and write the report; returns ``(report, report folder)``."""
    import attrs

    from dermkit import atomic
    from dermkit.evaluation.report import RunContext

    dataset, format = open_for_run(args.data, args.format, run.classes, _dataset_options(args))
    loaded = dataset.load(strict=False)
    records, skipped, empty = map_to_run(loaded, run.classes)
    if not records:
        raise DataError(
            "the dataset has no usable labelled images",
            where=loaded.source or args.data,
            hint=f"see `dermkit data inspect {args.data}` for what was skipped and why",
        )
    training = run.config.get("training") or {}
    batch_size = args.batch_size or int(training.get("batch_size") or 32)
    probabilities = run.predict(
        records, tta=args.tta, calibrated=args.calibrated, batch_size=batch_size
    )
    report = make_evaluator(run.config, args.balanced_test).evaluate(
        probabilities, records, run.classes
    )
    label = dataset_label(args.data)
    report = attrs.evolve(
        report,
        evaluation={
            **report.evaluation,
            "run": str(run.run_dir),
            "data": loaded.source or args.data,
            "format": format,
            "tta": bool(args.tta),
            "calibrated": bool(args.calibrated),
            "temperature": run.temperature.temperature
            if args.calibrated and run.temperature
            else None,
        },
    ).with_context(title=f"Evaluation report: {run.name} on {label}")
    notes = []
    extra = [name for name in empty if name not in run.classes]
    if extra:
        notes.append(f"The data also names class(es) without images: {', '.join(extra)}.")
    seen = seen_in_training(run.run_dir, records)
    if seen:
        shown = " and ".join(f"{n} in its {part} part" for part, n in seen.items())
        warning = (
            f"{sum(seen.values())} of the evaluated images were used by this run ({shown}): "
            "these figures overstate how the model does on new images."
        )
        notes.append(warning)
        print(f"dermkit: warning: {warning}", file=sys.stderr)
    if args.tta:
        notes.append("Predictions averaged over the eight flips and quarter turns (TTA).")
    if args.calibrated:
        notes.append("Probabilities temperature-scaled with the run's validation fit.")
    counts = [0] * len(run.classes)
    for record in records:
        counts[record.label] += 1
    context = RunContext(config=run.config, counts={label: counts}, skipped=skipped, notes=notes)
    out = Path(args.out) if args.out else default_out(run.run_dir, args)
    report = report.with_run_context(context)
    # predictions first: a folder whose report.json exists is complete
    atomic.write_text(out / "predictions.csv", predictions_csv(records, probabilities, run.classes))
    report.write(out)
    return report, out


def run(args: argparse.Namespace) -> int:
    from dermkit.runs import load_run

    loaded_run = load_run(args.run)
    report, out = evaluate(loaded_run, args)
    print(report.summary_line())
    if report.skipped:
        print(f"skipped inputs: {len(report.skipped)} (listed in the report)")
    print(f"report: {out / 'report.md'}")
    return 0
