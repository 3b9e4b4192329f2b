"""What every dataset reader shares: the problem log, CSV reading, image lookup, the finish.

The readers differ only in how they find (image, label, group) triples; the rules
for bad input are the same everywhere and live here: a hard
:class:`~dermkit.errors.DataError` for what makes the whole dataset unusable (a
missing root folder, a CSV without its required columns), one
:class:`~dermkit.core.Problem` per bad image or row otherwise, and in ``strict`` mode a
:class:`DataError` at the first of those. Files that are not data at all (a hidden
``.DS_Store``, a ``notes.txt`` in a class folder, an image no CSV row names) are
reported too, as *ignored*, but never stop a strict load. Every image, row or file
seen is counted in ``found`` so that ``found == len(records) + len(problems)`` holds
and nothing disappears without a line in the report.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dermkit.core import ClassIndex, LoadedDataset, Problem, Record, label_counts
from dermkit.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from dermkit.errors import ConfigError, DataError

EMPTY_CLASS = "class {name!r} has no usable images"
"""The reason for a class without images (``dermkit evaluate`` filters on it)."""
EMPTY_CLASS_KIND = "classes with no usable images"


@attrs.frozen(slots=True)
class DataProblem(Problem):
    """A :class:`~dermkit.core.Problem` that also says what kind of trouble it is.

    Fifty missing images should read as one line, not fifty: ``kind`` is a plural noun
    phrase naming the group ("images missing under images/"), ``item`` what to list for
    this input in a grouped line (an image id, a file name relative to the dataset,
    ``row 7``); :func:`dermkit.data.checks.group_problems` uses both. ``ignored`` marks
    files that are not data (hidden files, a README beside the class folders, images no
    CSV row names): reported and counted, but never a reason to stop a ``strict`` load.
    The JSON form is a plain Problem's, so ``problems.json`` keeps its shape.
    """

    kind: str = ""
    item: str = ""
    ignored: bool = False


class ProblemLog:
    """Collects skipped inputs, or raises at the first one when ``strict``."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.problems: list[Problem] = []

    def add(
        self, source: str, reason: str, hint: str = "", *, kind: str = "", item: str = ""
    ) -> None:
        """An input that should have been usable and is not: skipped, or raised if strict."""
        if self.strict:
            raise DataError(reason, where=source, hint=hint or None)
        self.problems.append(DataProblem(source, reason, hint, kind=kind, item=item))

    def ignore(self, source: str, reason: str, hint: str, *, kind: str, item: str) -> None:
        """A file that is not data: reported and counted, never raised."""
        self.problems.append(DataProblem(source, reason, hint, kind=kind, item=item, ignored=True))

    def add_error(self, error: DataError, *, item: str = "") -> None:
        """A :class:`DataError` from decoding an image, grouped with others of its reason."""
        self.add(
            error.where or "",
            error.message,
            error.hint or "",
            kind=f"unreadable images ({error.message})",
            item=item,
        )


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


def relative_name(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (with ``/``), or as given when it is elsewhere."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symbolic links
    except OSError:
        return False


@attrs.frozen(slots=True)
class FoundEntry:
    """One entry met while walking a dataset folder, and what it turned out to be."""

    path: Path
    status: str
    """``file``; or ``hidden`` / ``hidden-folder`` (never read), ``broken-link``,
    ``loop`` (a link to a folder above it), ``repeat-folder`` / ``repeat-file`` (already
    read through another path), ``unreadable-folder``."""
    detail: str = ""
    """The link target, the first path it was read through, or the OS error."""


class FolderWalker:
    """Every file under a folder, in sorted order, following symbolic links exactly once.

    ``os.walk`` does not follow linked folders by default, which silently drops every
    image behind a link; following them naively loops forever on a link to a parent
    and reads a folder linked twice twice (so one image could land in train and test
    under two names, or in two classes). So each folder and file is keyed by its
    resolved path and read once: a link back to a folder above it is a ``loop``, a
    second path to something already read a ``repeat-*``, and the caller reports both.
    Links are followed only after the whole real tree has been read, so a file's own
    place (and so its class folder) wins over any link to it. Resolving costs one
    ``realpath`` per link, not per file.
    """

    def __init__(self) -> None:
        self._folders: dict[str, Path] = {}
        self._files: dict[str, Path] = {}
        self._links: deque[tuple[Path, frozenset[str]]] = deque()

    def walk(self, top: Path) -> Iterator[FoundEntry]:
        real = os.path.realpath(top)
        self._folders.setdefault(real, top)
        yield from self._walk(top, real, frozenset({real}))
        while self._links:
            path, above = self._links.popleft()
            yield from self._follow(path, above)

    def _walk(self, folder: Path, real: str, above: frozenset[str]) -> Iterator[FoundEntry]:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as error:
            yield FoundEntry(folder, "unreadable-folder", error.strerror or str(error))
            return
        for entry in entries:
            path = folder / entry.name
            is_dir = _is_dir(entry)
            if is_hidden(entry.name):
                yield FoundEntry(path, "hidden-folder" if is_dir else "hidden")
            elif entry.is_symlink():
                self._links.append((path, above))
            elif is_dir:
                key = os.path.join(real, entry.name)
                self._folders[key] = path
                yield from self._walk(path, key, above | {key})
            else:
                self._files[os.path.join(real, entry.name)] = path
                yield FoundEntry(path, "file")

    def _follow(self, path: Path, above: frozenset[str]) -> Iterator[FoundEntry]:
        if not os.path.exists(path):
            yield FoundEntry(path, "broken-link", os.readlink(path))
            return
        key = os.path.realpath(path)
        if os.path.isdir(path):
            if key in above:
                yield FoundEntry(path, "loop", key)
            elif key in self._folders:
                yield FoundEntry(path, "repeat-folder", str(self._folders[key]))
            else:
                self._folders[key] = path
                yield from self._walk(path, key, above | {key})
        elif key in self._files:
            yield FoundEntry(path, "repeat-file", str(self._files[key]))
        else:
            self._files[key] = path
            yield FoundEntry(path, "file")


def report_entry(log: ProblemLog, entry: FoundEntry, item: str) -> None:
    """Report a walked entry that is not a plain file (anything but ``status == "file"``)."""
    source = str(entry.path)
    if entry.status == "hidden":
        log.ignore(
            source,
            "hidden file, ignored",
            "files whose names start with '.' are never read as images",
            kind="hidden files, ignored",
            item=item,
        )
    elif entry.status == "hidden-folder":
        log.ignore(
            source,
            "hidden folder, not read",
            "folders whose names start with '.' are never read; rename it if it holds images",
            kind="hidden folders, not read",
            item=item,
        )
    elif entry.status == "broken-link":
        log.add(
            source,
            f"broken symbolic link (to {entry.detail})",
            "fix the link or remove it",
            kind="broken symbolic links",
            item=item,
        )
    elif entry.status == "loop":
        log.ignore(
            source,
            f"symbolic link to a folder above it ({entry.detail}), not followed",
            "remove the link: it makes the folder contain itself",
            kind="symbolic links to a folder above them, not followed",
            item=item,
        )
    elif entry.status in ("repeat-folder", "repeat-file"):
        what = "folder" if entry.status == "repeat-folder" else "file"
        log.ignore(
            source,
            f"same {what} as {entry.detail}, not read twice",
            "each image is read once, so it cannot land in two parts of a split; "
            "remove the duplicate link",
            kind=f"links to a {what} already read, not read twice",
            item=item,
        )
    elif entry.status == "unreadable-folder":
        log.add(
            source,
            f"cannot read folder: {entry.detail}",
            "fix the folder's permissions",
            kind="folders that cannot be read",
            item=item,
        )
    else:  # pragma: no cover - a status added without a report
        raise AssertionError(f"unknown entry status {entry.status!r}")


def scan_image_folders(
    folders: Sequence[Path], log: ProblemLog, base: Path, *, skip: Collection[Path] = ()
) -> tuple[dict[str, Path], int]:
    """Image files in ``folders`` (not recursive) by file stem; the first one wins.

    One directory listing instead of one ``stat`` per CSV row keeps loading a
    10,000-row CSV from a network share fast. Everything else in the folders (other
    files, hidden files, sub-folders, a second image with a stem already taken) is
    reported as ignored; ``skip`` (say, the CSV itself) is passed over. Returns the
    index and the number of entries reported, for ``found``.
    """
    index: dict[str, Path] = {}
    reported = len(log.problems)
    skipped = {os.path.realpath(p) for p in skip}
    skipped_names = {Path(p).name for p in skip}
    for folder in folders:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as error:
            report_entry(log, FoundEntry(folder, "unreadable-folder", str(error)), str(folder))
            continue
        for entry in entries:
            path = folder / entry.name
            item = relative_name(path, base)
            if entry.name in skipped_names and os.path.realpath(path) in skipped:
                continue
            is_dir = _is_dir(entry)
            if is_hidden(entry.name):
                report_entry(log, FoundEntry(path, "hidden-folder" if is_dir else "hidden"), item)
            elif entry.is_symlink() and not os.path.exists(path):
                report_entry(log, FoundEntry(path, "broken-link", os.readlink(path)), item)
            elif is_dir:
                log.ignore(
                    str(path),
                    "folder inside the image folder, not read",
                    "move its images up into the image folder if they belong to the dataset",
                    kind=f"folders inside {relative_name(folder, base)}/, not read",
                    item=item,
                )
            elif not is_image_name(entry.name):
                log.ignore(
                    str(path),
                    "not an image file, ignored",
                    "only files with an image suffix are read",
                    kind="non-image files, ignored",
                    item=item,
                )
            else:
                stem = os.path.splitext(entry.name)[0]
                first = index.setdefault(stem, path)
                if first != path:
                    log.ignore(
                        str(path),
                        f"same image id as {first}, not used",
                        "keep one file per image id",
                        kind="images whose id another file already has, not used",
                        item=item,
                    )
    return index, len(log.problems) - reported


def report_unlisted(
    log: ProblemLog, images: Iterable[Path], used: Collection[Path], base: Path, listed_in: str
) -> int:
    """Report each of ``images`` that no row used; returns how many, for ``found``.

    An image beside the listed ones that no row names is most often a sign of a cut-off
    or outdated CSV, so it is worth one line, but it is not a bad input.
    """
    keys = {os.path.normcase(os.path.abspath(p)) for p in used}
    count = 0
    for path in sorted(images):
        if os.path.normcase(os.path.abspath(path)) in keys:
            continue
        count += 1
        log.ignore(
            str(path),
            f"image not listed in {listed_in}, ignored",
            f"add a row for it to {listed_in} if it belongs to the dataset",
            kind=f"images not listed in {listed_in}, ignored",
            item=relative_name(path, base),
        )
    return count


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
    warnings: Sequence[str] = (),
    item_base: Path | None = None,
) -> LoadedDataset:
    """Verify the images (optionally), report empty classes, and build the result.

    ``warnings`` are the reader's notes on the data as a whole (see
    :attr:`LoadedDataset.warnings`); ``item_base`` is the folder that file names in
    grouped problem lines are shown relative to (default: ``source``).

    A class with no usable image is reported as one problem and counted in
    ``found`` (the class folder or CSV was looked at and found wanting), because a
    model cannot learn it and its class weight is undefined. Training refuses such a
    dataset (:func:`dermkit.data.checks.require_usable`); evaluation accepts it, since
    a test set may lack a class.
    """
    if verify and records:
        from dermkit.data.verify import verify_images

        failures = verify_images(
            [r.path for r in records], max_pixels=max_pixels, stop_at_first=log.strict
        )
        bad = set()
        base = item_base if item_base is not None else Path(source)
        for position, error in failures:
            log.add_error(error, item=relative_name(records[position].path, base))
            bad.add(position)
        records = [r for i, r in enumerate(records) if i not in bad]
    for label, count in enumerate(label_counts(records, len(classes))):
        if count == 0:
            name = classes.name(label)
            found += 1
            log.add(
                (class_sources or {}).get(name, source),
                EMPTY_CLASS.format(name=name),
                "add images of this class, or leave the class out of the class list",
                kind=EMPTY_CLASS_KIND,
                item=name,
            )
    return LoadedDataset(
        records=tuple(records),
        classes=classes,
        problems=tuple(log.problems),
        found=found,
        source=source,
        warnings=tuple(warnings),
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
