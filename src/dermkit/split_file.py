"""A split the user wrote: ``SplitFile("my_split.csv")`` as the splitter of a run.

The file has the columns of a run's own ``split.csv`` (``path, label, class, group,
part``), so a split from one run, from a colleague, or from pandas can be reused as is
(``dermkit train --split-file my_split.csv``). It is checked as strictly as dermkit's
own splits: no group (lesion) in two parts, by the file's group column and by the
dataset's; every image it names must be one the dataset loaded, with the same class;
and images of the dataset that it leaves out are reported, not silently dropped.

Relative paths in the file are taken relative to the file's own folder (as CSV
manifests do) and, failing that, to the current folder.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import attrs

from dermkit.core import ClassIndex, Record, Split
from dermkit.errors import DataError
from dermkit.hookspecs import Factories, hookimpl

SHOWN = 5
"""How many offending images an error names before it says "and N more"."""


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return f"{shown} and {len(items) - SHOWN} more" if len(items) > SHOWN else shown


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.realpath(path))


@attrs.frozen(slots=True)
class SplitFile:
    """Train/validation/test parts read from a split CSV instead of drawn at random."""

    name: ClassVar[str] = "file"
    path_options: ClassVar[tuple[str, ...]] = ("path",)
    path: str = attrs.field(converter=os.fspath)

    def _resolve(self, text: str) -> str:
        if os.path.isabs(text):
            return text
        beside = Path(self.path).parent / text
        return str(beside) if beside.exists() else os.path.abspath(text)

    def split(self, records: Sequence[Record], classes: ClassIndex) -> Split:
        from dermkit.data.splits import leaked_groups, read_split_manifest

        where = f"split file {self.path}"
        written = read_split_manifest(self.path)  # well-formed rows, no group in two parts
        label_names = _label_names(self.path)  # one name per label: the reader checked that
        by_path = {_key(r.path): r for r in records}
        parts: dict[str, list[Record]] = {}
        unknown: list[str] = []
        mismatched: list[str] = []
        used: set[str] = set()
        for part, rows in written.parts().items():
            chosen = parts.setdefault(part, [])
            for row in rows:
                key = _key(self._resolve(str(row.path)))
                record = by_path.get(key)
                if record is None:
                    unknown.append(str(row.path))
                    continue
                if key in used:
                    continue  # listed twice in one part; read_split_manifest ruled out two parts
                used.add(key)
                chosen.append(record)
                named = label_names.get(row.label)
                if named is not None and classes.name(record.label) != named:
                    actual = classes.name(record.label)
                    mismatched.append(f"{row.path} ({named} in the file, {actual} in the data)")
        if unknown:
            raise DataError(
                f"{len(unknown)} image(s) in the split file are not in the dataset: "
                f"{_listing(unknown)}",
                where=where,
                hint="list only images the dataset loads (see `dermkit data inspect`); "
                "relative paths are taken from the split file's folder",
            )
        if mismatched:
            raise DataError(
                f"{len(mismatched)} image(s) have another class in the split file than in "
                f"the dataset: {_listing(mismatched)}",
                where=where,
                hint="fix the split file's class column, or the dataset's labels",
            )
        split = Split(
            train=tuple(parts.get("train", ())),
            val=tuple(parts.get("val", ())),
            test=tuple(parts.get("test", ())),
        )
        leaked = leaked_groups(split)  # by the dataset's own lesion ids this time
        if leaked:
            shown = [f"{g} in {', '.join(p)}" for g, p in sorted(leaked.items())]
            raise DataError(
                f"{len(leaked)} lesion(s) of the dataset are in more than one part: "
                f"{_listing(shown)}",
                where=where,
                hint="keep all images of a lesion in one part, or the test scores leak",
            )
        if not split.train:
            raise DataError(
                "the split file puts no image in the train part",
                where=where,
                hint="mark the training images with part 'train'",
            )
        left_out = len(records) - len(used)
        if left_out:
            print(
                f"dermkit: warning: {left_out} of the dataset's {len(records)} images are in "
                f"no part of {self.path} and are not used",
                file=sys.stderr,
                flush=True,
            )
        return split


def _label_names(path: str) -> dict[int, str]:
    """The split file's ``label -> class`` names (the file's own numbering)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            int(row["label"]): row["class"]
            for row in csv.DictReader(handle)
            if (row.get("label") or "").strip().lstrip("-").isdigit()
        }


@hookimpl
def dermkit_splitters() -> Factories:
    return {SplitFile.name: SplitFile}
