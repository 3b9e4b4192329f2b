"""Training through Experiment: each model trains, saves, reloads; runs resume after a stop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dermkit.balancers.augment import Augment
from dermkit.balancers.balanced_batches import BalancedBatches
from dermkit.balancers.class_weights import ClassWeights
from dermkit.balancers.oversample import Oversample
from dermkit.core import BalanceContext, ClassIndex, Record, TrainingPlan
from dermkit.training.config import Training
from dermkit.training.stream import epoch_indices


def records_with_labels(labels: list[int]) -> tuple[Record, ...]:
    return tuple(Record(f"img{i}.png", label, f"g{i}") for i, label in enumerate(labels))


def test_shuffled_epochs_cover_every_record_in_full_batches() -> None:
    plan = TrainingPlan(records=records_with_labels([0] * 7 + [1] * 3))
    first = epoch_indices(plan, batch_size=4, seed=1, epoch=0)
    assert len(first) == 12  # 3 full steps
    assert set(first.tolist()) == set(range(10))
    assert np.array_equal(first, epoch_indices(plan, batch_size=4, seed=1, epoch=0))
    assert not np.array_equal(first, epoch_indices(plan, batch_size=4, seed=1, epoch=1))


def test_balanced_batches_draw_equal_counts_per_class() -> None:
    plan = TrainingPlan(records=records_with_labels([0] * 20 + [1] * 3 + [2] * 5))
    context = BalanceContext(classes=ClassIndex(("a", "b", "c")), batch_size=6, seed=0)
    plan = BalancedBatches(steps_per_epoch=5).apply(plan, context)
    order = epoch_indices(plan, batch_size=6, seed=0, epoch=0)
    labels = np.array([plan.records[i].label for i in order]).reshape(5, 6)
    for batch in labels:
        assert np.bincount(batch, minlength=3).tolist() == [2, 2, 2]


def test_class_weights_both_modes() -> None:
    plan = TrainingPlan(records=records_with_labels([0] * 8 + [1] * 2))
    context = BalanceContext(classes=ClassIndex(("a", "b")), batch_size=4, seed=0)
    balanced = ClassWeights().apply(plan, context).class_weight
    majority = ClassWeights(mode="majority").apply(plan, context).class_weight
    assert balanced == pytest.approx({0: 10 / 16, 1: 10 / 4})
    assert majority == pytest.approx({0: 1.0, 1: 4.0})


def test_oversample_then_weights_compose() -> None:
    plan = TrainingPlan(records=records_with_labels([0] * 9 + [1] * 2))
    context = BalanceContext(classes=ClassIndex(("a", "b")), batch_size=4, seed=0)
    plan = Oversample(ratio=1.0).apply(plan, context)
    plan = Augment().apply(plan, context)
    plan = ClassWeights().apply(plan, context)
    counts = np.bincount([r.label for r in plan.records])
    assert counts.tolist() == [9, 9]
    assert plan.class_weight == pytest.approx({0: 1.0, 1: 1.0})
    assert plan.augmentations == ("flip", "rotate90", "zoom", "color")
    assert len(plan.notes) == 3


def test_augmenter_keeps_shape_and_range() -> None:
    import tensorflow as tf

    from dermkit.balancers.augment import build_augmenter

    augment = build_augmenter(("flip", "rotate90", "zoom", "color"), 1.0, seed=0)
    images = tf.random.uniform((4, 16, 16, 3), 0, 255, seed=1)
    out = augment(images)
    assert out.shape == (4, 16, 16, 3)
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 255.0


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), size=32, scale=0.12, seed=3)


def tiny_experiment(data: Path, model: Any, size: int, **training: Any) -> Any:
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment

    options = {"epochs": 1, "batch_size": 8, "verbose": 0, **training}
    return Experiment(
        data=ImageFolder(data),
        split=GroupedStratifiedSplit(val=0.25, test=0.25, seed=0),
        model=model,
        balancer=[ClassWeights(), Augment(recipes=("flip", "rotate90"))],
        training=Training(**options),
        image_size=size,
        cache_dir="",
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options", "size"),
    [
        ("lfn", {"dense": (16,)}, 64),
        ("resnet50", {"weights": None, "trainable_layers": 4, "dense": (16,)}, 32),
        ("inception_v3", {"weights": None, "dense": (16,), "dropout": 0.3}, 75),
    ],
)
def test_each_model_trains_saves_and_reloads_identically(
    tiny_data: Path, tmp_path: Path, name: str, options: dict[str, Any], size: int
) -> None:
    import keras

    from dermkit.config import build_component
    from dermkit.data.folder import ImageFolder
    from dermkit.experiment import Experiment
    from dermkit.training.trainer import predict_probabilities

    model = build_component("models", {"name": name, **options})
    experiment = tiny_experiment(tiny_data, model, size)
    run = tmp_path / name
    result = experiment.run(run)

    for artifact in (
        "config.json",
        "classes.json",
        "split.csv",
        "history.csv",
        "history.json",
        "model.keras",
        "problems.json",
        "plan.json",
        "summary.json",
    ):
        assert (run / artifact).exists(), artifact
    assert len(result.history["loss"]) == 1
    assert 0.0 <= result.metrics["val"]["balanced_accuracy"] <= 1.0

    reloaded = keras.models.load_model(run / "model.keras", safe_mode=True)
    split_val = [r for r in _manifest(run) if r[1] == "val"]
    records = [rec for rec, _ in split_val]
    again = predict_probabilities(reloaded, records, experiment.image_loader(), 8)
    np.testing.assert_allclose(again, np.load(run / "probabilities_val.npy"), rtol=1e-5, atol=1e-6)

    config = json.loads((run / "config.json").read_text())
    assert Experiment.from_config(config).to_config() == config
    assert isinstance(Experiment.from_run(run).data, ImageFolder)


def _manifest(run: Path) -> list[tuple[Record, str]]:
    from dermkit.data.splits import read_split_manifest

    split = read_split_manifest(run / "split.csv")
    return [(r, part) for part, recs in split.parts().items() for r in recs]


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_a_stopped_run_resumes_without_gaps_or_repeats(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate a crash right after epoch 1 was checkpointed, then resume to 3 epochs."""
    from dermkit.errors import ConfigError
    from dermkit.models.lfn import LFN
    from dermkit.training import trainer

    run = tmp_path / "run"
    original = trainer._EpochEnd.make

    def crash_after_first_epoch(callback: Any, seed: int) -> Any:
        def wrapped(epoch: int, logs: dict[str, float]) -> bool:
            stop = callback(epoch, logs)
            if epoch == 0:
                raise _Interrupt
            return stop

        return original(wrapped, seed)

    monkeypatch.setattr(trainer._EpochEnd, "make", staticmethod(crash_after_first_epoch))
    with pytest.raises(_Interrupt):
        tiny_experiment(tiny_data, LFN(dense=(16,)), 64, epochs=3).run(run)
    monkeypatch.setattr(trainer._EpochEnd, "make", staticmethod(original))

    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 1
    optimizer_steps_before = _optimizer_iterations(run / "checkpoints" / "last.keras")
    assert optimizer_steps_before > 0

    with pytest.raises(ConfigError, match="already holds a dermkit run"):
        tiny_experiment(tiny_data, LFN(dense=(16,)), 64, epochs=3).run(run)

    result = tiny_experiment(tiny_data, LFN(dense=(16,)), 64, epochs=3).run(run, resume=True)
    assert len(result.history["loss"]) == 3
    history = json.loads((run / "history.json").read_text())
    assert all(len(values) == 3 for values in history.values())
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3"]
    # the optimizer continued from its saved state instead of starting over
    assert _optimizer_iterations(run / "checkpoints" / "last.keras") == 3 * optimizer_steps_before


def _optimizer_iterations(path: Path) -> int:
    import keras

    import dermkit.models  # noqa: F401

    model = keras.models.load_model(path, safe_mode=True)
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_finishes_cleanly(tiny_data: Path, tmp_path: Path) -> None:
    """A real SIGKILL of `dermkit train` at an arbitrary point after epoch 1, then --resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "killed"
    command = [
        sys.executable, "-m", "dermkit.cli.main", "train", "--data", str(tiny_data),
        "--model", "lfn", "--model-option", "dense=16", "--image-size", "64",
        "--epochs", "8", "--batch-size", "8", "--val", "0.25", "--test", "0.25",
        "--cache-dir", "", "--quiet", "--out", str(run),
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state_file = run / "state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if state_file.exists():
            break
        time.sleep(0.02)
    time.sleep(0.3)  # land somewhere inside a later epoch, or a checkpoint write
    if process.poll() is not None:
        pytest.skip("the run finished before it could be killed (machine too fast)")
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = json.loads(state_file.read_text())["epochs_done"]
    assert 1 <= done_before < 8

    from dermkit.cli.main import main

    assert main([*command[3:], "--resume"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert all(len(values) == 8 for values in history.values())
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [str(i) for i in range(1, 9)]
    assert not list(run.rglob(".*.dermkit-tmp-*")), "a temporary file was left behind"


@pytest.mark.slow
def test_mixed_precision_trains_and_restores_the_global_policy(
    tiny_data: Path, tmp_path: Path
) -> None:
    import keras

    from dermkit.models.lfn import LFN

    result = tiny_experiment(tiny_data, LFN(dense=(16,)), 64, mixed_precision=True).run(
        tmp_path / "mixed"
    )
    assert np.isfinite(result.history["loss"][0])
    assert keras.mixed_precision.global_policy().name == "float32"
    reloaded = keras.models.load_model(
        tmp_path / "mixed" / "model.keras", safe_mode=True, compile=False
    )
    assert reloaded.get_layer("probabilities").dtype_policy.compute_dtype == "float32"


def test_a_bad_option_leaves_no_run_folder_behind(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dermkit.cli.main import main

    out = tmp_path / "run"
    code = main(["train", "--data", str(tiny_data), "--image-size", "16", "--out", str(out)])
    assert code == 2
    assert "at least 64x64" in capsys.readouterr().err
    assert not out.exists()
