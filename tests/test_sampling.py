"""Balanced sampling: equal draws per class in every batch and in the balanced test."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dermkit.data.sampling import balanced_batches, balanced_indices, balanced_schedule
from dermkit.errors import ConfigError, DataError

LABELS = [0] * 50 + [1] * 7 + [2] * 20  # class 1 is smaller than a batch's share


def per_class(indices: np.ndarray, labels: list[int]) -> Counter[int]:
    return Counter(labels[i] for i in indices.tolist())


def test_balanced_indices_draws_equally_and_shuffles() -> None:
    out = balanced_indices(LABELS, 10, seed=0)
    assert out.dtype == np.int64 and out.shape == (30,)
    assert per_class(out, LABELS) == {0: 10, 1: 10, 2: 10}
    assert [LABELS[i] for i in out] != sorted(LABELS[i] for i in out)  # mixed, not by class
    np.testing.assert_array_equal(out, balanced_indices(LABELS, 10, seed=0))
    assert not np.array_equal(out, balanced_indices(LABELS, 10, seed=1))


def test_replacement_only_where_needed_unless_asked() -> None:
    out = balanced_indices(LABELS, 10, seed=0)
    small = [i for i in out if LABELS[i] == 1]
    large = [i for i in out if LABELS[i] == 0]
    assert len(set(small)) <= 7 < len(small)  # class 1 (7 samples) repeats
    assert len(set(large)) == len(large)  # class 0 (50 samples) does not
    forced = balanced_indices(LABELS, 40, seed=0, replace=True)
    assert len(set(i for i in forced if LABELS[i] == 0)) < 40
    with pytest.raises(DataError, match="replace=False"):
        balanced_indices(LABELS, 10, seed=0, replace=False)
    assert len(set(balanced_indices(LABELS, 7, seed=0, replace=False))) == 21


def test_missing_classes() -> None:
    # without num_classes only present labels are classes
    assert per_class(balanced_indices([0, 0, 2, 2], 2, seed=0), [0, 0, 2, 2]) == {0: 2, 2: 2}
    with pytest.raises(DataError, match="label\\(s\\) 1 have no samples"):
        balanced_indices([0, 0, 2, 2], 2, seed=0, num_classes=3)
    with pytest.raises(DataError, match="out of range"):
        list(balanced_batches([0, 3], 2, 1, 0, num_classes=3))


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        balanced_indices(LABELS, 0, seed=0)
    with pytest.raises(DataError, match="no labels"):
        balanced_indices([], 3, seed=0)
    with pytest.raises(DataError, match="negative"):
        balanced_indices([0, -1], 3, seed=0)
    with pytest.raises(ConfigError):
        next(balanced_batches(LABELS, 0, 1, 0))
    with pytest.raises(ConfigError):
        next(balanced_batches(LABELS, 6, -1, 0))


def test_batches_hold_exactly_b_over_k_per_class() -> None:
    batches = list(balanced_batches(LABELS, 12, 20, seed=3))
    assert len(batches) == 20
    for batch in batches:
        assert batch.dtype == np.int64 and batch.shape == (12,)
        assert per_class(batch, LABELS) == {0: 4, 1: 4, 2: 4}
    again = list(balanced_batches(LABELS, 12, 20, seed=3))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_remainder_goes_to_random_distinct_classes() -> None:
    totals: Counter[int] = Counter()
    extra_classes = set()
    for batch in balanced_batches(LABELS, 7, 300, seed=0):  # 7 = 2 * 3 + 1
        counts = per_class(batch, LABELS)
        assert sorted(counts.values()) == [2, 2, 3]
        extra_classes.add(max(counts, key=counts.__getitem__))
        totals.update(counts)
    assert extra_classes == {0, 1, 2}
    assert max(totals.values()) - min(totals.values()) < 60  # about 700 each


def test_small_classes_cycle_through_every_sample_before_repeating() -> None:
    draws = [i for b in balanced_batches(LABELS, 6, 7, seed=0) for i in b if LABELS[i] == 1]
    assert len(draws) == 14
    assert Counter(draws) == {i: 2 for i in range(50, 57)}  # each of the 7 exactly twice


def test_endless_and_schedule() -> None:
    endless = balanced_batches(LABELS, 6, None, seed=1)
    first = list(itertools.islice(endless, 5))
    schedule = balanced_schedule(LABELS, 6, 5, seed=1)
    assert schedule.shape == (5, 6)
    np.testing.assert_array_equal(schedule, np.stack(first))
    assert balanced_schedule(LABELS, 6, 0, seed=1).shape == (0, 6)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=1, max_size=80),
    batch_size=st.integers(1, 24),
    seed=st.integers(0, 2**31),
)
def test_batches_are_balanced_for_any_labels(labels: list[int], batch_size: int, seed: int) -> None:
    k = len(set(labels))
    for batch in balanced_batches(labels, batch_size, 3, seed):
        assert len(batch) == batch_size and all(0 <= i < len(labels) for i in batch)
        counts = per_class(batch, labels)
        assert set(counts) <= set(labels)
        assert all(batch_size // k <= counts[c] <= batch_size // k + 1 for c in set(labels))
