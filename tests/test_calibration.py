"""Temperature scaling: recovers a known temperature, keeps the arg-max, round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dermkit.errors import ConfigError, DataError
from dermkit.evaluation.calibration import (
    T_MAX,
    T_MIN,
    TemperatureScaling,
    fit_temperature,
    nll,
    softmax,
)
from dermkit.evaluation.metrics import expected_calibration_error


def _calibrated_sample(n: int = 20_000, k: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true label distribution, and labels drawn from it."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = softmax(logits)
    cumulative = probs.cumsum(axis=1)
    labels = (rng.random((n, 1)) > cumulative).sum(axis=1)
    return logits, np.minimum(labels, k - 1)


@pytest.mark.parametrize("true_t", [2.5, 0.6])
def test_recovers_known_temperature_from_probabilities(true_t: float) -> None:
    logits, labels = _calibrated_sample()
    distorted = softmax(logits * true_t)  # over-confident for T > 1, under- for T < 1
    fitted = TemperatureScaling.fit(distorted, labels)
    assert fitted.temperature == pytest.approx(true_t, rel=0.05)
    calibrated = fitted.apply(distorted)
    assert expected_calibration_error(labels, calibrated) < expected_calibration_error(
        labels, distorted
    )
    assert expected_calibration_error(labels, calibrated) < 0.02


def test_logits_and_probabilities_give_the_same_fit() -> None:
    logits, labels = _calibrated_sample(5000, 4, seed=2)
    from_logits = fit_temperature(logits * 3.0, labels, kind="logits")
    from_probs = fit_temperature(softmax(logits * 3.0), labels)
    assert from_logits == pytest.approx(from_probs, rel=1e-6)
    assert from_logits == pytest.approx(3.0, rel=0.1)


def test_fit_minimises_nll() -> None:
    logits, labels = _calibrated_sample(3000, 5, seed=4)
    probs = softmax(logits * 1.7)
    t = fit_temperature(probs, labels)
    best = nll(probs, labels, t)
    for other in (t * 0.97, t * 1.03, 1.0):
        assert best <= nll(probs, labels, other)


def test_apply_keeps_the_predicted_class() -> None:
    logits, _ = _calibrated_sample(500, 7, seed=1)
    probs = softmax(logits)
    for t in (0.3, 1.0, 4.0):
        scaled = TemperatureScaling(t).apply(probs)
        np.testing.assert_array_equal(scaled.argmax(axis=1), probs.argmax(axis=1))
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    np.testing.assert_allclose(TemperatureScaling(1.0).apply(probs), probs, atol=1e-12)


def test_extreme_and_flat_scores_stay_in_bounds() -> None:
    separable = np.array([[0.999, 0.001], [0.001, 0.999]])
    assert fit_temperature(separable, [0, 1]) == T_MIN
    wrong = np.array([[0.999, 0.001], [0.001, 0.999]])
    assert fit_temperature(wrong, [1, 0]) == T_MAX
    assert fit_temperature(np.full((3, 3), 1 / 3), [0, 1, 2]) == 1.0


def test_save_and_load(tmp_path: Path) -> None:
    scaler = TemperatureScaling(1.83)
    path = scaler.save(tmp_path / "run" / "temperature.json")
    assert json.loads(path.read_text()) == {"kind": "temperature", "temperature": 1.83}
    assert TemperatureScaling.load(path) == scaler


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        TemperatureScaling(0.0)
    with pytest.raises(ConfigError):
        TemperatureScaling(float("nan"))
    with pytest.raises(DataError, match="non-negative"):
        fit_temperature([[-0.1, 1.1]], [0])
    with pytest.raises(DataError, match="labels"):
        fit_temperature([[0.4, 0.6]], [0, 1])
    (tmp_path / "bad.json").write_text('{"kind": "other"}')
    with pytest.raises(DataError, match=r"bad\.json"):
        TemperatureScaling.load(tmp_path / "bad.json")
    with pytest.raises(DataError, match="not found"):
        TemperatureScaling.load(tmp_path / "missing.json")
