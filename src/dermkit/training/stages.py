"""Training in stages: where a run is, and how a later stage starts.

A run with ``Training.stages`` trains its first stage as :class:`Training` says, then
each later stage from the best model so far (``model.keras``): the backbone re-frozen
as the stage asks, a fresh optimizer at the stage's learning rate. Epoch numbers,
``history.csv``, the best model and early-stopping bookkeeping run on across stages,
so a run folder looks the same with one stage or several. ``state.json`` records the
stage and the epoch it started at, which is all a resumed run needs: a checkpoint
saved inside a stage already holds that stage's freezing and optimizer state, and a
stage that had not started when the run was interrupted is started again from the
same ``model.keras``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from dermkit.errors import ConfigError
from dermkit.training.config import Stage, Training
from dermkit.training.epochs import STATE_FORMAT, best_epoch_from_state

if TYPE_CHECKING:  # pragma: no cover
    import keras


@attrs.define
class Progress:
    """Where a fit is: epochs done, the best epoch so far, the current stage.

    ``best_epoch`` and ``first_epoch`` count from 0 (Keras' loop); ``state.json``
    stores them from 1, like every epoch number a person reads.
    """

    history: dict[str, list[float]] = attrs.field(factory=dict)
    epochs_done: int = 0
    best_epoch: int = -1
    best_value: float = math.nan
    stage: int = 0
    """0 is the first stage (``Training`` itself); ``k`` is ``Training.stages[k - 1]``."""
    first_epoch: int = 0
    """The epoch the current stage started at."""
    stopped_early: bool = False
    """Whether the current stage stopped early (the run, if it is the last stage)."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Progress:
        """Read ``state.json``; files written before stages existed are one-stage runs."""
        return cls(
            history={k: list(v) for k, v in state["history"].items()},
            epochs_done=int(state["epochs_done"]),
            best_epoch=best_epoch_from_state(state) - 1,
            best_value=float(state["best_value"]),
            stage=int(state.get("stage", 1)) - 1,
            first_epoch=int(state.get("stage_first_epoch", 1)) - 1,
            stopped_early=bool(state.get("stopped_early")),
        )

    def to_state(self, monitor: str) -> dict[str, Any]:
        return {
            "format_version": STATE_FORMAT,
            "epochs_done": self.epochs_done,
            "best_epoch": self.best_epoch + 1,
            "best_value": self.best_value,
            "monitor": monitor,
            "stopped_early": self.stopped_early,
            "stage": self.stage + 1,
            "stage_first_epoch": self.first_epoch + 1,
            "history": self.history,
        }

    def stage_over(self, epochs: int) -> bool:
        """Whether the current stage, ``epochs`` long, has nothing left to train."""
        return self.stopped_early or self.epochs_done >= self.first_epoch + epochs

    def next_stage(self) -> Progress:
        return attrs.evolve(
            self, stage=self.stage + 1, first_epoch=self.epochs_done, stopped_early=False
        )


def settings(training: Training, stage: int) -> Training:
    """Stage ``stage``'s own settings as a one-stage :class:`Training` (``epochs`` its length)."""
    if stage == 0:
        return training
    later: Stage = training.stages[stage - 1]
    return attrs.evolve(
        training,
        epochs=later.epochs,
        learning_rate=later.learning_rate,
        feature_cache=later.feature_cache,
        stages=(),
    )


def start(
    best_model: Path,
    model: keras.Model,
    stage: Stage,
    training: Training,
    steps_per_epoch: int,
    set_trainable_layers: Callable[[keras.Model, int], None] | None,
    *,
    logit_offsets: Sequence[float] | None = None,
) -> keras.Model:
    """The model a later stage trains: the best so far, re-frozen, with a fresh optimizer.

    BatchNormalization stays frozen unless the stage says ``train_batch_norm``; the
    loss is the plan's (``logit_offsets``, see :mod:`.losses`), as in the first stage.
    """
    from dermkit.models import load_model
    from dermkit.models.freezing import freeze_batch_normalization
    from dermkit.training.trainer import compile_for_training, make_optimizer

    if best_model.exists():
        model = load_model(best_model)
    if stage.trainable_layers is not None:
        if set_trainable_layers is None:
            raise ConfigError(
                f"this model cannot be re-frozen for a stage with trainable_layers="
                f"{stage.trainable_layers}",
                where=f"model {model.name}",
                hint="leave trainable_layers out of the stage, or use a backbone model "
                "(resnet50, inception_v3, efficientnet_lite*)",
            )
        set_trainable_layers(model, stage.trainable_layers)
    if not stage.train_batch_norm:
        freeze_batch_normalization(model)
    optimizer = make_optimizer(
        attrs.evolve(training, learning_rate=stage.learning_rate, epochs=stage.epochs),
        steps_per_epoch,
    )
    compile_for_training(model, optimizer, training.jit_compile, logit_offsets=logit_offsets)
    return model


def describe(model: keras.Model) -> str:
    """``"1,234 of 5,678 parameters trainable"``: what a stage trains, for the log."""
    import numpy as np

    def count(weights: list[Any]) -> int:
        return sum(int(np.prod(w.shape)) for w in weights)

    trainable = count(model.trainable_weights)
    total = trainable + count(model.non_trainable_weights)
    return f"{trainable:,} of {total:,} parameters trainable"
