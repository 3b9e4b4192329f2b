"""Grouped stratified splits: no leakage, full coverage, determinism, class balance."""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dermkit.core import ClassIndex, Record, Split, Splitter
from dermkit.data.splits import (
    GroupedCrossValidation,
    GroupedStratifiedKFold,
    GroupedStratifiedSplit,
    _groups,
    folds_within,
    leaked_groups,
    read_split_manifest,
    split_manifest,
    write_split_manifest,
)
from dermkit.errors import ConfigError, DataError

CLASSES = ClassIndex(("a", "b", "c"))


def make_records(groups: Sequence[tuple[int, Sequence[int]]]) -> list[Record]:
    """Records from ``(group number, labels of its images)`` pairs; paths are unique."""
    out = []
    for g, labels in groups:
        for i, label in enumerate(labels):
            out.append(Record(path=f"img/g{g}_{i}.jpg", label=label, group=f"G{g:04d}"))
    return out


def singletons(per_class: Sequence[int]) -> list[Record]:
    """``per_class[c]`` one-image groups of class ``c``."""
    labels = [label for label, n in enumerate(per_class) for _ in range(n)]
    return make_records([(g, [label]) for g, label in enumerate(labels)])


def assignment(split: Split) -> dict[str, str]:
    return {r.group: part for part, records in split.parts().items() for r in records}


def label_counts(records: Sequence[Record]) -> Counter[int]:
    return Counter(r.label for r in records)


# A dataset: groups of 1-4 images, each group one label (rarely a second label mixed in).
group_spec = st.tuples(
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=2),
    st.booleans(),
)
datasets = st.lists(group_spec, min_size=1, max_size=60).map(
    lambda specs: make_records(
        [
            (g, [label] * size + ([(label + 1) % 3] if mixed and size > 2 else []))
            for g, (size, label, mixed) in enumerate(specs)
        ]
    )
)
fractions = st.sampled_from([0.0, 0.1, 0.15, 0.25, 0.4])


def enough_groups(records: Sequence[Record], needed: int) -> bool:
    strata = Counter(g.stratum for g in _groups(records))
    return all(n >= needed for n in strata.values())


# --- properties -------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(records=datasets, val=fractions, test=fractions, seed=st.integers(0, 2**16), data=st.data())
def test_split_properties(
    records: list[Record], val: float, test: float, seed: int, data: st.DataObject
) -> None:
    splitter = GroupedStratifiedSplit(val=val, test=test, seed=seed)
    active = 1 + (val > 0) + (test > 0)
    if not enough_groups(records, active):
        with pytest.raises(DataError, match="too few"):
            splitter.split(records, CLASSES)
        return
    split = splitter.split(records, CLASSES)
    # every record exactly once, no group on two sides
    assert Counter(r.path for p in split.parts().values() for r in p) == Counter(
        r.path for r in records
    )
    assert leaked_groups(split) == {}
    # deterministic, and independent of the input order
    assert splitter.split(records, CLASSES) == split
    shuffled = data.draw(st.permutations(records))
    assert assignment(splitter.split(shuffled, CLASSES)) == assignment(split)
    # records keep their input order within a part
    position = {r.path: i for i, r in enumerate(records)}
    for part in split.parts().values():
        assert [position[r.path] for r in part] == sorted(position[r.path] for r in part)
    # every class with groups is in every non-empty part; empty fractions give empty parts
    strata = {g.stratum for g in _groups(records)}
    for name, fraction in (("train", 1.0), ("val", val), ("test", test)):
        part = split.parts()[name]
        if fraction == 0:
            assert part == ()
        else:
            assert strata <= {g.stratum for g in _groups(part)}


@settings(max_examples=50, deadline=None)
@given(
    records=datasets, k=st.integers(2, 4), val=st.sampled_from([0.0, 0.1]), seed=st.integers(0, 99)
)
def test_kfold_properties(records: list[Record], k: int, val: float, seed: int) -> None:
    splitter = GroupedStratifiedKFold(k=k, val=val, seed=seed)
    if not enough_groups(records, k):
        with pytest.raises(DataError, match="too few"):
            splitter.folds(records, CLASSES)
        return
    try:
        folds = splitter.folds(records, CLASSES)
    except DataError as error:  # carving val can still need one more group per class
        assert val > 0 and "fold" in str(error)
        return
    assert len(folds) == k
    tested = Counter(r.path for split in folds for r in split.test)
    assert tested == Counter(r.path for r in records)  # each record in exactly one test fold
    for split in folds:
        assert leaked_groups(split) == {}
        assert sorted(r.path for p in split.parts().values() for r in p) == sorted(
            r.path for r in records
        )
        assert (split.val == ()) == (val == 0)
    assert splitter.folds(records, CLASSES) == folds
    assert (
        GroupedStratifiedKFold(k=k, val=val, seed=seed, fold=k - 1).split(records, CLASSES)
        == folds[k - 1]
    )


@settings(max_examples=30, deadline=None)
@given(
    per_class=st.lists(
        st.lists(st.integers(1, 4), min_size=4, max_size=12), min_size=3, max_size=3
    ),
    k=st.integers(2, 3),
    seed=st.integers(0, 99),
)
def test_folds_within_a_split_keep_its_test_part(
    per_class: list[list[int]], k: int, seed: int
) -> None:
    # groups of 1-4 images, 4-12 groups per class: enough for three parts and then k
    # folds of train + val in most draws
    sizes = [(label, size) for label, groups in enumerate(per_class) for size in groups]
    records = make_records([(g, [label] * size) for g, (label, size) in enumerate(sizes)])
    try:
        split = GroupedStratifiedSplit(val=0.2, test=0.2, seed=seed).split(records, CLASSES)
        folds = folds_within(split, CLASSES, k=k, seed=seed)
    except DataError as error:  # a class with too few groups for the parts or the folds
        assert "too few" in str(error)
        event("too few groups")
        return
    event("folds made")
    assert len(folds) == k
    pool = Counter(r.path for r in split.train + split.val)
    assert Counter(r.path for fold in folds for r in fold.val) == pool  # each validated once
    for fold in folds:
        assert fold.test == split.test
        assert leaked_groups(fold) == {}
        assert Counter(r.path for r in fold.train + fold.val) == pool
    assert folds_within(split, CLASSES, k=k, seed=seed) == folds


def test_cross_validation_splitter_is_one_fold_within_the_grouped_split() -> None:
    records = singletons([30, 20, 12])
    grouped = GroupedStratifiedSplit(val=0.15, test=0.2, seed=3).split(records, CLASSES)
    folds = folds_within(grouped, CLASSES, k=3, seed=3)
    for fold in range(3):
        split = GroupedCrossValidation(k=3, fold=fold, val=0.15, test=0.2, seed=3).split(
            records, CLASSES
        )
        assert split == folds[fold]
        assert split.test == grouped.test  # the grouped split's test part, untouched
    for bad, message in (
        ({"k": 1}, "k must be an integer of at least 2"),
        ({"k": 3, "fold": 3}, r"fold must be an integer in \[0, 3\)"),
        ({"val": 0.5, "test": 0.5}, "val \\+ test must be below 1"),
    ):
        with pytest.raises(ConfigError, match=message):
            GroupedCrossValidation(**bad)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(extra=st.integers(1, 20), seed=st.integers(0, 99))
def test_adding_one_class_leaves_the_others_alone(extra: int, seed: int) -> None:
    base = singletons([10, 10, 0])
    more = base + make_records([(1000 + i, [2]) for i in range(extra + 3)])
    splitter = GroupedStratifiedSplit(seed=seed)
    before = assignment(splitter.split(base, CLASSES))
    after = assignment(splitter.split(more, CLASSES))
    assert {g: p for g, p in after.items() if g in before} == before


# --- hand-worked cases -------------------------------------------------------------------


def test_singleton_groups_hit_the_targets_exactly() -> None:
    split = GroupedStratifiedSplit(val=0.25, test=0.25).split(singletons([20, 8, 4]), CLASSES)
    assert label_counts(split.train) == {0: 10, 1: 4, 2: 2}
    assert label_counts(split.val) == {0: 5, 1: 2, 2: 1}
    assert label_counts(split.test) == {0: 5, 1: 2, 2: 1}


def test_three_groups_give_one_to_each_part() -> None:
    records = make_records([(0, [0, 0]), (1, [0]), (2, [0, 0, 0])])
    split = GroupedStratifiedSplit(val=0.1, test=0.1).split(records, ClassIndex(("a",)))
    assert [len({r.group for r in p}) for p in split.parts().values()] == [1, 1, 1]
    # presence first: the two smallest groups go to the small parts, the largest to train
    assert {r.group for r in split.train} == {"G0002"}


def test_image_counts_not_group_counts_are_balanced() -> None:
    # 10 two-image groups and 20 singletons: 40 images, so val/test should hold 10 images
    records = make_records([(g, [0, 0]) for g in range(10)] + [(g, [0]) for g in range(10, 30)])
    for seed in range(5):
        split = GroupedStratifiedSplit(val=0.25, test=0.25, seed=seed).split(
            records, ClassIndex(("a",))
        )
        sizes = [len(p) for p in split.parts().values()]
        assert abs(sizes[0] - 20) <= 1 and abs(sizes[1] - 10) <= 1 and abs(sizes[2] - 10) <= 1


def test_a_mixed_group_follows_its_majority_and_stays_together() -> None:
    records = make_records([(0, [0, 0, 1])]) + singletons([0, 0, 0])
    (group,) = _groups(records)
    assert group.stratum == 0 and group.size == 3
    records = make_records([(g, [0]) for g in range(1, 6)] + [(0, [0, 0, 1])])
    split = GroupedStratifiedSplit().split(records, CLASSES)
    assert leaked_groups(split) == {}
    assert len({part for g, part in assignment(split).items() if g == "G0000"}) == 1


def test_a_tied_group_is_stratified_by_the_rarer_class() -> None:
    records = make_records([(0, [0, 1]), (1, [0]), (2, [0])])
    strata = {g.id: g.stratum for g in _groups(records)}
    assert strata["G0000"] == 1  # class 1 has 1 image overall, class 0 has 3


def test_same_seed_same_split_other_seed_other_split() -> None:
    records = singletons([40, 40, 40])
    a = GroupedStratifiedSplit(seed=1).split(records, CLASSES)
    assert GroupedStratifiedSplit(seed=1).split(records, CLASSES) == a
    assert GroupedStratifiedSplit(seed=2).split(records, CLASSES) != a


def test_zero_fractions_give_empty_parts() -> None:
    records = singletons([5, 5, 5])
    split = GroupedStratifiedSplit(val=0.0, test=0.2).split(records, CLASSES)
    assert split.val == () and len(split.test) == 3
    split = GroupedStratifiedSplit(val=0.0, test=0.0).split(records, CLASSES)
    assert split.train == tuple(records) and split.val == split.test == ()


# --- errors -----------------------------------------------------------------------------


def test_a_class_with_fewer_than_three_groups_is_an_error() -> None:
    records = singletons([5, 2, 5])
    with pytest.raises(DataError) as caught:
        GroupedStratifiedSplit().split(records, CLASSES)
    text = str(caught.value)
    assert "'b'" in text and "only 2 group(s)" in text
    assert caught.value.hint is not None and "fewer parts" in caught.value.hint
    # two parts need only two groups
    GroupedStratifiedSplit(val=0.0).split(records, CLASSES)


def test_kfold_needs_k_groups_per_class() -> None:
    with pytest.raises(DataError, match=r"'b' has only 3 group\(s\)"):
        GroupedStratifiedKFold(k=4).folds(singletons([8, 3, 8]), CLASSES)


def test_synthetic_records_are_rejected() -> None:
    records = [
        *singletons([5, 5, 5]),
        Record(path="gan/x.png", label=0, group="gan-0", synthetic_source="gan-run-1"),
    ]
    for splitter in (GroupedStratifiedSplit(), GroupedStratifiedKFold(k=3)):
        with pytest.raises(ConfigError, match="synthetic"):
            splitter.split(records, CLASSES)


def test_bad_inputs_are_errors() -> None:
    with pytest.raises(DataError, match="no records"):
        GroupedStratifiedSplit().split([], CLASSES)
    with pytest.raises(DataError, match="label 5"):
        GroupedStratifiedSplit().split([Record(path="x", label=5, group="g")], CLASSES)


@pytest.mark.parametrize(
    "options",
    [
        {"val": 1.0},
        {"test": -0.1},
        {"val": 0.5, "test": 0.5},
        {"seed": -1},
        {"val": "much"},
        {"test": None},
    ],
)
def test_invalid_split_options(options: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        GroupedStratifiedSplit(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options", [{"k": 1}, {"k": 3, "fold": 3}, {"fold": -1}, {"k": 2, "val": 0.5}]
)
def test_invalid_kfold_options(options: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        GroupedStratifiedKFold(**options)  # type: ignore[arg-type]


def test_splitters_are_components() -> None:
    for splitter in (
        GroupedStratifiedSplit(val=0.2, seed=3),
        GroupedStratifiedKFold(k=3, fold=1),
        GroupedCrossValidation(k=3, fold=2, test=0.1),
    ):
        assert isinstance(splitter, Splitter)
        assert type(splitter)(**attrs.asdict(splitter)) == splitter
    assert GroupedStratifiedSplit.name == "grouped" and GroupedStratifiedKFold.name == "kfold"
    assert GroupedCrossValidation.name == "cv"
    from dermkit.plugins import get_plugin_manager

    names = {n for found in get_plugin_manager().hook.dermkit_splitters() for n in found}
    assert {"grouped", "kfold", "cv"} <= names


# --- manifests ---------------------------------------------------------------------------


def test_manifest_round_trip(tmp_path: Path) -> None:
    split = GroupedStratifiedSplit().split(singletons([6, 6, 6]), CLASSES)
    rows = split_manifest(split, CLASSES)
    assert rows[0].keys() == {"path", "label", "class", "group", "part"}
    assert [r["part"] for r in rows] == ["train"] * 12 + ["val"] * 3 + ["test"] * 3
    target = tmp_path / "run" / "split.csv"
    target.parent.mkdir()
    target.write_text("old contents\n")
    assert write_split_manifest(split, CLASSES, target) == target
    assert os.listdir(target.parent) == ["split.csv"]  # temp file renamed, nothing left over
    assert read_split_manifest(target) == split
    assert read_split_manifest(target, CLASSES) == split


def _write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _row(
    part: str = "train", group: str = "g1", label: str = "0", name: str = "a"
) -> dict[str, str]:
    return {
        "path": f"{group}-{part}.jpg",
        "label": label,
        "class": name,
        "group": group,
        "part": part,
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([_row(part="holdout")], "unknown part"),
        ([_row(label="x")], "not a whole number"),
        ([_row(), _row(part="test")], "more than one part"),
        ([_row(), _row(group="g2", name="b")], "earlier row"),
        ([{"path": "x", "label": "0", "part": "train"}], "lacks column"),
    ],
)
def test_bad_manifests_are_rejected(
    tmp_path: Path, rows: list[dict[str, str]], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        read_split_manifest(_write_rows(tmp_path / "split.csv", rows))


def test_manifest_classes_must_match(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "split.csv", [_row(name="b")])
    read_split_manifest(path)
    with pytest.raises(DataError, match="class index"):
        read_split_manifest(path, CLASSES)
    with pytest.raises(DataError, match="cannot read"):
        read_split_manifest(tmp_path / "missing.csv")


# --- the real HAM10000 metadata ---------------------------------------------------------


def _ham_records() -> tuple[list[Record], ClassIndex]:
    root = os.environ.get("DERMKIT_HAM10000", "")
    if not root or not Path(root).is_dir():
        pytest.skip("set DERMKIT_HAM10000 to a HAM10000 folder to check split quality on it")
    classes = ClassIndex(("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"))
    with (Path(root) / "HAM10000_metadata.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    records = [
        Record(
            path=f"images/{r['image_id']}.jpg", label=classes.index(r["dx"]), group=r["lesion_id"]
        )
        for r in rows
    ]
    return records, classes


@pytest.mark.ham10000
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ham10000_class_shares_within_two_points(seed: int) -> None:
    records, classes = _ham_records()
    split = GroupedStratifiedSplit(seed=seed).split(records, classes)
    assert leaked_groups(split) == {}
    lesions = [{r.group for r in part} for part in split.parts().values()]
    assert not (lesions[0] & lesions[1] or lesions[0] & lesions[2] or lesions[1] & lesions[2])
    overall = label_counts(records)
    for name, part in split.parts().items():
        assert (
            abs(len(part) / len(records) - {"train": 0.7, "val": 0.15, "test": 0.15}[name]) < 0.01
        )
        counts = label_counts(part)
        for label in range(len(classes)):
            share, expected = counts[label] / len(part), overall[label] / len(records)
            assert abs(share - expected) * 100 <= 2.0, (name, classes.name(label), share, expected)
