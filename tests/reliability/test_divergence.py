"""A loss that turns NaN stops the run at once, names the epoch, and saves nothing broken."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dermkit.errors import DataError
from dermkit.training.guards import TrainingDiverged

from .faults import assert_complete_history, leftovers, model_weights

NEVER = 10**9


_POISON: list[Any] = []


def _poison_layer() -> Any:
    """A layer that passes its input through until its ``after``-th training call, then NaN.

    Its call counter is a weight, so it is saved in every checkpoint and a resumed run
    meets the poison at the same step again.
    """
    import keras

    if _POISON:
        return _POISON[0]

    @keras.saving.register_keras_serializable(package="dermkit_reliability_tests")
    class PoisonAfter(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self, after: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.after = after

        def build(self, input_shape: Any) -> None:
            self.calls = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="calls"
            )

        def call(self, inputs: Any, training: bool = False) -> Any:
            if not training:
                return inputs
            self.calls.assign_add(1.0)
            poisoned = keras.ops.greater_equal(self.calls, float(self.after))
            # a factor, not where(poisoned, inputs * nan, inputs): the gradient of the
            # branch not taken would be 0 * nan = nan from the very first step
            return inputs * keras.ops.where(poisoned, float("nan"), 1.0)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "after": self.after}

    _POISON.append(PoisonAfter)
    return PoisonAfter


def _poisoned_experiment(data: Path, after: int, epochs: int) -> Any:
    import attrs
    import keras

    from dermkit.balancers.class_weights import ClassWeights
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment
    from dermkit.models.lfn import LFN
    from dermkit.training.config import Training

    poison = _poison_layer()

    @attrs.frozen
    class PoisonedLFN(LFN):  # registered as "lfn": the recipe is LFN's
        def build(self, num_classes: int, input_size: int | None = None) -> Any:
            model = super().build(num_classes, input_size)
            return keras.Model(model.inputs, poison(after)(model.outputs[0]))

    return Experiment(
        data=ImageFolder(data),
        split=GroupedStratifiedSplit(val=0.25, test=0.25, seed=5),
        model=PoisonedLFN(dense=(16,)),
        balancer=[ClassWeights()],
        training=Training(epochs=epochs, batch_size=8, verbose=0),
        image_size=64,
        cache_dir="",
    )


@pytest.fixture(scope="module")
def clean_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One epoch without poison, and how many training calls the poison layer counted in
    it (Keras may call a layer more than once per step), to aim the poison by."""
    from dermkit.models import load_model

    run = tmp_path_factory.mktemp("clean") / "run"
    _poisoned_experiment(tiny_data, NEVER, epochs=1).run(run)
    model = load_model(run / "checkpoints" / "last.keras")
    calls = next(w for w in model.weights if w.path.endswith("calls"))
    return run, int(calls.numpy())


def test_a_nan_loss_stops_the_run_naming_the_epoch_and_keeps_the_last_good_state(
    tiny_data: Path, tmp_path: Path, clean_run: tuple[Path, int]
) -> None:
    run = tmp_path / "diverged"
    after = clean_run[1] + 1  # the first step of epoch 2
    with pytest.raises(TrainingDiverged) as caught:
        _poisoned_experiment(tiny_data, after, epochs=3).run(run)
    message = caught.value.render()
    assert "the training loss became nan in epoch 2 (batch 1)" in message
    assert "the run keeps epoch 1 (checkpoints/last.keras, model.keras)" in message
    assert "lower the learning rate" in message
    assert_complete_history(run, 1)
    for name in ("checkpoints/last.keras", "model.keras"):
        assert all(np.isfinite(w).all() for w in model_weights(run / name)), name
    assert leftovers(run) == []

    # Resuming does not continue quietly: the same state meets the same poison again.
    with pytest.raises(TrainingDiverged, match="in epoch 2"):
        _poisoned_experiment(tiny_data, after, epochs=3).run(run, resume=True)
    assert_complete_history(run, 1)


def test_a_checkpoint_with_non_finite_weights_is_refused_on_resume(
    tiny_data: Path, tmp_path: Path, clean_run: tuple[Path, int]
) -> None:
    import shutil

    import keras

    from dermkit.models import load_model

    run = tmp_path / "run"
    shutil.copytree(clean_run[0], run)
    checkpoint = run / "checkpoints" / "last.keras"
    model = load_model(checkpoint)
    kernel = next(w for w in model.weights if w.path.endswith("kernel"))
    kernel.assign(np.full(kernel.shape, np.inf, dtype="float32"))
    model.save(checkpoint)
    keras.backend.clear_session()
    with pytest.raises(DataError) as caught:
        _poisoned_experiment(tiny_data, NEVER, epochs=2).run(run, resume=True)
    assert caught.value.where == str(checkpoint)
    assert "not finite" in caught.value.message and "delete" in (caught.value.hint or "")


@pytest.mark.parametrize("loss", [math.inf, -math.inf, math.nan])
def test_the_guard_stops_on_any_non_finite_loss(tmp_path: Path, loss: float) -> None:
    from dermkit.training.guards import divergence_guard

    guard = divergence_guard(tmp_path)
    guard.on_epoch_begin(4)
    with pytest.raises(TrainingDiverged, match=f"became {loss} in epoch 5 \\(batch 3\\)"):
        guard.on_train_batch_end(2, {"loss": loss})
    guard.on_train_batch_end(3, {"loss": 0.5})  # finite: nothing happens


def test_state_json_records_only_finite_epochs(
    tiny_data: Path, tmp_path: Path, clean_run: tuple[Path, int]
) -> None:
    run = tmp_path / "diverged-late"
    with pytest.raises(TrainingDiverged, match="in epoch 3 \\(batch 2\\)"):
        _poisoned_experiment(tiny_data, 2 * clean_run[1] + clean_run[1] // 2 + 1, epochs=4).run(run)
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 2
    assert all(math.isfinite(v) for v in state["history"]["loss"])
