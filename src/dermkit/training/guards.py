"""Stop training the moment it diverges, before a broken state can be saved.

A loss that turns NaN or infinite poisons the weights at the next update, and every
epoch after that is wasted compute; worse, a checkpoint written then would be the
state a resumed run continues from. :func:`divergence_guard` is a Keras callback that
checks the loss after every batch, and the weights once more before the epoch's files
are written (a last batch can leave non-finite weights behind a finite loss). Either
way it raises :class:`TrainingDiverged`, naming the epoch, so nothing of that epoch
is saved and the run keeps its last good checkpoint and best model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dermkit.errors import DermkitError


class TrainingDiverged(DermkitError):
    """The training loss or the weights became NaN or infinite."""


def divergence_hint(epochs_kept: int) -> str:
    kept = (
        f"the run keeps epoch {epochs_kept} (checkpoints/last.keras, model.keras)"
        if epochs_kept > 0
        else "no epoch had finished, so nothing was saved"
    )
    return (
        f"{kept}; lower the learning rate (--lr) or check the inputs and start a new run: "
        "`dermkit resume` would repeat the same steps from the same state"
    )


def divergence_guard(run_dir: Path) -> Any:
    """A Keras callback raising :class:`TrainingDiverged` at the first non-finite loss.

    Put it first among the callbacks, so its epoch-end check runs before any other
    callback writes the epoch's files.
    """
    import keras

    from dermkit.training.checkpoints import non_finite_weights

    class DivergenceGuard(keras.callbacks.Callback):  # type: ignore[misc]
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            loss = _loss(logs)
            if loss is not None and not math.isfinite(loss):
                self._stop(
                    f"the training loss became {loss} in epoch {self.epoch + 1} (batch {batch + 1})"
                )

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            loss = _loss(logs)
            if loss is not None and not math.isfinite(loss):
                self._stop(f"the training loss of epoch {epoch + 1} is {loss}")
            broken = non_finite_weights(self.model)
            if broken is not None:
                self._stop(f"the weights became NaN or infinite in epoch {epoch + 1} ({broken})")

        def _stop(self, message: str) -> None:
            raise TrainingDiverged(
                f"training diverged: {message}; nothing of this epoch was saved",
                where=str(run_dir),
                hint=divergence_hint(self.epoch),
            )

    return DivergenceGuard()


def _loss(logs: dict[str, Any] | None) -> float | None:
    if not logs or "loss" not in logs:
        return None
    try:
        return float(logs["loss"])
    except (TypeError, ValueError):
        return None
