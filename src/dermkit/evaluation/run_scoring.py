"""Scoring a finished run on a labelled set: what ``run.evaluate`` and ``dermkit evaluate`` do.

The usual use is an external test set, such as the ISIC 2018 Task 3 test images with
their one-hot ground-truth CSV: numbers on images from another clinic say more about
a model than its own held-out split does. Classes are matched to the run's by name
(case does not matter), never by position, so a CSV whose columns come in another
order, or a folder that lacks some classes, is scored correctly; images of a class the
model was never taught are an error, because no answer the model gives can be right.

TensorFlow is imported only when the run predicts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit.core import ClassIndex, Dataset, LoadedDataset, Problem, Record, label_counts
from dermkit.errors import DataError
from dermkit.evaluation.classmap import align_records

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.core import Evaluator
    from dermkit.ensemble import Ensemble
    from dermkit.evaluation.report import Report
    from dermkit.runs import LoadedRun

EMPTY_CLASS = "class {name!r} has no usable images"
"""The data readers' problem for a class without images (see ``dermkit.data.common``)."""

DataSource = Dataset | LoadedDataset | str | os.PathLike[str]


@attrs.frozen
class RunScore:
    """A run scored on a labelled set: the report, and the predictions behind it.

    ``records`` are relabelled to the run's classes, in the order of the rows of
    ``probabilities``; ``warnings`` are what a person should be told at once (images
    the run trained on, a model that predicts one class).
    """

    report: Report
    records: tuple[Record, ...]
    probabilities: np.ndarray = attrs.field(eq=False)
    warnings: tuple[str, ...] = ()


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


def with_run_classes(dataset: Dataset, known: ClassIndex) -> Dataset:
    """An ISIC ground-truth reader without a class list gets one built from the run's."""
    from dermkit.data.isic import ISICGroundTruth

    if isinstance(dataset, ISICGroundTruth) and dataset.classes is None:
        return attrs.evolve(dataset, classes=isic_classes(dataset.csv, known))
    return dataset


def open_for_run(
    path: str | os.PathLike[str], format: str, known: ClassIndex, options: Mapping[str, Any]
) -> tuple[Dataset, str]:
    """The dataset at ``path`` and its format; ISIC CSVs are read with the run's classes."""
    from dermkit.data.open import detect_format, open_dataset

    chosen = dict(options)
    target: str | Path = os.fspath(path)
    if format == "auto":
        format, target, chosen = detect_format(target, chosen)
    dataset = open_dataset(target, format, **chosen)
    return with_run_classes(dataset, known), format


def map_to_run(
    loaded: LoadedDataset, known: ClassIndex
) -> tuple[tuple[Record, ...], tuple[Problem, ...], list[str]]:
    """``(records relabelled to the run's class numbers, skipped inputs, empty classes)``.

    See :func:`~dermkit.evaluation.classmap.align_records`. The readers' "class has no
    usable images" lines are dropped from the skipped inputs: for an evaluation set a
    missing class is not a skipped file, and the report says which classes had none.
    """
    aligned = align_records(loaded.records, loaded.classes, known, where=loaded.source or None)
    noise = {EMPTY_CLASS.format(name=name) for name in aligned.empty}
    skipped = tuple(p for p in loaded.problems if p.reason not in noise)
    return aligned.records, skipped, list(aligned.empty)


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
    per_class = evaluator.per_class_test if balanced_test else None
    return attrs.evolve(evaluator, balanced_test=balanced_test, per_class_test=per_class)


def dataset_label(path: str | os.PathLike[str]) -> str:
    """A folder-safe name for the data: the CSV's stem or the folder's name."""
    target = Path(path).resolve()
    name = target.stem if target.is_file() else target.name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "data"


def seen_in_training(run_dirs: Sequence[Path], records: tuple[Record, ...]) -> dict[str, int]:
    """How many evaluated images the run (any of the runs) trained or validated on, by part.

    Scores on images a model was fitted (or its best epoch chosen) on overstate how it
    does on new ones; the report says so rather than leave it to the reader's memory.
    Paths are compared after resolving links, relative to the current folder. For an
    ensemble an image counts when any member used it.
    """
    from dermkit.data.splits import read_split_manifest

    used: dict[str, set[str]] = {"train": set(), "val": set()}
    for folder in run_dirs:
        manifest = folder / "split.csv"
        if not manifest.is_file():
            continue
        try:
            split = read_split_manifest(manifest)
        except DataError:
            continue
        for part, paths in used.items():
            paths.update(os.path.realpath(r.path) for r in getattr(split, part))
    evaluated = {os.path.realpath(r.path) for r in records}
    out: dict[str, int] = {}
    for part, paths in used.items():
        overlap = len(evaluated & paths)
        if overlap:
            out[part] = overlap
    return out


def _load(
    run: LoadedRun | Ensemble, data: DataSource, format: str, options: Mapping[str, Any]
) -> tuple[LoadedDataset, str | None, str]:
    """``(loaded data, format or None, label)`` for any of the accepted data sources."""
    if isinstance(data, LoadedDataset):
        return data, None, dataset_label(data.source) if data.source else "data"
    if isinstance(data, str | os.PathLike):
        dataset, chosen = open_for_run(data, format, run.classes, options)
        return dataset.load(strict=False), chosen, dataset_label(data)
    if not isinstance(data, Dataset):
        raise DataError(
            f"cannot evaluate on a {type(data).__name__}",
            where="dataset",
            hint="pass a dataset path, a Dataset (e.g. ImageFolder(...)) or a LoadedDataset",
        )
    loaded = with_run_classes(data, run.classes).load(strict=False)
    label = dataset_label(loaded.source) if loaded.source else data.name
    return loaded, data.name, label


def score_run(
    run: LoadedRun | Ensemble,
    data: DataSource,
    *,
    tta: bool = False,
    calibrated: bool = False,
    balanced_test: bool = False,
    batch_size: int | None = None,
    format: str = "auto",
    options: Mapping[str, Any] | None = None,
) -> RunScore:
    """Predict ``data`` with ``run``, score it by class name and build the full report.

    ``data`` is a dataset path (``format`` and reader ``options`` as for
    :func:`~dermkit.data.open.open_dataset`), a :class:`~dermkit.core.Dataset` or a
    :class:`~dermkit.core.LoadedDataset`. ``batch_size`` defaults to the run's training
    batch size. ``run`` may be an :class:`~dermkit.ensemble.Ensemble` of runs.
    """
    from dermkit.evaluation.report import RunContext

    if calibrated:
        run.scaler()  # fail before any work when the run has no temperature
    loaded, chosen_format, label = _load(run, data, format, options or {})
    records, skipped, empty = map_to_run(loaded, run.classes)
    source = loaded.source or (os.fspath(data) if isinstance(data, str | os.PathLike) else label)
    if not records:
        raise DataError(
            "the dataset has no usable labelled images",
            where=source,
            hint=f"see `dermkit data inspect {source}` for what was skipped and why",
        )
    training = run.config.get("training") or {}
    size = batch_size or int(training.get("batch_size") or 32)
    probabilities = run.predict(records, tta=tta, calibrated=calibrated, batch_size=size)
    report = make_evaluator(run.config, balanced_test).evaluate(probabilities, records, run.classes)
    temperature = run.temperature.temperature if calibrated and run.temperature else None
    report = attrs.evolve(
        report,
        evaluation={
            **report.evaluation,
            "run": str(run.run_dir),
            "data": source,
            "format": chosen_format,
            "tta": bool(tta),
            "calibrated": bool(calibrated),
            "temperature": temperature,
        },
    ).with_context(title=f"Evaluation report: {run.name} on {label}")
    notes: list[str] = []
    warnings: list[str] = []
    extra = [name for name in empty if name not in run.classes]
    if extra:
        notes.append(f"The data also names class(es) without images: {', '.join(extra)}.")
    seen = seen_in_training(run.run_dirs, records)
    if seen:
        shown = " and ".join(f"{n} in its {part} part" for part, n in seen.items())
        warning = (
            f"{sum(seen.values())} of the evaluated images were used by this run ({shown}): "
            "these figures overstate how the model does on new images."
        )
        notes.append(warning)
        warnings.append(warning)
    from dermkit.ensemble import Ensemble

    if isinstance(run, Ensemble):
        names = ", ".join(str(m.model_path) for m in run.members)
        notes.append(f"Probabilities averaged over {len(run.members)} runs: {names}.")
    if tta:
        notes.append("Predictions averaged over the eight flips and quarter turns (TTA).")
    if calibrated:
        notes.append("Probabilities temperature-scaled with the run's validation fit.")
    counts = label_counts(records, len(run.classes))
    context = RunContext(config=run.config, counts={label: counts}, skipped=skipped, notes=notes)
    report = report.with_run_context(context)
    return RunScore(
        report=report,
        records=records,
        probabilities=probabilities,
        warnings=(*warnings, *report.warnings),
    )


def evaluate_and_warn(
    run: LoadedRun | Ensemble,
    data: DataSource,
    *,
    tta: bool = False,
    calibrated: bool = False,
    balanced_test: bool = False,
    batch_size: int | None = None,
) -> Report:
    """:func:`score_run`'s report, its warnings issued as Python warnings: what
    ``run.evaluate(...)`` returns for a run and for an ensemble alike."""
    import warnings

    scored = score_run(
        run,
        data,
        tta=tta,
        calibrated=calibrated,
        balanced_test=balanced_test,
        batch_size=batch_size,
    )
    for message in scored.warnings:
        warnings.warn(message, UserWarning, stacklevel=3)
    return scored.report
