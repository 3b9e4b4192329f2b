"""Logit adjustment: the loss, the balancer that asks for it, and runs that train with it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import tiny_lite0_experiment
from dermkit.core import BalanceContext, ClassIndex, Record, TrainingPlan
from dermkit.errors import ConfigError


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy of softmax(logits) against probability-vector targets."""
    log_p = np.log(_softmax(logits))
    return float(-np.mean(np.sum(targets * log_p, axis=1)))


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 4)) * 2.0
    labels = rng.integers(0, 4, size=16)
    offsets = np.log(np.array([0.6, 0.25, 0.1, 0.05]))
    return logits, labels, offsets


def test_the_loss_is_cross_entropy_of_the_shifted_logits(
    scores: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    from dermkit.training.losses import LogitAdjustedCrossEntropy

    logits, labels, offsets = scores
    probabilities = _softmax(logits).astype(np.float32)
    one_hot = np.eye(4)[labels]
    loss = LogitAdjustedCrossEntropy(offsets.tolist())
    got = float(np.asarray(loss(labels, probabilities)))
    assert got == pytest.approx(_cross_entropy(logits + offsets, one_hot), rel=1e-4)
    # a rare class must beat a common one by a margin: the adjusted loss is not the plain one
    assert got != pytest.approx(_cross_entropy(logits, one_hot), rel=1e-3)
    # soft targets (mixup) give the same figure for one-hot vectors, and mix linearly
    soft_loss = LogitAdjustedCrossEntropy(offsets.tolist(), soft_labels=True)
    assert float(np.asarray(soft_loss(one_hot, probabilities))) == pytest.approx(got, rel=1e-4)
    mixed = 0.7 * one_hot + 0.3 * np.eye(4)[(labels + 1) % 4]
    assert float(np.asarray(soft_loss(mixed, probabilities))) == pytest.approx(
        _cross_entropy(logits + offsets, mixed), rel=1e-4
    )


def test_zero_offsets_give_keras_plain_cross_entropy(
    scores: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    import keras

    from dermkit.training.losses import LogitAdjustedCrossEntropy

    logits, labels, _ = scores
    probabilities = _softmax(logits).astype(np.float32)
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probabilities)
    adjusted = LogitAdjustedCrossEntropy([0.0] * 4)(labels, probabilities)
    assert float(np.asarray(adjusted)) == pytest.approx(float(np.asarray(plain)), rel=1e-5)


def _plan(counts: list[int]) -> tuple[TrainingPlan, BalanceContext]:
    names = tuple(f"c{i}" for i in range(len(counts)))
    records = tuple(
        Record(path=Path(f"{label}-{i}.png"), label=label, group=f"{label}-{i}")
        for label, n in enumerate(counts)
        for i in range(n)
    )
    return TrainingPlan(records=records), BalanceContext(ClassIndex(names), 8, 0)


def test_the_balancer_sets_tau_times_log_prior_and_says_so() -> None:
    from dermkit.balancers.logit_adjustment import LogitAdjustment

    plan, context = _plan([60, 30, 10])
    adjusted = LogitAdjustment(tau=0.5).apply(plan, context)
    assert adjusted.logit_offsets == pytest.approx(
        tuple(0.5 * math.log(n / 100) for n in (60, 30, 10))
    )
    assert adjusted.class_weight is None and adjusted.records == plan.records
    assert adjusted.notes[-1].startswith("logit_adjustment (tau 0.5)")
    assert "c2=-1.15" in adjusted.notes[-1]


def test_it_refuses_class_weights_in_either_order_and_absent_classes() -> None:
    from dermkit.balancers.class_weights import ClassWeights
    from dermkit.balancers.logit_adjustment import LogitAdjustment

    plan, context = _plan([60, 30, 10])
    with pytest.raises(ConfigError, match="over-correct"):
        LogitAdjustment().apply(ClassWeights().apply(plan, context), context)
    with pytest.raises(ConfigError, match="over-correct"):
        ClassWeights().apply(LogitAdjustment().apply(plan, context), context)
    empty, empty_context = _plan([60, 0, 10])
    with pytest.raises(ConfigError, match="none of c1"):
        LogitAdjustment().apply(empty, empty_context)
    for tau in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="positive"):
            LogitAdjustment(tau=tau)


def test_it_is_registered_and_built_from_a_recipe() -> None:
    from dermkit import LogitAdjustment
    from dermkit.cli.recipe import _apply_balancers

    config: dict[str, Any] = {"balancers": []}
    _apply_balancers(
        config,
        {"balancer": ["logit_adjustment"], "balancer_option": ["logit_adjustment.tau=0.5"]},
    )
    assert config["balancers"] == [{"name": "logit_adjustment", "tau": 0.5}]
    from dermkit.plugins import lookup

    assert lookup("balancers", "logit_adjustment") is LogitAdjustment


def test_a_compiled_model_saves_and_loads_with_its_adjusted_loss(tmp_path: Path) -> None:
    import keras

    from dermkit.models import load_model
    from dermkit.training.losses import LogitAdjustedCrossEntropy
    from dermkit.training.trainer import compile_for_training

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    compile_for_training(model, keras.optimizers.Adam(1e-3), logit_offsets=[-0.1, -2.3])
    model.fit(np.ones((4, 3)), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, LogitAdjustedCrossEntropy)
    assert loaded.loss.offsets == pytest.approx([-0.1, -2.3])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), size=32, scale=0.12, seed=3)


@pytest.mark.slow
def test_runs_train_with_it_on_both_paths_and_resume_with_it(
    tiny_data: Path, tmp_path: Path
) -> None:
    from dermkit import Experiment
    from dermkit.balancers.logit_adjustment import LogitAdjustment
    from dermkit.models import load_model
    from dermkit.training.losses import LogitAdjustedCrossEntropy

    cache = str(tmp_path / "cache")

    def losses(name: str) -> list[float]:
        return list(json.loads((tmp_path / name / "history.json").read_text())["loss"])

    for path in ("on", "off"):
        for name, balancer in (("plain", []), ("adjusted", [LogitAdjustment()])):
            tiny_lite0_experiment(tiny_data, cache, balancer, feature_cache=path).run(
                tmp_path / f"{name}-{path}"
            )
        # same seed, same data order: only the loss differs
        assert losses(f"adjusted-{path}")[0] != pytest.approx(losses(f"plain-{path}")[0], rel=1e-3)
    plan = json.loads((tmp_path / "adjusted-on" / "plan.json").read_text())
    assert set(plan["logit_offsets"]) == set(plan["images_per_class"])
    saved = json.loads((tmp_path / "adjusted-on" / "config.json").read_text())
    assert saved["balancers"] == [{"name": "logit_adjustment", "tau": 1.0}]
    checkpoint = load_model(tmp_path / "adjusted-on" / "checkpoints" / "last.keras")
    assert isinstance(checkpoint.loss, LogitAdjustedCrossEntropy)

    # a resumed run goes on with the same loss as an uninterrupted one
    tiny_lite0_experiment(tiny_data, cache, [LogitAdjustment()], feature_cache="on", epochs=2).run(
        tmp_path / "straight"
    )
    Experiment.resume(tmp_path / "adjusted-on", epochs=2)
    np.testing.assert_allclose(losses("adjusted-on"), losses("straight"), rtol=1e-5)
