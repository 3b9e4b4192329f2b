"""``open_dataset(path)``: pick the right reader for a folder or CSV by looking at it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from dermkit.core import Dataset
from dermkit.data.common import is_hidden, is_image_name, options_error
from dermkit.data.csv_manifest import CSVManifest
from dermkit.data.folder import ImageFolder
from dermkit.data.ham10000 import HAM10000, find_metadata
from dermkit.data.isic import ISICGroundTruth, looks_like_isic_csv
from dermkit.errors import ConfigError, DataError

BUILTIN_FORMATS: dict[str, Callable[..., Any]] = {
    "folder": ImageFolder,
    "ham10000": HAM10000,
    "csv": CSVManifest,
    "isic-gt": ISICGroundTruth,
}
FORMATS: tuple[str, ...] = ("auto", *BUILTIN_FORMATS)


def _header(path: Path) -> set[str]:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return {name.strip().lower() for name in handle.readline().split(",")}
    except (OSError, UnicodeDecodeError):
        return set()


def _is_ham_metadata(path: Path) -> bool:
    return {"lesion_id", "image_id", "dx"} <= _header(path)


def _has_images(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(e.is_file() and is_image_name(e.name) for e in entries)
    except OSError:
        return False


def guess_isic_image_dir(csv: Path) -> Path | None:
    """The image folder that goes with an ISIC ground-truth CSV, if one can be found.

    ISIC's own downloads unpack to ``ISIC2018_Task3_<Part>_GroundTruth/<same>.csv``
    next to ``ISIC2018_Task3_<Part>_Input/``, so the CSV's folder and the one above
    it are searched for the ``Input`` twin, then for ``images/``.
    """
    stem = csv.stem
    names = [
        stem.replace("GroundTruth", "Input"),
        stem.replace("_GroundTruth", ""),
        stem.replace("GroundTruth", ""),
        "images",
        "Images",
        "input",
    ]
    for base in (csv.parent, csv.parent.parent):
        for name in names:
            candidate = base / name
            if name and candidate != csv.parent and candidate.is_dir() and _has_images(candidate):
                return candidate
    if _has_images(csv.parent):
        return csv.parent
    return None


def _isic_options(csv: Path, options: dict[str, Any]) -> dict[str, Any]:
    if "image_dir" not in options:
        image_dir = guess_isic_image_dir(csv)
        if image_dir is None:
            raise ConfigError(
                "cannot find the image folder for this ISIC ground-truth CSV",
                where=str(csv),
                hint="pass image_dir (--image-dir on the command line)",
            )
        options["image_dir"] = str(image_dir)
    return options


def _isic_csvs(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        csvs = sorted(
            Path(e.path) for e in entries if e.is_file() and e.name.lower().endswith(".csv")
        )
    return [c for c in csvs if looks_like_isic_csv(c)]


def detect_format(
    path: str | Path, options: dict[str, Any] | None = None
) -> tuple[str, Path, dict[str, Any]]:
    """``(format, path to hand the reader, options)`` for ``path``, by its contents.

    A folder with ``HAM10000_metadata.csv`` is ``ham10000``; a CSV with an ``image``
    column and diagnosis columns (or a folder holding exactly one such CSV) is
    ``isic-gt``; a CSV with HAM10000 columns is ``ham10000`` (its folder); any other
    CSV is ``csv`` when ``image_column`` is given; a folder of sub-folders is ``folder``.
    """
    options = dict(options or {})
    target = Path(path)
    if not target.exists():
        raise DataError("no such file or folder", where=str(target), hint="check the dataset path")
    if target.is_dir():
        if find_metadata(target) is not None:
            return "ham10000", target, options
        isic = _isic_csvs(target)
        if len(isic) == 1:
            return "isic-gt", isic[0], _isic_options(isic[0], options)
        with os.scandir(target) as entries:
            subfolders = [e.name for e in entries if e.is_dir() and not is_hidden(e.name)]
        if subfolders:
            return "folder", target, options
        raise ConfigError(
            "cannot tell the dataset format of this folder",
            where=str(target),
            hint="expected HAM10000_metadata.csv, an ISIC ground-truth CSV, or one sub-folder "
            "per class; or name the format (--format)",
        )
    if target.suffix.lower() == ".csv":
        if _is_ham_metadata(target):
            return "ham10000", target.parent, options
        if looks_like_isic_csv(target):
            return "isic-gt", target, _isic_options(target, options)
        if "image_column" in options:
            return "csv", target, options
        raise ConfigError(
            "this CSV is neither HAM10000 metadata nor ISIC ground truth",
            where=str(target),
            hint="for a generic manifest use format 'csv' with image_column and label_column "
            "(--format csv --image-column ... --label-column ...)",
        )
    raise ConfigError(
        "cannot tell the dataset format of this file",
        where=str(target),
        hint="give a dataset folder or a CSV file",
    )


def _factory(format: str) -> Callable[..., Any]:
    if format in BUILTIN_FORMATS:
        return BUILTIN_FORMATS[format]
    from dermkit import plugins

    return plugins.lookup("datasets", format)


def open_dataset(path: str | Path, format: str = "auto", **options: Any) -> Dataset:
    """A :class:`~dermkit.core.Dataset` for ``path``; ``format="auto"`` looks at it first.

    ``options`` are the reader's own (``image_column=...``, ``classes=...``,
    ``verify=False``). A format name other than the built-in ones is looked up among
    the dataset plugins, whose reader gets ``path`` as its first argument.
    """
    target = Path(path)
    if format == "auto":
        format, target, options = detect_format(target, options)
    elif format == "ham10000" and target.is_file():
        target = target.parent  # the metadata CSV was given; the reader wants its folder
    elif format == "isic-gt":
        if target.is_dir():
            csvs = _isic_csvs(target)
            if len(csvs) != 1:
                raise ConfigError(
                    f"expected one ISIC ground-truth CSV in this folder, found {len(csvs)}",
                    where=str(target),
                    hint="give the CSV file itself",
                )
            target = csvs[0]
        if target.is_file():
            options = _isic_options(target, dict(options))
    factory = _factory(format)
    try:
        dataset: Dataset = factory(str(target), **options)
    except TypeError as error:
        if isinstance(factory, type) and attrs.has(factory):
            raise options_error(factory, error) from None
        raise ConfigError(str(error), where=f"dataset {format!r}") from None
    return dataset
