"""A generic CSV manifest: one row per image, naming its file, label and (optionally) group."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import attrs

from dermkit.core import LoadedDataset, MetadataValue, Record
from dermkit.data.checks import csv_grouping_warning, refuse_rare_labels
from dermkit.data.common import (
    ProblemLog,
    class_index,
    finish,
    is_hidden,
    is_image_name,
    read_csv,
    report_unlisted,
    require_dir,
    to_names,
    to_optional_str,
    to_str,
    to_tuple,
)
from dermkit.errors import DataError

_GUESSED_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")


def _resolve_image(root: Path, value: str) -> Path | None:
    """The image a cell names: a path relative to ``root`` (or absolute), suffix optional."""
    path = root / value  # an absolute value replaces root
    if path.is_file():
        return path
    if not path.suffix:
        for suffix in _GUESSED_SUFFIXES:
            candidate = path.with_name(path.name + suffix)
            if candidate.is_file():
                return candidate
    return None


@attrs.frozen(slots=True)
class CSVManifest:
    """Images listed in a CSV: ``image_column`` holds a path, ``label_column`` the class.

    Image paths are taken relative to ``image_root`` (default: the CSV's own folder);
    a path without suffix also finds ``.jpg``/``.jpeg``/``.png`` files, so an image-id
    column works as is. ``classes`` fixes the class order and rejects other labels;
    by default it is the sorted set of labels in the file, and a label on only a
    handful of rows beside much larger ones is refused as a likely typo
    (:func:`~dermkit.data.checks.refuse_rare_labels`) until ``classes`` lists it.
    ``group_column`` names the lesion (or patient) id; without it each image is its
    own group, which is only honest if no lesion has two images, so the loaded dataset
    then carries a warning naming any column that looks like a lesion id. Image files
    beside the listed ones (in ``image_root`` and the folders of listed images) that
    no row names are reported as ignored. ``metadata_columns`` are copied into each
    record's metadata as text; nothing else is, so a column that merely correlates
    with the label (like HAM10000's ``dx_type``) cannot leak into a model by accident.
    """

    name: ClassVar[str] = "csv"

    csv: str = attrs.field(converter=to_str)
    image_column: str
    label_column: str
    group_column: str | None = None
    image_root: str | None = attrs.field(default=None, converter=to_optional_str)
    classes: tuple[str, ...] | None = attrs.field(default=None, converter=to_names)
    metadata_columns: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    verify: bool = True

    def load(self, *, strict: bool = False) -> LoadedDataset:
        required = [self.image_column, self.label_column]
        if self.group_column:
            required.append(self.group_column)
        required.extend(self.metadata_columns)
        table = read_csv(self.csv, required, what="CSV manifest")
        root = (
            require_dir(self.image_root, "image root")
            if self.image_root is not None
            else table.path.parent
        )
        labels_seen = sorted({row.get(self.label_column) for row in table.rows} - {""})
        if self.classes is None and not labels_seen:
            raise DataError(
                f"no row has a label in column {self.label_column!r}",
                where=str(table.path),
                hint="fill in the labels, or pass `classes`",
            )
        if self.classes is None:
            rows_by_label: dict[str, list[str]] = {name: [] for name in labels_seen}
            for row in table.rows:
                label = row.get(self.label_column)
                if label:
                    rows_by_label[label].append(f"row {row.line}")
            refuse_rare_labels(
                {name: len(rows) for name, rows in rows_by_label.items()},
                where=str(table.path),
                unit="row",
                examples=rows_by_label,
            )
        names = self.classes if self.classes is not None else tuple(labels_seen)
        classes = class_index(names, where=f"{table.path} (classes)")
        log = ProblemLog(strict)
        records: list[Record] = []
        first_row: dict[str, int] = {}
        named: list[Path] = []
        for row in table.rows:
            source = table.source(row)
            where_row = f"row {row.line}"
            image, label = row.get(self.image_column), row.get(self.label_column)
            if not image:
                log.add(
                    source,
                    f"no image in column {self.image_column!r}",
                    "fill it in or delete the row",
                    kind=f"rows without an image in column {self.image_column!r}",
                    item=where_row,
                )
                continue
            path = _resolve_image(root, image)
            if path is not None:
                named.append(path)  # named by a row, even a bad one: not "unlisted"
            if not label:
                log.add(
                    source,
                    f"no label in column {self.label_column!r}",
                    "fill it in or delete the row",
                    kind=f"rows without a label in column {self.label_column!r}",
                    item=where_row,
                )
                continue
            if label not in classes:
                log.add(
                    source,
                    f"unknown label {label!r}",
                    f"known classes are {', '.join(classes)}; fix the row or add the class",
                    kind="rows with an unknown label",
                    item=f"{where_row} ({label!r})",
                )
                continue
            if path is None:
                log.add(
                    source,
                    f"image {image!r} not found under {root}",
                    "add the image, fix the path, or set image_root",
                    kind=f"images missing under {root}",
                    item=image,
                )
                continue
            key = os.path.normcase(os.path.abspath(path))
            if key in first_row:
                log.add(
                    source,
                    f"image {image!r} is listed twice (first on row {first_row[key]})",
                    "delete the duplicate row",
                    kind="rows listing an image a second time",
                    item=f"{where_row} ({image})",
                )
                continue
            first_row[key] = row.line
            group = row.get(self.group_column) if self.group_column else path.stem
            if not group:
                log.add(
                    source,
                    f"no group in column {self.group_column!r}",
                    "fill in the lesion id: without it the image cannot be split safely",
                    kind=f"rows without a group in column {self.group_column!r}",
                    item=where_row,
                )
                continue
            info: dict[str, MetadataValue] = {c: row.get(c) for c in self.metadata_columns}
            records.append(
                Record(path=path, label=classes.index(label), group=group, metadata=info)
            )
        folders = {root, *(path.parent for path in named)}
        unlisted = report_unlisted(
            log, _images_in(sorted(folders)), named, root, listed_in=table.path.name
        )
        warning = csv_grouping_warning(
            table,
            image_column=self.image_column,
            label_column=self.label_column,
            group_column=self.group_column,
        )
        return finish(
            records=records,
            classes=classes,
            log=log,
            found=len(table.rows) + unlisted,
            source=str(table.path),
            verify=self.verify,
            warnings=(warning,) if warning else (),
            item_base=root,
        )


def _images_in(folders: list[Path]) -> list[Path]:
    """Image files directly in ``folders`` (hidden ones aside); unreadable folders are skipped."""
    out: list[Path] = []
    seen: set[str] = set()
    for folder in folders:
        key = os.path.normcase(os.path.abspath(folder))
        if key in seen:
            continue
        seen.add(key)
        try:
            with os.scandir(folder) as entries:
                out.extend(
                    folder / e.name
                    for e in entries
                    if not is_hidden(e.name) and is_image_name(e.name) and e.is_file()
                )
        except OSError:
            continue  # listed images there were found one by one; nothing to compare with
    return out
