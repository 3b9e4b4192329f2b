"""Metrics and bootstrap intervals: hand-worked cases, and agreement with scikit-learn."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from dermkit.errors import ConfigError, DataError
from dermkit.evaluation import metrics as m
from dermkit.evaluation.bootstrap import (
    bootstrap_intervals,
    percentile_interval,
    resample_confusions,
)

# --------------------------------------------------------------------------- strategies


@st.composite
def predictions(draw: st.DrawFn, min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probability rows; scores rounded to one decimal so ties are common."""
    k = draw(st.integers(2, 6))
    n = draw(st.integers(min_n, 60))
    labels = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    raw = draw(
        st.lists(st.lists(st.integers(0, 10), min_size=k, max_size=k), min_size=n, max_size=n)
    )
    scores = np.asarray(raw, dtype=np.float64) + 1e-3
    return np.asarray(labels, dtype=np.int64), scores / scores.sum(axis=1, keepdims=True)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- hand-worked


def test_hand_worked_three_class_case() -> None:
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = m.confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    scores = m.per_class_scores(cm)
    np.testing.assert_allclose(scores["recall"], [2 / 3, 1 / 2, 1])
    np.testing.assert_allclose(scores["precision"], [1, 1 / 2, 1 / 2])
    np.testing.assert_allclose(scores["f1"], [0.8, 0.5, 2 / 3])
    assert m.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    assert m.balanced_accuracy(y_true, y_pred, 3) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    np.testing.assert_allclose(m.normalise_rows(cm), [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5], [0, 0, 1]])


def test_balanced_accuracy_ignores_absent_classes() -> None:
    # class 2 never occurs in y_true but is predicted once: it has no recall to average
    y_true = [0, 0, 1, 1]
    y_pred = [0, 2, 1, 1]
    assert m.balanced_accuracy(y_true, y_pred, 4) == pytest.approx((0.5 + 1.0) / 2)
    scores = m.per_class_scores(m.confusion_matrix(y_true, y_pred, 4))
    assert np.isnan(scores["recall"][2]) and np.isnan(scores["recall"][3])
    assert scores["precision"][2] == 0.0  # predicted once, wrongly
    assert np.isnan(scores["precision"][3])  # never predicted
    assert np.isnan(scores["f1"][3])  # neither present nor predicted


def test_auc_hand_worked_with_ties() -> None:
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4, 0.4>0.1)
    assert m.binary_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert np.isnan(m.binary_auc([1, 1], [0.2, 0.3]))
    assert np.isnan(m.binary_auc([0, 0], [0.2, 0.3]))
    np.testing.assert_allclose(m.rankdata([3, 1, 3, 2]), [3.5, 1, 3.5, 2])


def test_macro_auc_skips_undefined_classes() -> None:
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.2, 0.8, 0.0]])
    metrics = m.compute_metrics(y, probs)
    assert metrics.auc[0] == 1.0 and metrics.auc[1] == 1.0 and np.isnan(metrics.auc[2])
    assert metrics.macro_auc == 1.0


def test_roc_curve_hand_worked() -> None:
    fpr, tpr, thr = m.roc_curve([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], drop_intermediate=False)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert thr[0] == np.inf
    np.testing.assert_allclose(thr[1:], [0.9, 0.8, 0.7, 0.1])


def test_sensitivity_at_specificity_is_an_achievable_operating_point() -> None:
    # 10 negatives with scores 0..0.9, 4 positives
    neg = np.arange(10) / 10
    pos = np.array([0.95, 0.85, 0.55, 0.05])
    y = np.r_[np.zeros(10), np.ones(4)]
    s = np.r_[neg, pos]
    p80, p90, p95 = m.sensitivity_at_specificity(y, s, (0.8, 0.9, 0.95))
    # threshold 0.85 -> spec 0.9 (0.9 is the only negative above), sens 2/4
    assert p90.sensitivity == 0.5 and p90.specificity == pytest.approx(0.9)
    assert p90.threshold == pytest.approx(0.85)
    # spec >= 0.8 allows two negatives above threshold: 0.8 -> sens still 2/4
    assert p80.sensitivity == 0.5 and p80.specificity >= 0.8
    # spec >= 0.95 allows no negative above: only 0.95 is called positive
    assert p95.sensitivity == 0.25 and p95.specificity == 1.0
    for point in (p80, p90, p95):
        called = s >= point.threshold
        assert np.mean(called[y == 1]) == pytest.approx(point.sensitivity)
        assert np.mean(~called[y == 0]) == pytest.approx(point.specificity)


def test_sensitivity_undefined_without_positives() -> None:
    (point,) = m.sensitivity_at_specificity([0, 0, 0], [0.1, 0.2, 0.3], (0.9,))
    assert np.isnan(point.sensitivity)


def test_ece_hand_worked() -> None:
    # two samples at confidence 0.9 (one right), two at 0.6 (both right)
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    bins = m.reliability_bins(y, probs)
    filled = np.flatnonzero(np.asarray(bins.counts))
    assert len(bins.edges) == 16 and len(bins.counts) == 15
    assert [bins.counts[i] for i in filled] == [2, 2]
    expected = 0.5 * abs(1.0 - 0.6) + 0.5 * abs(0.5 - 0.9)
    assert m.expected_calibration_error(y, probs) == pytest.approx(expected)
    assert all(np.isnan(bins.accuracy[i]) for i in range(15) if i not in filled)


def test_perfect_classifier_scores_one_everywhere() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 7, 300)
    probs = np.full((300, 7), 1e-6)
    probs[np.arange(300), y] = 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    metrics = m.compute_metrics(y, probs, positive_class=4)
    assert metrics.accuracy == metrics.balanced_accuracy == 1.0
    assert metrics.macro_f1 == metrics.weighted_f1 == 1.0
    assert metrics.macro_auc == 1.0 and all(a == 1.0 for a in metrics.auc)
    assert all(r == 1.0 for r in metrics.recall) and all(p == 1.0 for p in metrics.precision)
    assert metrics.ece < 1e-4
    assert all(p.sensitivity == 1.0 for p in metrics.operating_points)
    ci = bootstrap_intervals(y, probs.argmax(axis=1), 7, n_boot=200)
    assert ci.balanced_accuracy.low == ci.balanced_accuracy.high == 1.0


def test_input_errors_name_the_problem() -> None:
    with pytest.raises(DataError, match="out of range"):
        m.confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(DataError, match="rows of probabilities"):
        m.compute_metrics([0, 1, 1], [[0.5, 0.5]])
    with pytest.raises(DataError, match="NaN"):
        m.compute_metrics([0], [[np.nan, 1.0]])
    with pytest.raises(DataError, match="integers"):
        m.as_labels([0.5, 1.0])


def test_metrics_json_round_trip() -> None:
    y = np.array([0, 1, 2, 2, 1])
    probs = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4], [0.3, 0.3, 0.4]]
    )
    metrics = m.compute_metrics(y, probs, positive_class=2, specificities=(0.5, 0.9))
    again = m.Metrics.from_json(metrics.to_json())
    assert again.to_json() == metrics.to_json()
    assert again.roc[0].thresholds[0] == np.inf


# --------------------------------------------------------------------------- vs scikit-learn


@FAST
@given(predictions())
def test_counts_and_scores_match_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = data
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    cm = m.confusion_matrix(y, pred, k)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred, labels=list(range(k))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ba = skm.balanced_accuracy_score(y, pred)
        macro = skm.f1_score(y, pred, average="macro")
        weighted = skm.f1_score(y, pred, average="weighted")
        p, r, f, s = skm.precision_recall_fscore_support(
            y, pred, labels=list(range(k)), zero_division=np.nan
        )
    metrics = m.compute_metrics(y, probs)
    assert metrics.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert metrics.balanced_accuracy == pytest.approx(ba)
    assert metrics.macro_f1 == pytest.approx(macro)
    assert metrics.weighted_f1 == pytest.approx(weighted)
    np.testing.assert_allclose(metrics.precision, p, equal_nan=True)
    np.testing.assert_allclose(metrics.recall, r, equal_nan=True)
    np.testing.assert_allclose(metrics.f1, f, equal_nan=True)
    np.testing.assert_array_equal(metrics.support, s)


@FAST
@given(predictions())
def test_auc_and_roc_match_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = data
    auc = m.roc_auc_ovr(y, probs)
    for c in range(probs.shape[1]):
        positive = y == c
        if positive.all() or not positive.any():
            assert np.isnan(auc[c])
            continue
        assert auc[c] == pytest.approx(skm.roc_auc_score(positive, probs[:, c]))
        for drop in (True, False):
            ours = m.roc_curve(positive, probs[:, c], drop_intermediate=drop)
            theirs = skm.roc_curve(positive, probs[:, c], drop_intermediate=drop)
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_allclose(a, b)
        # the rank formula and the trapezoid under our curve agree
        fpr, tpr, _ = m.roc_curve(positive, probs[:, c])
        assert np.trapezoid(tpr, fpr) == pytest.approx(auc[c])


# --------------------------------------------------------------------------- bootstrap


@FAST
@given(predictions(), st.integers(0, 2**31 - 1), st.booleans())
def test_every_interval_contains_its_estimate(
    data: tuple[np.ndarray, np.ndarray], seed: int, grouped: bool
) -> None:
    y, probs = data
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    groups = [f"lesion{i // 3}" for i in range(y.size)] if grouped else None
    ci = bootstrap_intervals(y, pred, k, groups=groups, n_boot=200, seed=seed)
    metrics = m.compute_metrics(y, probs)
    assert ci.accuracy.contains(metrics.accuracy)
    assert ci.balanced_accuracy.contains(metrics.balanced_accuracy)
    assert ci.macro_f1.contains(metrics.macro_f1)
    for c in range(k):
        if np.isnan(metrics.recall[c]):
            assert not ci.recall[c].defined
        else:
            assert ci.recall[c].contains(metrics.recall[c])
            assert 0.0 <= ci.recall[c].low <= ci.recall[c].high <= 1.0


def test_percentile_interval_is_widened_to_the_estimate() -> None:
    samples = np.r_[np.full(99, 0.5), np.full(1, 1.0)]  # percentiles: 0.5 and 0.5
    interval = percentile_interval(samples, 0.95)
    assert interval.widened and interval.high == 0.95 and interval.low == 0.5
    plain = percentile_interval(samples, 0.5)
    assert not plain.widened
    assert not percentile_interval([np.nan, np.nan], 0.5).defined


def test_bootstrap_is_seeded_and_fast() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 10_000)
    pred = np.where(rng.random(10_000) < 0.7, y, rng.integers(0, 7, 10_000))
    groups = [f"L{i // 2}" for i in range(10_000)]
    start = time.perf_counter()
    a = bootstrap_intervals(y, pred, 7, groups=groups, n_boot=1000, seed=5)
    assert time.perf_counter() - start < 5.0
    b = bootstrap_intervals(y, pred, 7, groups=groups, n_boot=1000, seed=5)
    c = bootstrap_intervals(y, pred, 7, groups=groups, n_boot=1000, seed=6)
    assert a == b and a != c
    assert a.grouped and a.n_groups == 5000


def test_cluster_bootstrap_keeps_groups_together() -> None:
    # every group is 4 copies of one record: each resample's cells are multiples of 4,
    # and resampled totals stay at 4 * number of groups
    y = np.repeat([0, 1, 1, 0, 1], 4)
    pred = np.repeat([0, 1, 0, 0, 1], 4)
    groups = np.repeat(["a", "b", "c", "d", "e"], 4).tolist()
    cms, n_groups = resample_confusions(y, pred, 2, groups=groups, n_boot=300, seed=1)
    assert n_groups == 5
    assert np.all(cms % 4 == 0) and np.all(cms.sum(axis=(1, 2)) == 20)


def test_duplicated_records_widen_intervals_only_when_ungrouped() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    pred = np.where(rng.random(200) < 0.75, y, 1 - y)
    base = bootstrap_intervals(y, pred, 2, n_boot=2000, seed=0).accuracy
    y4, pred4 = np.repeat(y, 4), np.repeat(pred, 4)
    groups = np.repeat(np.arange(200), 4).tolist()
    naive = bootstrap_intervals(y4, pred4, 2, n_boot=2000, seed=0).accuracy
    clustered = bootstrap_intervals(y4, pred4, 2, groups=groups, n_boot=2000, seed=0).accuracy
    width = base.high - base.low
    assert naive.high - naive.low < 0.7 * width  # copies pretend to be evidence
    assert clustered.high - clustered.low == pytest.approx(width, rel=0.2)


def test_bootstrap_rejects_bad_options() -> None:
    with pytest.raises(ConfigError):
        bootstrap_intervals([0, 1], [0, 1], 2, n_boot=0)
    with pytest.raises(ConfigError):
        bootstrap_intervals([0, 1], [0, 1], 2, level=1.5)
    with pytest.raises(DataError, match="groups"):
        bootstrap_intervals([0, 1], [0, 1], 2, groups=["a"])
