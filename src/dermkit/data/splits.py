"""Grouped, stratified, seeded splits: no lesion on two sides, every class everywhere.

HAM10000 has several images of many lesions (two to four in the working set). If two
images of one lesion land in train and test, the test measures recall of a lesion the
model has already seen, and the scores leak upwards. So the unit of splitting is the
*group* (the lesion id), never the image.

Within that constraint every part should look like the whole: each class's share of
images in train, validation and test should match its share overall, and every class
should appear in every part so that per-class scores exist. The allocation
(:func:`_allocate`) works class by class and counts *images*, not groups, because
groups differ in size:

1. Each group gets one stratum label: its records' label, or the majority label when a
   group mixes labels (ties go to the class with fewer images overall, then the lower
   label number, so the rarer class is the one that gets stratified). A mixed group
   still moves as a whole: keeping a lesion on one side matters more than the exact
   share of its odd image. In HAM10000 no lesion has two diagnoses.
2. Per class, the groups are sorted by id and shuffled with a random generator seeded by
   ``(seed, class)``. Sorting first makes the result independent of the input order;
   seeding per class means adding data to one class leaves the others' split unchanged.
3. Every part with a positive fraction first receives one of the class's smallest groups
   (so presence costs the image balance as little as possible). A class with fewer
   groups than there are such parts cannot be present everywhere, and is reported as a
   :class:`~dermkit.errors.DataError` instead of being silently left out of a part.
4. The remaining groups, in shuffled order, each go to the part whose image count is
   furthest below its target (``fraction * images of the class``). Random order keeps
   group sizes mixed in every part; the greedy choice keeps every part within about one
   group (at most a few images) of its target.

Splitters see real records only: synthetic images are added later, by balancers, to the
training part alone, so a splitter given a synthetic record raises
:class:`~dermkit.errors.ConfigError` rather than risk one reaching validation or test.
"""

from __future__ import annotations

import csv
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import attrs

from dermkit.atomic import atomic_path
from dermkit.core import ClassIndex, Record, Split
from dermkit.errors import ConfigError, DataError

PARTS: tuple[str, str, str] = ("train", "val", "test")
"""Part names in the order they appear in a :class:`~dermkit.core.Split` and a manifest."""

MANIFEST_COLUMNS: tuple[str, ...] = ("path", "label", "class", "group", "part")
"""Columns of a split manifest CSV, in order."""


@attrs.frozen(slots=True)
class _Group:
    """A group id, its image count and the label it is stratified by."""

    id: str
    size: int
    stratum: int


def _to_fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"expected a fraction such as 0.15, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"expected a fraction such as 0.15, got {value!r}") from None


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(
            f"{attribute.name} must be a fraction in [0, 1), got {value!r}",
            where=attribute.name,
            hint="for example 0.15 for 15% of the images",
        )


def _non_negative_seed(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"seed must be a non-negative integer, got {value!r}",
            where=attribute.name,
        )


def _check_inputs(records: Sequence[Record], classes: ClassIndex, where: str) -> None:
    if not records:
        raise DataError("there are no records to split", where=where, hint="load a dataset first")
    for record in records:
        if record.is_synthetic:
            raise ConfigError(
                f"record {str(record.path)!r} is synthetic (from {record.synthetic_source!r}); "
                "synthetic images must never reach validation or test",
                where=where,
                hint="split the real records first; balancers add synthetic records to the "
                "training part only",
            )
        if record.label >= len(classes):
            raise DataError(
                f"record {str(record.path)!r} has label {record.label}, but there are only "
                f"{len(classes)} classes",
                where=where,
                hint="split with the class index of the dataset the records came from",
            )


def _groups(records: Sequence[Record]) -> list[_Group]:
    """One :class:`_Group` per distinct group id, sorted by id, with its stratum label."""
    by_group: dict[str, Counter[int]] = {}
    images_per_label: Counter[int] = Counter()
    for record in records:
        by_group.setdefault(record.group, Counter())[record.label] += 1
        images_per_label[record.label] += 1
    groups = []
    for group_id in sorted(by_group):
        labels = by_group[group_id]
        # Majority label; ties go to the rarer class overall, then to the lower label.
        stratum = min(labels, key=lambda lab: (-labels[lab], images_per_label[lab], lab))
        groups.append(_Group(id=group_id, size=sum(labels.values()), stratum=stratum))
    return groups


def _allocate(
    groups: Sequence[_Group],
    fractions: Sequence[float],
    *,
    rng_key: str,
    classes: ClassIndex,
    part_names: Sequence[str],
    where: str,
    hint: str,
) -> dict[str, int]:
    """Map each group id to a part index, stratified by image counts (see module docs)."""
    active = [i for i, f in enumerate(fractions) if f > 0]
    strata: dict[int, list[_Group]] = {}
    for group in groups:
        strata.setdefault(group.stratum, []).append(group)
    assignment: dict[str, int] = {}
    for label in sorted(strata):
        members = sorted(strata[label], key=lambda g: g.id)
        if len(members) < len(active):
            names = ", ".join(part_names[i] for i in active)
            raise DataError(
                f"class {classes.name(label)!r} has only {len(members)} group(s), too few to "
                f"put one in each of the {len(active)} parts ({names})",
                where=where,
                hint=hint,
            )
        random.Random(f"dermkit-split:{rng_key}:{label}").shuffle(members)
        total = sum(g.size for g in members)
        target = [total * f for f in fractions]
        assigned = [0] * len(fractions)
        # One small group per active part first, smallest group to smallest target.
        by_size = sorted(range(len(members)), key=lambda j: members[j].size)
        by_target = sorted(active, key=lambda i: target[i])
        seeded = set()
        for part, j in zip(by_target, by_size, strict=False):
            assignment[members[j].id] = part
            assigned[part] += members[j].size
            seeded.add(j)
        for j, group in enumerate(members):
            if j in seeded:
                continue
            part = max(active, key=lambda i: target[i] - assigned[i])
            assignment[group.id] = part
            assigned[part] += group.size
    return assignment


def _parts_of(
    records: Sequence[Record], part_of: Mapping[str, int], n_parts: int
) -> list[list[Record]]:
    out: list[list[Record]] = [[] for _ in range(n_parts)]
    for record in records:
        out[part_of[record.group]].append(record)
    return out


@attrs.frozen(slots=True)
class GroupedStratifiedSplit:
    """Train/validation/test split by group, stratified by image counts per class.

    ``val`` and ``test`` are fractions of all images; train gets the rest. A part with
    fraction 0 is empty. Every class appears in every non-empty part, which needs at
    least as many groups of that class as there are non-empty parts (three by default).
    The same records and seed always give the same split, whatever their input order;
    within each part the records keep their input order.
    """

    name: ClassVar[str] = "grouped"
    val: float = attrs.field(default=0.15, converter=_to_fraction, validator=_fraction)
    test: float = attrs.field(default=0.15, converter=_to_fraction, validator=_fraction)
    seed: int = attrs.field(default=0, validator=_non_negative_seed)

    def __attrs_post_init__(self) -> None:
        if self.val + self.test >= 1.0:
            raise ConfigError(
                f"val + test must be below 1 so that something is left to train on, "
                f"got {self.val} + {self.test}",
                where="val, test",
            )

    def split(self, records: Sequence[Record], classes: ClassIndex) -> Split:
        where = f"{self.name} splitter"
        _check_inputs(records, classes, where)
        fractions = (1.0 - self.val - self.test, self.val, self.test)
        part_of = _allocate(
            _groups(records),
            fractions,
            rng_key=f"grouped:{self.seed}",
            classes=classes,
            part_names=PARTS,
            where=where,
            hint="add images of more lesions of this class, or use fewer parts "
            "(set val or test to 0)",
        )
        train, val, test = _parts_of(records, part_of, 3)
        return Split(train=tuple(train), val=tuple(val), test=tuple(test))


def _check_k(value: object) -> None:
    if not isinstance(value, int) or value < 2:
        raise ConfigError(f"k must be an integer of at least 2, got {value!r}", where="k")


def _check_fold(value: object, k: int) -> None:
    if not isinstance(value, int) or not 0 <= value < k:
        raise ConfigError(
            f"fold must be an integer in [0, {k}), got {value!r}",
            where="fold",
            hint="folds are numbered from 0 to k - 1",
        )


@attrs.frozen(slots=True)
class GroupedStratifiedKFold:
    """K folds by group, stratified by image counts per class, for cross-validation.

    :meth:`folds` returns ``k`` splits; in split ``i`` the test part is fold ``i`` and
    every record is in exactly one test part across the ``k`` splits. With ``val > 0``
    a validation part of that fraction *of all images* is carved, grouped and stratified,
    out of the other folds (so ``val`` means the same as in
    :class:`GroupedStratifiedSplit`); otherwise validation is empty. :meth:`split`
    returns split number ``fold``, which makes one fold usable wherever a splitter is.
    Every class must have at least ``k`` groups (one per fold).
    """

    name: ClassVar[str] = "kfold"
    k: int = attrs.field(default=5)
    fold: int = attrs.field(default=0)
    seed: int = attrs.field(default=0, validator=_non_negative_seed)
    val: float = attrs.field(default=0.0, converter=_to_fraction, validator=_fraction)

    @k.validator
    def _check_k(self, _: attrs.Attribute[int], value: int) -> None:
        _check_k(value)

    @fold.validator
    def _check_fold(self, _: attrs.Attribute[int], value: int) -> None:
        _check_fold(value, self.k)

    def __attrs_post_init__(self) -> None:
        if self.val + 1.0 / self.k >= 1.0:
            raise ConfigError(
                f"val ({self.val}) plus one fold (1/{self.k}) leaves nothing to train on",
                where="val, k",
                hint="lower val or raise k",
            )

    def folds(self, records: Sequence[Record], classes: ClassIndex) -> list[Split]:
        where = f"{self.name} splitter"
        _check_inputs(records, classes, where)
        groups = _groups(records)
        fold_of = _allocate(
            groups,
            [1.0 / self.k] * self.k,
            rng_key=f"kfold:{self.seed}",
            classes=classes,
            part_names=[f"fold {i}" for i in range(self.k)],
            where=where,
            hint="add images of more lesions of this class, or lower k",
        )
        in_fold = _parts_of(records, fold_of, self.k)
        return [self._fold_split(i, groups, fold_of, in_fold, classes) for i in range(self.k)]

    def _fold_split(
        self,
        i: int,
        groups: Sequence[_Group],
        fold_of: Mapping[str, int],
        in_fold: Sequence[Sequence[Record]],
        classes: ClassIndex,
    ) -> Split:
        rest = [r for j, fold in enumerate(in_fold) if j != i for r in fold]
        if self.val == 0.0:
            return Split(train=tuple(rest), val=(), test=tuple(in_fold[i]))
        share = self.val / (1.0 - 1.0 / self.k)  # val as a fraction of the other folds
        part_of = _allocate(
            [g for g in groups if fold_of[g.id] != i],
            (1.0 - share, share),
            rng_key=f"kfold:{self.seed}:val:{i}",
            classes=classes,
            part_names=("train", "val"),
            where=f"{self.name} splitter, fold {i}",
            hint="add images of more lesions of this class, lower k, or set val to 0",
        )
        train, val = _parts_of(rest, part_of, 2)
        return Split(train=tuple(train), val=tuple(val), test=tuple(in_fold[i]))

    def split(self, records: Sequence[Record], classes: ClassIndex) -> Split:
        return self.folds(records, classes)[self.fold]


def folds_within(split: Split, classes: ClassIndex, *, k: int, seed: int = 0) -> list[Split]:
    """``k`` cross-validation splits of ``split``'s train + validation, its test part kept.

    Split ``i`` trains on the other folds and validates on fold ``i``
    (:class:`GroupedStratifiedKFold`, grouped and stratified); every split has the same
    test part as ``split``. So every labelled image outside the test part is validated
    on exactly once, by a model that never saw its lesion, and ``k`` models come out
    that can be averaged on the untouched test part: a choice made on ``k`` folds rests
    on all of train + validation instead of one validation part of it.
    """
    pool = split.train + split.val
    folds = GroupedStratifiedKFold(k=k, seed=seed).folds(pool, classes)
    return [Split(train=fold.train, val=fold.test, test=split.test) for fold in folds]


@attrs.frozen(slots=True)
class GroupedCrossValidation:
    """Fold ``fold`` of ``k`` inside a grouped split: its test part, and one fold of the rest.

    The test part is exactly the one :class:`GroupedStratifiedSplit` gives with the same
    ``val``, ``test`` and ``seed`` (so ``val`` matters only through it); that split's train
    and validation parts are pooled and cut into ``k`` folds (:func:`folds_within`), and
    fold ``fold`` is the validation part. Training ``fold = 0 .. k-1`` gives ``k`` models
    that were each validated on a different quarter (for ``k = 4``) of every labelled
    non-test image, and that can be averaged on the common, untouched test part.
    """

    name: ClassVar[str] = "cv"
    k: int = attrs.field(default=4)
    fold: int = attrs.field(default=0)
    val: float = attrs.field(default=0.15, converter=_to_fraction, validator=_fraction)
    test: float = attrs.field(default=0.15, converter=_to_fraction, validator=_fraction)
    seed: int = attrs.field(default=0, validator=_non_negative_seed)

    @k.validator
    def _check_k(self, _: attrs.Attribute[int], value: int) -> None:
        _check_k(value)

    @fold.validator
    def _check_fold(self, _: attrs.Attribute[int], value: int) -> None:
        _check_fold(value, self.k)

    def __attrs_post_init__(self) -> None:
        GroupedStratifiedSplit(val=self.val, test=self.test, seed=self.seed)  # val + test < 1

    def split(self, records: Sequence[Record], classes: ClassIndex) -> Split:
        base = GroupedStratifiedSplit(val=self.val, test=self.test, seed=self.seed)
        return folds_within(base.split(records, classes), classes, k=self.k, seed=self.seed)[
            self.fold
        ]


def leaked_groups(split: Split) -> dict[str, tuple[str, ...]]:
    """Groups found in more than one part, each with the parts it is in (empty if none)."""
    seen: dict[str, list[str]] = {}
    for part, records in split.parts().items():
        for record in records:
            parts = seen.setdefault(record.group, [])
            if part not in parts:
                parts.append(part)
    return {group: tuple(parts) for group, parts in seen.items() if len(parts) > 1}


def split_manifest(split: Split, classes: ClassIndex) -> list[dict[str, str | int]]:
    """One row per record: ``path, label, class, group, part``, parts in train/val/test order.

    Metadata is not kept: the manifest says *which* images went where, which is what
    reproducing a run needs; the dataset still provides everything else.
    """
    rows: list[dict[str, str | int]] = []
    for part, records in split.parts().items():
        for record in records:
            rows.append(
                {
                    "path": str(record.path),
                    "label": record.label,
                    "class": classes.name(record.label),
                    "group": record.group,
                    "part": part,
                }
            )
    return rows


def write_split_manifest(split: Split, classes: ClassIndex, path: str | os.PathLike[str]) -> Path:
    """Write :func:`split_manifest` as CSV, atomically: readers see the old file or the new one.

    The rows go to a temporary file in the same folder, which is flushed to disk and then
    renamed over ``path``, so a run killed mid-write never leaves a truncated manifest.
    """
    target = Path(path)
    with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(MANIFEST_COLUMNS))
        writer.writeheader()
        writer.writerows(split_manifest(split, classes))
        handle.flush()
        os.fsync(handle.fileno())
    return target


def read_split_manifest(path: str | os.PathLike[str], classes: ClassIndex | None = None) -> Split:
    """Read a manifest written by :func:`write_split_manifest` back into a :class:`Split`.

    Checks that every row is well formed, that each label always has the same class name
    (and, with ``classes``, the name that index gives it), and that no group is in two
    parts, so a hand-edited manifest cannot reintroduce leakage. Record metadata is not
    stored in a manifest and comes back empty.
    """
    source = Path(path)
    try:
        handle = source.open(newline="", encoding="utf-8")
    except OSError as error:
        raise DataError(
            f"cannot read split manifest: {error.strerror or error}",
            where=str(source),
            hint="pass the split.csv written by write_split_manifest",
        ) from None
    parts: dict[str, list[Record]] = {part: [] for part in PARTS}
    names: dict[int, str] = {}
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"split manifest lacks column(s) {', '.join(missing)}",
                where=str(source),
                hint=f"expected columns {', '.join(MANIFEST_COLUMNS)}",
            )
        for line, row in enumerate(reader, start=2):
            parts[_part(row, source, line)].append(_row_record(row, source, line, names, classes))
    split = Split(train=tuple(parts["train"]), val=tuple(parts["val"]), test=tuple(parts["test"]))
    leaked = leaked_groups(split)
    if leaked:
        shown = "; ".join(f"{g} in {', '.join(p)}" for g, p in sorted(leaked.items())[:5])
        raise DataError(
            f"{len(leaked)} group(s) appear in more than one part ({shown})",
            where=str(source),
            hint="each group (lesion) must be in exactly one of train, val and test",
        )
    return split


def _part(row: Mapping[str, str | None], source: Path, line: int) -> str:
    part = (row.get("part") or "").strip()
    if part not in PARTS:
        raise DataError(
            f"unknown part {part!r}",
            where=f"{source}:row {line}",
            hint=f"part must be one of {', '.join(PARTS)}",
        )
    return part


def _row_record(
    row: Mapping[str, str | None],
    source: Path,
    line: int,
    names: dict[int, str],
    classes: ClassIndex | None,
) -> Record:
    where = f"{source}:row {line}"
    path = row.get("path") or ""
    group = row.get("group") or ""
    name = row.get("class") or ""
    if not path or not group:
        raise DataError("empty path or group", where=where)
    try:
        label = int(row.get("label") or "")
    except ValueError:
        raise DataError(f"label {row.get('label')!r} is not a whole number", where=where) from None
    if label < 0:
        raise DataError(f"label {label} is negative", where=where)
    if classes is not None:
        if label >= len(classes) or classes.name(label) != name:
            expected = classes.name(label) if label < len(classes) else "no class"
            raise DataError(
                f"label {label} is {name!r} here but {expected!r} in the class index",
                where=where,
                hint="read the manifest with the class list of the run that wrote it",
            )
    elif names.setdefault(label, name) != name:
        raise DataError(
            f"label {label} is {name!r} here but {names[label]!r} in an earlier row",
            where=where,
        )
    return Record(path=path, label=label, group=group)
