"""Mixup: the mixing itself, its seeding across a resume, and both training paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import tiny_lite0_experiment
from dermkit.training.config import Training


def _batches(count: int, size: int, classes: int) -> Any:
    """Batches whose inputs are one-hot example ids, so a mixture shows its weights."""
    import tensorflow as tf

    ids = np.arange(count * size)
    x = np.eye(count * size, dtype=np.float32)[ids].reshape(count, size, count * size)
    y = (ids % classes).reshape(count, size).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((x, y))


def _mixed(first_step: int, skip: int = 0, **options: Any) -> list[tuple[np.ndarray, ...]]:
    from dermkit.training.mixup import mix_batches

    settings = {"alpha": 0.4, "classes": 3, "class_weight": {0: 2.0, 1: 1.0}, "seed": 7}
    dataset = mix_batches(
        _batches(4, 6, 3).skip(skip), first_step=first_step, **(settings | options)
    )
    return [tuple(np.asarray(part) for part in batch) for batch in dataset]


def test_inputs_labels_and_weights_are_one_mixture() -> None:
    weights = np.array([2.0, 1.0, 1.0])  # class 2 left out of class_weight: weight 1
    for step, (x, soft, sample_weight) in enumerate(_mixed(0)):
        ids = np.arange(step * 6, step * 6 + 6)
        labels = ids % 3
        for row in range(6):
            share = x[row, ids]  # the mixture's weight on each example of the batch
            own = share[row]
            assert share.sum() == pytest.approx(1.0, abs=1e-6)
            assert own >= 0.5 - 1e-6  # folded: the example keeps the larger share
            partner = int(np.argmax(np.where(np.arange(6) == row, -1, share))) if own < 1 else row
            expected = np.zeros(3)
            expected[labels[row]] += own
            expected[labels[partner]] += 1 - own
            np.testing.assert_allclose(soft[row], expected, atol=1e-5)
            assert sample_weight[row] == pytest.approx(
                own * weights[labels[row]] + (1 - own) * weights[labels[partner]], abs=1e-5
            )
    # Beta(0.4, 0.4) mixes most examples visibly
    shares = np.concatenate([batch[0].max(axis=1) for batch in _mixed(0)])
    assert np.mean(shares < 0.95) > 0.3


def test_draws_depend_on_the_seed_and_continue_across_a_resume() -> None:
    straight = _mixed(0)
    resumed = _mixed(2, skip=2)  # a run resumed at its third step
    for a, b in zip(straight[2:], resumed, strict=True):
        for part_a, part_b in zip(a, b, strict=True):
            np.testing.assert_array_equal(part_a, part_b)
    other_seed = _mixed(0, seed=8)
    assert not np.array_equal(straight[0][0], other_seed[0][0])
    # each step draws afresh: the weights of step 0 and step 1 differ
    own = [np.sort(batch[0].max(axis=1)) for batch in straight[:2]]
    assert not np.allclose(own[0], own[1])


def test_alpha_must_be_positive_to_mix() -> None:
    with pytest.raises(ValueError, match="alpha > 0"):
        _mixed(0, alpha=0.0)


def test_mixup_round_trips_and_stays_out_of_recipes_that_do_not_use_it() -> None:
    assert "mixup" not in Training().to_config()
    config = Training(mixup=0.3).to_config()
    assert config["mixup"] == 0.3
    assert Training.from_config(config) == Training(mixup=0.3)
    assert Training.from_config(Training().to_config()).mixup == 0.0


def test_the_command_line_sets_mixup_in_the_recipe(tmp_path: Path) -> None:
    from dermkit.cli.recipe import apply_flags, default_recipe

    (tmp_path / "nv").mkdir()
    recipe = apply_flags(default_recipe(), {"data": str(tmp_path), "mixup": 0.2})
    assert recipe["training"]["mixup"] == 0.2
    assert Training.from_config(recipe["training"]).mixup == 0.2


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), size=32, scale=0.12, seed=3)


def _experiment(data: Path, cache_dir: str, **training: Any) -> Any:
    from dermkit.balancers.class_weights import ClassWeights

    return tiny_lite0_experiment(data, cache_dir, [ClassWeights()], **training)


@pytest.mark.slow
def test_mixup_is_applied_on_both_paths_and_resumes_exactly(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Mixing cached activations of the frozen prefix equals mixing pixels only for a
    linear prefix, so the paths differ by design; what must hold is that each path
    mixes (its loss differs from the unmixed run's) and that a resumed run mixes as an
    uninterrupted one did."""
    from dermkit.experiment import Experiment

    cache = str(tmp_path / "cache")

    def history(name: str) -> dict[str, list[float]]:
        return dict(json.loads((tmp_path / name / "history.json").read_text()))

    _experiment(tiny_data, cache, feature_cache="on", epochs=2, mixup=0.4).run(tmp_path / "mixed")
    _experiment(tiny_data, cache, feature_cache="on", epochs=1, mixup=0.4).run(tmp_path / "stopped")
    Experiment.resume(tmp_path / "stopped", epochs=2)
    a, b = history("mixed"), history("stopped")
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    np.testing.assert_allclose(b["val_loss"], a["val_loss"], rtol=1e-5)
    saved = json.loads((tmp_path / "mixed" / "config.json").read_text())
    assert saved["training"]["mixup"] == 0.4

    _experiment(tiny_data, cache, feature_cache="on", epochs=1).run(tmp_path / "plain")
    assert history("plain")["loss"][0] != pytest.approx(a["loss"][0], rel=1e-3)
    for mixup in (0.0, 0.4):
        run = tmp_path / f"pixels-{mixup}"
        _experiment(tiny_data, cache, feature_cache="off", epochs=1, mixup=mixup).run(run)
    pixel_losses = [history(f"pixels-{mixup}")["loss"][0] for mixup in (0.0, 0.4)]
    assert pixel_losses[0] != pytest.approx(pixel_losses[1], rel=1e-3)
