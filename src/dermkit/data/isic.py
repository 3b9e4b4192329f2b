"""ISIC 2018 Task 3 ground truth: one-hot diagnosis columns, for external test sets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import attrs

from dermkit.core import HAM10000_CLASSES, ClassIndex, LoadedDataset, MetadataValue, Record
from dermkit.data.checks import ISIC_GROUPING_WARNING
from dermkit.data.common import (
    CsvTable,
    ProblemLog,
    class_index,
    finish,
    read_csv,
    report_unlisted,
    require_dir,
    scan_image_folders,
    to_names,
    to_str,
)

IMAGE_COLUMN = "image"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def diagnosis_columns(table: CsvTable, classes: ClassIndex) -> dict[str, str]:
    """Lower-cased class name -> column name as written, for every diagnosis column.

    A column is a diagnosis column if it names a class or holds only numbers; any
    other column (an id, a free-text note) is ignored rather than making every row a
    problem. A 1.0 in a numeric column that is not a class (ISIC 2019's ``UNK``, say)
    makes that row a problem.
    """
    out: dict[str, str] = {}
    for column in table.columns:
        key = column.strip().lower()
        if not key or key == IMAGE_COLUMN:
            continue
        if key in classes or all(_number(row.get(key)) is not None for row in table.rows):
            out[key] = column.strip()
    return out


def looks_like_isic_csv(path: Path) -> bool:
    """A CSV whose header has ``image`` and at least two HAM10000 diagnosis columns."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            header = handle.readline()
    except (OSError, UnicodeDecodeError):
        return False
    names = {name.strip().lower() for name in header.split(",")}
    return IMAGE_COLUMN in names and len(names & set(HAM10000_CLASSES)) >= 2


@attrs.frozen(slots=True)
class ISICGroundTruth:
    """An ISIC 2018 Task 3 ground-truth CSV (``image,MEL,NV,BCC,AKIEC,BKL,DF,VASC``).

    Columns are matched to classes by name, case-insensitively, whatever their order,
    so labels land on the same numbers as a model trained on :class:`HAM10000`
    (``classes`` defaults to the HAM10000 order). Each row must have exactly one 1.0
    and 0.0 elsewhere; anything else (no diagnosis, two, a soft label) is a problem.
    Images are ``<image>.jpg`` (or ``.png``...) in ``image_dir``; every other file there
    (images no row names, ISIC's ``LICENSE.txt``) is reported as ignored. Each image is
    its own group, as ISIC ground truth carries no lesion id, and the loaded dataset
    says so in a warning: fine for a test set, not for a split.
    """

    name: ClassVar[str] = "isic-gt"

    csv: str = attrs.field(converter=to_str)
    image_dir: str = attrs.field(converter=to_str)
    classes: tuple[str, ...] | None = attrs.field(default=None, converter=to_names)
    verify: bool = True

    def load(self, *, strict: bool = False) -> LoadedDataset:
        names = self.classes if self.classes is not None else HAM10000_CLASSES
        classes = class_index([n.lower() for n in names], where="dataset 'isic-gt' (classes)")
        table = read_csv(
            self.csv, [IMAGE_COLUMN, *(n.upper() for n in classes)], what="ISIC ground-truth CSV"
        )
        image_dir = require_dir(self.image_dir, "ISIC image folder")
        columns = diagnosis_columns(table, classes)
        log = ProblemLog(strict)
        images, reported = scan_image_folders([image_dir], log, image_dir, skip=[table.path])
        used: list[Path] = []
        records: list[Record] = []
        first_row: dict[str, int] = {}
        for row in table.rows:
            source = table.source(row)
            where_row = f"row {row.line}"
            image = row.get(IMAGE_COLUMN)
            if not image:
                log.add(
                    source,
                    "no image id",
                    "fill in the image column or delete the row",
                    kind="rows without an image id",
                    item=where_row,
                )
                continue
            if image in first_row:
                log.add(
                    source,
                    f"image {image} is listed twice (first on row {first_row[image]})",
                    "delete the duplicate row",
                    kind="rows listing an image a second time",
                    item=f"{where_row} ({image})",
                )
                continue
            first_row[image] = row.line
            path = images.get(image)
            if path is not None:
                used.append(path)
            label, reason = _one_hot(row.get, columns)
            if label is None:
                log.add(
                    source,
                    reason,
                    "each row needs 1.0 in exactly one diagnosis column, 0.0 elsewhere",
                    kind="rows without exactly one diagnosis",
                    item=f"{where_row} ({image})",
                )
                continue
            if label not in classes:
                log.add(
                    source,
                    f"diagnosis {columns[label]!r} is not one of the classes "
                    f"({', '.join(classes)})",
                    "delete the row, or add the class to `classes`",
                    kind=f"rows of diagnosis {columns[label]!r}, not one of the classes",
                    item=image,
                )
                continue
            if path is None:
                log.add(
                    source,
                    f"image file for {image} not found in {image_dir}",
                    "add the image (as <image>.jpg), or point image_dir at the right folder",
                    kind=f"images missing from {image_dir}",
                    item=image,
                )
                continue
            info: dict[str, MetadataValue] = {"image_id": image}
            records.append(
                Record(path=path, label=classes.index(label), group=image, metadata=info)
            )
        unlisted = report_unlisted(log, images.values(), used, image_dir, listed_in=table.path.name)
        return finish(
            records=records,
            classes=classes,
            log=log,
            found=len(table.rows) + reported + unlisted,
            source=str(table.path),
            verify=self.verify,
            warnings=(ISIC_GROUPING_WARNING,),
            item_base=image_dir,
        )


def _one_hot(get: Callable[[str], str], columns: dict[str, str]) -> tuple[str | None, str]:
    """``(class key, "")`` for a valid one-hot row, else ``(None, what is wrong)``."""
    positives: list[str] = []
    for key, column in columns.items():
        text = get(key)
        value = _number(text)
        if value is None:
            return None, f"value {text!r} in column {column} is not a number"
        if value == 1.0:
            positives.append(key)
        elif value != 0.0:
            return (
                None,
                f"value {text} in column {column} is neither 0 nor 1 "
                "(soft labels are not supported)",
            )
    if len(positives) != 1:
        shown = ", ".join(columns[k] for k in positives) or "none"
        return (
            None,
            f"expected exactly one 1.0 across the diagnosis columns, "
            f"found {len(positives)} ({shown})",
        )
    return positives[0], ""
