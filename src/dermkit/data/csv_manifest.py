"""A generic CSV manifest: one row per image, naming its file, label and (optionally) group."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import attrs

from dermkit.core import LoadedDataset, MetadataValue, Record
from dermkit.data.common import (
    ProblemLog,
    class_index,
    finish,
    read_csv,
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
    by default it is the sorted set of labels in the file. ``group_column`` names the
    lesion (or patient) id; without it each image is its own group, which is only
    honest if no lesion has two images. ``metadata_columns`` are copied into each
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
        names = self.classes if self.classes is not None else tuple(labels_seen)
        classes = class_index(names, where=f"{table.path} (classes)")
        log = ProblemLog(strict)
        records: list[Record] = []
        first_row: dict[str, int] = {}
        for row in table.rows:
            source = table.source(row)
            image, label = row.get(self.image_column), row.get(self.label_column)
            if not image:
                log.add(
                    source,
                    f"no image in column {self.image_column!r}",
                    "fill it in or delete the row",
                )
                continue
            if not label:
                log.add(
                    source,
                    f"no label in column {self.label_column!r}",
                    "fill it in or delete the row",
                )
                continue
            if label not in classes:
                log.add(
                    source,
                    f"unknown label {label!r}",
                    f"known classes are {', '.join(classes)}; fix the row or add the class",
                )
                continue
            path = _resolve_image(root, image)
            if path is None:
                log.add(
                    source,
                    f"image {image!r} not found under {root}",
                    "add the image, fix the path, or set image_root",
                )
                continue
            key = os.path.normcase(os.path.abspath(path))
            if key in first_row:
                log.add(
                    source,
                    f"image {image!r} is listed twice (first on row {first_row[key]})",
                    "delete the duplicate row",
                )
                continue
            first_row[key] = row.line
            group = row.get(self.group_column) if self.group_column else path.stem
            if not group:
                log.add(
                    source,
                    f"no group in column {self.group_column!r}",
                    "fill in the lesion id: without it the image cannot be split safely",
                )
                continue
            info: dict[str, MetadataValue] = {c: row.get(c) for c in self.metadata_columns}
            records.append(
                Record(path=path, label=classes.index(label), group=group, metadata=info)
            )
        return finish(
            records=records,
            classes=classes,
            log=log,
            found=len(table.rows),
            source=str(table.path),
            verify=self.verify,
        )
