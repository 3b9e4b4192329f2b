"""Class weights and imbalance ratio: scikit-learn's convention and the study's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.class_weight import compute_class_weight

from dermkit.data.stats import class_weights, imbalance_ratio
from dermkit.errors import ConfigError, DataError

HAM_TRAIN = [327, 442, 766, 115, 753, 4519, 142]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=8))
def test_balanced_matches_scikit_learn(counts: list[int]) -> None:
    y = np.repeat(np.arange(len(counts)), counts)
    expected = compute_class_weight("balanced", classes=np.arange(len(counts)), y=y)
    weights = class_weights(counts)
    assert list(weights) == list(range(len(counts)))
    np.testing.assert_allclose([weights[i] for i in range(len(counts))], expected, rtol=1e-12)
    # mean weight over the images is 1: the loss keeps its scale
    assert sum(w * n for w, n in zip(weights.values(), counts, strict=True)) == pytest.approx(
        sum(counts)
    )


def test_majority_gives_the_largest_class_weight_one() -> None:
    weights = class_weights(HAM_TRAIN, "majority")
    assert weights[5] == 1.0 and max(weights.values()) == pytest.approx(4519 / 115)
    assert weights[3] == pytest.approx(4519 / 115)
    balanced = class_weights(HAM_TRAIN)
    # same ratios between classes, only the scale differs
    ratios = {i: weights[i] / balanced[i] for i in weights}
    assert max(ratios.values()) == pytest.approx(min(ratios.values()))


def test_zero_count_classes_get_zero_weight() -> None:
    weights = class_weights([10, 0, 30])
    assert weights[1] == 0.0
    # k counts only the classes present, so scikit-learn on those two agrees
    expected = compute_class_weight(
        "balanced", classes=np.array([0, 2]), y=np.repeat([0, 2], [10, 30])
    )
    assert [weights[0], weights[2]] == pytest.approx(list(expected))
    assert class_weights([10, 0, 30], "majority") == {0: 3.0, 1: 0.0, 2: 1.0}


def test_imbalance_ratio() -> None:
    assert imbalance_ratio([5, 5, 5]) == 1.0
    assert imbalance_ratio(HAM_TRAIN) == pytest.approx(4519 / 115)
    assert imbalance_ratio([6705, 0, 115]) == pytest.approx(58.3, abs=0.05)


@pytest.mark.parametrize("counts", [[0, 0], [], [3, -1], [2.5, 1]])
def test_bad_counts(counts: list[int]) -> None:
    with pytest.raises(DataError):
        class_weights(counts)
    with pytest.raises(DataError):
        imbalance_ratio(counts)


def test_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="mode"):
        class_weights([1, 2], "inverse")  # type: ignore[arg-type]
