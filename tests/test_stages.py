"""Training in stages: a head first, then a fine-tuning stage, in one configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dermkit.errors import ConfigError
from dermkit.training.config import Stage, Training


def test_fine_tuning_recipe_round_trips_through_json() -> None:
    training = Training(learning_rate=1e-3, epochs=10).then_fine_tune(40, epochs=3)
    assert training.stages == (Stage(epochs=3, learning_rate=1e-4, trainable_layers=40),)
    assert training.max_epochs == 13
    saved = json.loads(json.dumps(training.to_config()))
    assert Training.from_config(saved) == training


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("5", "must be a list"),
        ([5], "must be a mapping"),
        ([{"epochs": 2, "learning_rate": 1e-4, "layers": 3}], "unknown stage option"),
        ([{"epochs": 0, "learning_rate": 1e-4}], "invalid training stage"),
        ([{"epochs": 2}], "invalid training stage"),
        ([{"epochs": 2, "learning_rate": 1e-4, "feature_cache": "yes"}], "invalid"),
    ],
)
def test_bad_stages_are_refused_with_a_message(stages: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Training.from_config({"stages": stages})


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), size=32, scale=0.12, seed=3)


def _experiment(data: Path, cache_dir: str, training: Training, model: Any = None) -> Any:
    from dermkit.balancers.class_weights import ClassWeights
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment
    from dermkit.models.efficientnet_lite import EfficientNetLite0

    return Experiment(
        data=ImageFolder(data),
        split=GroupedStratifiedSplit(val=0.25, test=0.25, seed=0),
        model=model or EfficientNetLite0(weights=None, trainable_layers=0, dropout=0.2),
        balancer=[ClassWeights()],
        training=training,
        image_size=32,
        cache_dir=cache_dir,
    )


def _two_stages() -> Training:
    head = Training(epochs=2, batch_size=8, verbose=0, learning_rate=1e-2, feature_cache="on")
    return head.then_fine_tune(12, epochs=2)


def _trainable(model: Any) -> list[str]:
    return [layer.name for layer in model.layers if layer.trainable and layer.weights]


@pytest.mark.slow
def test_second_stage_unfreezes_the_last_layers_from_the_best_model(
    tiny_data: Path, tmp_path: Path
) -> None:
    from dermkit.models import load_model

    result = _experiment(tiny_data, str(tmp_path / "cache"), _two_stages()).run(tmp_path / "run")
    assert result.history["stage"] == [1.0, 1.0, 2.0, 2.0]
    assert np.allclose(result.history["learning_rate"], [1e-2, 1e-2, 1e-3, 1e-3])
    last = load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    trained = _trainable(last)
    assert "block15_project_conv" in trained and "top_conv" in trained
    assert "block13_project_conv" not in trained  # 12 backbone layers: block15 and top only
    # BatchNormalization in the unfrozen layers keeps its statistics, scale and shift
    assert "block15_project_bn" not in trained and "top_bn" not in trained
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["stage"] == 2 and state["stage_first_epoch"] == 3
    assert state["epochs_done"] == 4
    # the first stage trained the head alone, on cached activations of the whole backbone
    assert any((tmp_path / "cache" / "features").rglob("*.npy"))


@pytest.mark.slow
def test_interrupted_second_stage_resumes_exactly(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit import atomic
    from dermkit.experiment import Experiment
    from dermkit.training import trainer

    cache = str(tmp_path / "cache")
    _experiment(tiny_data, cache, _two_stages()).run(tmp_path / "straight")

    write_json = atomic.write_json

    def interrupt_after_epoch_3(path: Path, value: Any, **kwargs: Any) -> None:
        write_json(path, value, **kwargs)
        if Path(path).name == "state.json" and value.get("epochs_done") == 3:
            raise KeyboardInterrupt  # Ctrl-C just after the first fine-tuning epoch

    monkeypatch.setattr(trainer.atomic, "write_json", interrupt_after_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        _experiment(tiny_data, cache, _two_stages()).run(tmp_path / "stopped")
    monkeypatch.setattr(trainer.atomic, "write_json", write_json)
    Experiment.resume(tmp_path / "stopped")

    a = json.loads((tmp_path / "straight" / "history.json").read_text())
    b = json.loads((tmp_path / "stopped" / "history.json").read_text())
    assert b["stage"] == a["stage"] == [1.0, 1.0, 2.0, 2.0]
    # Up to the interruption the runs are identical; the fine-tuning epoch after it
    # runs on pixels from a reloaded checkpoint and agrees to float rounding, not bit for bit.
    np.testing.assert_allclose(b["loss"][:3], a["loss"][:3], rtol=1e-6)
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=2e-3)
    np.testing.assert_allclose(b["val_loss"], a["val_loss"], rtol=2e-3)


def test_freezing_batch_normalization_reaches_nested_models_and_only_it() -> None:
    import keras

    from dermkit.models.freezing import freeze_batch_normalization

    inner = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1), keras.layers.BatchNormalization()]
    )
    outer = keras.Sequential([keras.Input((4, 4, 3)), inner, keras.layers.BatchNormalization()])
    assert freeze_batch_normalization(outer) == 2
    assert [layer.trainable for layer in inner.layers] == [True, False]
    assert not outer.layers[-1].trainable
    batch = np.random.default_rng(0).normal(3.0, 2.0, (8, 4, 4, 3)).astype("float32")
    before = [w.numpy().copy() for w in outer.non_trainable_weights]
    outer(batch, training=True)
    after = [w.numpy() for w in outer.non_trainable_weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert freeze_batch_normalization(outer) == 0


def test_a_stage_the_model_cannot_honour_stops_before_the_run_folder(
    tiny_data: Path, tmp_path: Path
) -> None:
    import attrs

    from dermkit.models.lfn import LFN

    training = Training(epochs=1, batch_size=8, verbose=0).then_fine_tune(4)
    experiment = attrs.evolve(
        _experiment(tiny_data, "", training, model=LFN(dense=(8,))), image_size=64
    )
    with pytest.raises(ConfigError, match="cannot be re-frozen"):
        experiment.run(tmp_path / "run")
    assert not (tmp_path / "run").exists()

    everything = Training(epochs=1, batch_size=8, verbose=0).then_fine_tune(-1, feature_cache="on")
    with pytest.raises(ConfigError, match="nothing in the model is frozen"):
        _experiment(tiny_data, "", everything).run(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_fine_tune_flags_add_one_stage_to_the_recipe() -> None:
    from dermkit.cli.recipe import _apply_settings, default_recipe

    config = default_recipe()
    _apply_settings(config, {"lr": 2e-3, "fine_tune": 40, "fine_tune_epochs": 3})
    assert config["training"]["stages"] == [
        {
            "epochs": 3,
            "learning_rate": 2e-4,
            "trainable_layers": 40,
            "feature_cache": "off",
            "train_batch_norm": False,
        }
    ]
    with pytest.raises(ConfigError, match="--fine-tune-lr needs --fine-tune"):
        _apply_settings(default_recipe(), {"fine_tune_lr": 1e-4})


def test_training_curves_mark_where_each_later_stage_starts(tmp_path: Path) -> None:
    from dermkit.evaluation.plots import _stage_starts, plot_training_curves

    history = {"loss": [1.0, 0.9, 0.8, 0.7, 0.6], "stage": [1.0, 1.0, 2.0, 2.0, 3.0]}
    assert _stage_starts(history) == [(2, 3), (3, 5)]
    assert _stage_starts({"loss": [1.0]}) == []
    assert plot_training_curves(history, tmp_path / "curves.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fine_tune": -5}, "trainable_layers' must be >= -1"),
        ({"fine_tune": 2, "fine_tune_epochs": 0}, "'epochs' must be >= 1"),
        ({"fine_tune": 2, "fine_tune_lr": -1.0}, "'learning_rate' must be > 0"),
    ],
)
def test_bad_fine_tune_values_are_a_config_error(values: dict[str, Any], message: str) -> None:
    from dermkit.cli.recipe import _apply_settings, default_recipe

    with pytest.raises(ConfigError, match=message):
        _apply_settings(default_recipe(), values)
