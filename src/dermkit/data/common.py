"""What every dataset reader shares: the problem log, CSV reading, image lookup, the finish.

The readers differ only in how they find (image, label, group) triples; the rules
for bad input are the same everywhere and live here: a hard
:class:`~dermkit.errors.DataError` for what makes the whole dataset unusable (a
missing root folder, a CSV without its required columns), one
:class:`~dermkit.core.Problem` per bad image or row otherwise, and in ``strict`` mode a
:class:`DataError` at the first of those. Every image or row seen is counted in
``found`` so that ``found == len(records) + len(problems)`` holds and nothing
disappears without a line in the report.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dermkit.core import ClassIndex, LoadedDataset, Problem, Record
from dermkit.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from dermkit.errors import ConfigError, DataError


class ProblemLog:
    """Collects skipped inputs, or raises at the first one when ``strict``."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.problems: list[Problem] = []

    def add(self, source: str, reason: str, hint: str = "") -> None:
        if self.strict:
            raise DataError(reason, where=source, hint=hint or None)
        self.problems.append(Problem(source=source, reason=reason, hint=hint))

    def add_error(self, error: DataError) -> None:
        self.add(error.where or "", error.message, error.hint or "")


def to_str(value: str | os.PathLike[str]) -> str:
    """attrs converter: paths are kept as strings so configurations stay JSON-able."""
    return os.fspath(value)


def to_optional_str(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


def to_names(value: Iterable[str] | None) -> tuple[str, ...] | None:
    """attrs converter: a JSON list (or any iterable) of class names to a tuple."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    return tuple(str(name) for name in value)


def to_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def class_index(names: Sequence[str], where: str) -> ClassIndex:
    try:
        return ClassIndex(names)
    except DataError as error:
        raise ConfigError(error.message, where=where, hint=error.hint) from None


def require_dir(path: str | Path, what: str, hint: str = "") -> Path:
    folder = Path(path)
    if not folder.exists():
        raise DataError(
            f"{what} not found",
            where=str(folder),
            hint=hint or "check the path (relative paths are taken from the current folder)",
        )
    if not folder.is_dir():
        raise DataError(f"{what} is not a folder", where=str(folder), hint=hint or None)
    return folder


def require_file(path: str | Path, what: str, hint: str = "") -> Path:
    file = Path(path)
    if not file.exists():
        raise DataError(
            f"{what} not found",
            where=str(file),
            hint=hint or "check the path (relative paths are taken from the current folder)",
        )
    if file.is_dir():
        raise DataError(f"{what} is a folder, not a file", where=str(file), hint=hint or None)
    return file


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def index_images(folders: Iterable[Path]) -> dict[str, Path]:
    """Image files in ``folders`` (not recursive) by file stem; the first folder wins.

    One directory listing instead of one ``stat`` per CSV row keeps loading a
    10,000-row CSV from a network share fast.
    """
    found: dict[str, Path] = {}
    for folder in folders:
        with os.scandir(folder) as entries:
            names = sorted(
                e.name for e in entries if not is_hidden(e.name) and is_image_name(e.name)
            )
        for name in names:
            found.setdefault(os.path.splitext(name)[0], folder / name)
    return found


@attrs.frozen(slots=True)
class CsvRow:
    line: int
    """Line number in the file (the header is line 1), for ``file.csv:row N``."""
    values: Mapping[str, str]
    """Cell text by lower-cased, stripped column name."""

    def get(self, column: str) -> str:
        return self.values.get(column.lower(), "").strip()


@attrs.frozen(slots=True)
class CsvTable:
    path: Path
    columns: tuple[str, ...]
    """Column names as written in the file."""
    rows: tuple[CsvRow, ...]

    def source(self, row: CsvRow) -> str:
        return f"{self.path}:row {row.line}"

    def has(self, column: str) -> bool:
        return column.strip().lower() in {c.strip().lower() for c in self.columns}


def read_csv(path: str | Path, required: Sequence[str], what: str = "CSV file") -> CsvTable:
    """Read a CSV; a missing file or required column is a hard :class:`DataError`.

    Column names match case-insensitively and ignoring surrounding spaces; a UTF-8
    byte-order mark (Excel's habit) is ignored.
    """
    file = require_file(path, what)
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DataError(
                    f"{what} is empty (no header row)",
                    where=str(file),
                    hint=f"the first line must name the columns: {', '.join(required)}",
                )
            keys = [name.strip().lower() for name in header]
            rows: list[CsvRow] = []
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue  # blank line, not a row
                values: dict[str, str] = {}
                for key, cell in zip(keys, cells, strict=False):
                    values.setdefault(key, cell)
                rows.append(CsvRow(line=reader.line_num, values=values))
    except UnicodeDecodeError as error:
        raise DataError(
            f"{what} is not UTF-8 text ({error.reason} at byte {error.start})",
            where=str(file),
            hint="save it as UTF-8 CSV",
        ) from None
    except csv.Error as error:
        raise DataError(f"{what} is not valid CSV: {error}", where=str(file)) from None
    except OSError as error:
        raise DataError(f"cannot read {what}: {error.strerror or error}", where=str(file)) from None
    have = {k for k in keys if k}
    missing = [c for c in required if c.strip().lower() not in have]
    if missing:
        shown = ", ".join(h.strip() for h in header if h.strip()) or "(none)"
        raise DataError(
            f"{what} lacks required column(s) {', '.join(missing)}",
            where=str(file),
            hint=f"it has columns {shown}; it needs {', '.join(required)}",
        )
    return CsvTable(path=file, columns=tuple(h.strip() for h in header), rows=tuple(rows))


def finish(
    *,
    records: list[Record],
    classes: ClassIndex,
    log: ProblemLog,
    found: int,
    source: str,
    verify: bool,
    class_sources: Mapping[str, str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedDataset:
    """Verify the images (optionally), report empty classes, and build the result.

    A class with no usable image is reported as one problem and counted in
    ``found`` (the class folder or CSV was looked at and found wanting), because a
    model cannot learn it and its class weight is undefined.
    """
    if verify and records:
        from dermkit.data.verify import verify_images

        failures = verify_images(
            [r.path for r in records], max_pixels=max_pixels, stop_at_first=log.strict
        )
        bad = set()
        for position, error in failures:
            log.add_error(error)
            bad.add(position)
        records = [r for i, r in enumerate(records) if i not in bad]
    counts = [0] * len(classes)
    for record in records:
        counts[record.label] += 1
    for label, count in enumerate(counts):
        if count == 0:
            name = classes.name(label)
            found += 1
            log.add(
                (class_sources or {}).get(name, source),
                f"class {name!r} has no usable images",
                "add images of this class, or leave the class out of the class list",
            )
    return LoadedDataset(
        records=tuple(records),
        classes=classes,
        problems=tuple(log.problems),
        found=found,
        source=source,
    )


def options_error(cls: type, error: TypeError) -> ConfigError:
    """An unknown or missing option, as a :class:`ConfigError` listing the valid ones."""
    fields = [f.name for f in attrs.fields(cls)]
    return ConfigError(
        str(error).split(".__init__() ")[-1],
        where=f"dataset {getattr(cls, 'name', cls.__name__)!r}",
        hint=(
            f"its options are {', '.join(fields)} "
            "(on the command line, see the flags in `dermkit data inspect --help`)"
        ),
    )


def jsonable(instance: Any) -> dict[str, Any]:
    """A dataset's options as plain JSON types (tuples become lists)."""
    return attrs.asdict(instance, retain_collection_types=False)
