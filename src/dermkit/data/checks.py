"""Checks on a dataset as a whole: is it trainable, is a label a typo, can it be grouped.

The readers report what is wrong with single inputs (:class:`~dermkit.core.Problem`);
what is wrong with the data as a whole lives here, shared by every built-in format:

- :func:`require_usable`: no usable image at all, or a class without any, stops
  ``dermkit data inspect`` and training with a :class:`~dermkit.errors.DataError`
  instead of an "0 images used" exit 0 or a model with an output nothing teaches.
- :func:`refuse_rare_labels`: a label found on a handful of rows while the other
  labels have many is far more often a typo ("mell") than a class; the readers that
  discover their classes (folder, CSV) refuse it unless ``classes`` names it.
- :func:`csv_grouping_warning` and friends: the words for "this split cannot be
  grouped by lesion", with the column to use when one looks like a lesion id.
- :func:`group_problems` / :func:`problem_lines`: fifty missing images as one line.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from dermkit.core import LoadedDataset, Problem
from dermkit.data.common import EMPTY_CLASS_KIND, CsvTable, DataProblem
from dermkit.errors import DataError

# ----------------------------------------------------------------------------- usable


def usability_errors(loaded: LoadedDataset) -> list[DataError]:
    """Why ``loaded`` cannot be trained on: no usable image, or classes without one.

    Empty for a trainable dataset. A class without images would still get an output
    unit that no example ever teaches and an undefined class weight; a dataset without
    images would "train" on nothing and report success.
    """
    if not loaded.records:
        where = loaded.source or None
        # the readers count each empty class as an input; here only files and rows count
        inputs = loaded.found - sum(1 for p in loaded.problems if _is_empty_class(p))
        if inputs <= 0:
            return [
                DataError(
                    "the dataset holds no images",
                    where=where,
                    hint="check the path, and that the images are where the format expects",
                )
            ]
        problems = [p for p in loaded.problems if not _is_empty_class(p)]
        groups = [g for g in group_problems(problems) if not g.ignored]
        shown = "; ".join(f"{g.count:,} {g.kind}" for g in groups[:3])
        return [
            DataError(
                f"no usable images: none of the {inputs:,} inputs found could be used"
                + (f" ({shown})" if shown else ""),
                where=where,
                hint="`dermkit data inspect` lists every skipped input and why",
            )
        ]
    counts = loaded.counts()
    empty = [name for label, name in enumerate(loaded.classes) if counts[label] == 0]
    if not empty:
        return []
    sources = {
        p.item: p.source
        for p in loaded.problems
        if isinstance(p, DataProblem) and _is_empty_class(p)
    }
    named = ", ".join(repr(name) for name in empty)
    plural = "es" if len(empty) > 1 else ""
    return [
        DataError(
            f"class{plural} {named} {'have' if plural else 'has'} no usable images",
            where=sources.get(empty[0], loaded.source) if len(empty) == 1 else loaded.source,
            hint="add images of each class, or leave it out of the class list "
            "(classes / --classes); a model cannot learn a class it never sees",
        )
    ]


def _is_empty_class(problem: Problem) -> bool:
    return isinstance(problem, DataProblem) and problem.kind == EMPTY_CLASS_KIND


def require_usable(loaded: LoadedDataset) -> None:
    """Raise the first of :func:`usability_errors`: call before splitting or training."""
    errors = usability_errors(loaded)
    if errors:
        raise errors[0]


# ----------------------------------------------------------------------------- rare labels

RARE_MIN_COUNT = 3
"""A discovered label on fewer rows than this is suspect: a class needs at least three
groups to appear in train, validation and test, so it cannot be trained on honestly."""
RARE_SHARE = 0.005
"""... or on fewer than 0.5% of the rows. Real classes in the public dermoscopy sets are
at least about 1% (HAM10000's df 1.1%, ISIC 2019's vasc 1.0%); a typo is a few rows."""
RARE_RATIO = 10
"""... and only when the largest label has at least ten times its rows, so a small
dataset whose classes are all small is not second-guessed."""


def rare_labels(counts: Mapping[str, int]) -> list[str]:
    """The labels of ``counts`` (rows or images per label) that look like typos."""
    total = sum(counts.values())
    largest = max(counts.values(), default=0)
    limit = max(RARE_MIN_COUNT, math.ceil(RARE_SHARE * total))
    return [
        name
        for name, count in counts.items()
        if 0 < count < limit and largest >= RARE_RATIO * count
    ]


def closest_label(name: str, candidates: Mapping[str, int]) -> str:
    """The candidate spelled most like ``name`` (ignoring case); ties go to the larger."""
    folded = name.casefold()
    return max(
        candidates,
        key=lambda other: (
            difflib.SequenceMatcher(None, folded, other.casefold()).ratio(),
            candidates[other],
            other,
        ),
    )


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def refuse_rare_labels(
    counts: Mapping[str, int],
    *,
    where: str,
    unit: str,
    examples: Mapping[str, Sequence[str]],
    what: str = "label",
    verb: str = "is on",
) -> None:
    """Raise a :class:`DataError` naming each rare label, its count and the closest label.

    ``counts`` are rows (or images) per discovered label, ``unit`` names them ("row",
    "image"), ``examples`` where each label was seen ("row 7", "mell/x.png"), ``what``
    and ``verb`` word the message ("label ... is on", "class folder ... holds"). Called
    only when the user did not list the classes: listing them is how a real small
    class is accepted.
    """
    rare = rare_labels(counts)
    if not rare:
        return
    known = {name: count for name, count in counts.items() if name not in rare}
    total = sum(counts.values())
    parts = []
    for name in rare:
        closest = closest_label(name, known)
        seen = ", ".join(examples.get(name, ())[:3])
        parts.append(
            f"{what} {name!r} {verb} only {_plural(counts[name], unit)} of {total:,}"
            + (f" ({seen})" if seen else "")
            + f"; the closest other {what} is {closest!r} ({_plural(known[closest], unit)})"
        )
    every = ",".join(sorted(name for name, count in counts.items() if count))
    raise DataError(
        "; ".join(parts),
        where=where,
        hint=f"if it is a typo, fix it; if it is a real class, list every class in classes "
        f"(--classes {every}), which accepts it",
    )


# ----------------------------------------------------------------------------- grouping

_LESION_NAME = re.compile(r"lesion|patient|subject|participant", re.IGNORECASE)
MIN_GROUP_SHARE = 0.2
"""An unnamed column is taken for a lesion id only with at least one value per five
rows: lesions have a few images each, while site, sex or age repeat far more."""
MIN_LABEL_AGREEMENT = 0.95
"""... and only if the rows sharing a value (nearly) always share a label, as the images
of one lesion share its diagnosis."""


@attrs.frozen(slots=True)
class ColumnGuess:
    """A CSV column that looks like a lesion (or patient) id."""

    name: str
    groups: int
    rows: int


def lesion_id_columns(
    table: CsvTable, *, exclude: Iterable[str], label_column: str
) -> list[ColumnGuess]:
    """Columns whose values repeat across rows the way a lesion or patient id does.

    A column qualifies if its values repeat (some value on two rows or more) without
    being constant, and either its name says lesion/patient/subject/participant, or it
    has at least one value per five rows and rows that share a value share a label.
    Named columns come first, then in file order.
    """
    skip = {c.strip().lower() for c in exclude if c}
    label_key = label_column.strip().lower()
    named: list[ColumnGuess] = []
    others: list[ColumnGuess] = []
    for column in table.columns:
        key = column.strip().lower()
        if not key or key in skip or key == label_key:
            continue
        labels_by_value: dict[str, list[str]] = {}
        rows = 0
        for row in table.rows:
            value = row.get(key)
            if value:
                rows += 1
                labels_by_value.setdefault(value, []).append(row.get(label_key))
        groups = len(labels_by_value)
        if rows < 2 or groups in (1, rows):
            continue
        guess = ColumnGuess(name=column.strip(), groups=groups, rows=rows)
        if _LESION_NAME.search(key):
            named.append(guess)
            continue
        if groups < MIN_GROUP_SHARE * rows:
            continue
        repeated = [labels for labels in labels_by_value.values() if len(labels) > 1]
        agreeing = sum(1 for labels in repeated if len(set(labels)) == 1)
        if agreeing >= MIN_LABEL_AGREEMENT * len(repeated):
            others.append(guess)
    return named + others


HAM10000_COLUMNS = frozenset({"lesion_id", "image_id", "dx"})

_UNGROUPED = (
    "every image is its own group, so images of one lesion can land on both sides of "
    "a split and inflate every score"
)


def csv_grouping_warning(
    table: CsvTable, *, image_column: str, label_column: str, group_column: str | None
) -> str | None:
    """Why a CSV manifest's split cannot be grouped by lesion, and what to pass; or ``None``.

    Without ``group_column`` (or with one whose values never repeat, which groups
    nothing) each image is its own group. When another column looks like a lesion id
    (:func:`lesion_id_columns`), the warning names it; HAM10000's metadata read as a
    generic CSV is also pointed at ``--format ham10000``.
    """
    guesses = lesion_id_columns(
        table, exclude=[image_column, group_column or ""], label_column=label_column
    )
    if group_column:
        values = [row.get(group_column) for row in table.rows if row.get(group_column)]
        if len(set(values)) < len(values) or not guesses:
            return None
        start = f"group column {group_column!r} has a different value on every row, so {_UNGROUPED}"
    else:
        start = f"no group column: {_UNGROUPED}"
    if not guesses:
        return (
            f"{start}. If the CSV has a lesion or patient id, pass it as group_column "
            "(--group-column); if not, make sure no lesion has two images"
        )
    best = guesses[0]
    text = (
        f"{start}. Column {best.name!r} looks like a lesion id ({best.groups:,} groups for "
        f"{best.rows:,} images): pass group_column={best.name!r} (--group-column {best.name})"
    )
    if len(guesses) > 1:
        text += f"; other candidates: {', '.join(g.name for g in guesses[1:4])}"
    if {c.strip().lower() for c in table.columns} >= HAM10000_COLUMNS:
        text += "; this is HAM10000 metadata, which --format ham10000 reads with its lesion_id"
    return text


FOLDER_GROUPING_WARNING = (
    "a folder dataset carries no lesion ids: " + _UNGROUPED + ". If the file names contain "
    r"the lesion id, pass group_pattern (--group-pattern), e.g. '^(HAM_\d+)_' for "
    "HAM_0000118_ISIC_0027419.jpg; if not, make sure no lesion has two images"
)
"""The warning for an :class:`~dermkit.data.folder.ImageFolder` without ``group_pattern``."""

ISIC_GROUPING_WARNING = (
    "ISIC ground truth carries no lesion ids: " + _UNGROUPED + ". That is fine for a test "
    "set, but do not split it for training; ISIC 2018 Task 3's training images are "
    "HAM10000, whose metadata has lesion_id (--format ham10000)"
)
"""The warning for an :class:`~dermkit.data.isic.ISICGroundTruth` data set."""


# ----------------------------------------------------------------------------- problems


def is_ignored(problem: Problem) -> bool:
    """A file that is not data (hidden, non-image, unlisted) rather than a bad input."""
    return isinstance(problem, DataProblem) and problem.ignored


@attrs.frozen(slots=True)
class ProblemGroup:
    """Problems of one kind with one hint: one line of the report instead of many."""

    kind: str
    """A plural noun phrase: "images missing under images/"."""
    hint: str
    ignored: bool
    problems: tuple[Problem, ...]

    @property
    def count(self) -> int:
        return len(self.problems)

    def items(self) -> list[str]:
        return [_item(p) for p in self.problems]

    def render(self, shown: int = 5, listed_in: str = "") -> str:
        """One line; a single problem keeps its own ``source: reason (hint)`` form."""
        if self.count == 1:
            return self.problems[0].render()
        items = self.items()
        text = f"{self.count:,} {self.kind}: {', '.join(items[:shown])}"
        if self.count > shown:
            where = f"; all listed in {listed_in}" if listed_in else ""
            text += f", ... (first {shown} shown{where})"
        return f"{text} ({self.hint})" if self.hint else text


def _item(problem: Problem) -> str:
    if isinstance(problem, DataProblem) and problem.item:
        return problem.item
    return problem.source


def _kind(problem: Problem) -> str:
    if isinstance(problem, DataProblem) and problem.kind:
        return problem.kind
    return f"inputs: {problem.reason}"


def group_problems(problems: Iterable[Problem]) -> list[ProblemGroup]:
    """Problems grouped by kind and hint, in order of first appearance."""
    groups: dict[tuple[str, str, bool], list[Problem]] = {}
    for problem in problems:
        key = (_kind(problem), problem.hint, is_ignored(problem))
        groups.setdefault(key, []).append(problem)
    return [
        ProblemGroup(kind=kind, hint=hint, ignored=ignored, problems=tuple(members))
        for (kind, hint, ignored), members in groups.items()
    ]


def problem_lines(
    problems: Iterable[Problem], *, ignored: bool, listed_in: str = "", shown: int = 5
) -> list[str]:
    """The grouped report lines of the skipped (``ignored=False``) or ignored problems."""
    return [
        group.render(shown=shown, listed_in=listed_in)
        for group in group_problems(problems)
        if group.ignored == ignored
    ]
