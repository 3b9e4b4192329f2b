"""The training loss: cross-entropy, optionally logit-adjusted for class imbalance.

Logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021)
adds ``tau * log(prior_c)`` to each class's logit inside the loss only. A common class
then has to beat the others by a margin before the loss is satisfied, a rare class by
less, so the model's own (unadjusted) outputs estimate the class given the image as if
classes were equally frequent: the quantity balanced accuracy rewards. Unlike class
weights, it leaves every example's gradient at its natural scale, so the rare classes'
few examples are not amplified into large noisy steps.

dermkit models end in a softmax, so the loss works on probabilities: ``log p`` equals
the logits up to a per-row constant, which the softmax inside the cross-entropy ignores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

_EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="dermkit")
class LogitAdjustedCrossEntropy(keras.losses.Loss):  # type: ignore[misc]
    """Cross-entropy of ``softmax(log p + offsets)``: offsets are ``tau * log(prior)``.

    ``soft_labels``: the targets are probability vectors (mixup) rather than class
    indices. Saved with the model's compile state, so a checkpoint resumes with it.
    """

    def __init__(
        self,
        offsets: Sequence[float],
        soft_labels: bool = False,
        name: str = "logit_adjusted_crossentropy",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.offsets = [float(value) for value in offsets]
        self.soft_labels = bool(soft_labels)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        probabilities = ops.cast(y_pred, "float32")
        shifted = ops.log(ops.clip(probabilities, _EPSILON, 1.0)) + ops.convert_to_tensor(
            self.offsets, dtype="float32"
        )
        if self.soft_labels:
            return keras.losses.categorical_crossentropy(y_true, shifted, from_logits=True)
        return keras.losses.sparse_categorical_crossentropy(y_true, shifted, from_logits=True)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(offsets=list(self.offsets), soft_labels=self.soft_labels)
        return config


LOSS_OBJECTS: dict[str, type[Any]] = {
    "dermkit>LogitAdjustedCrossEntropy": LogitAdjustedCrossEntropy,
}
"""The custom losses by registered name, for loading compiled checkpoints."""


def training_loss(offsets: Sequence[float] | None, *, soft_labels: bool = False) -> Any:
    """Keras' plain cross-entropy, or the logit-adjusted one when ``offsets`` are given."""
    if offsets is not None:
        return LogitAdjustedCrossEntropy(offsets, soft_labels=soft_labels)
    return "categorical_crossentropy" if soft_labels else "sparse_categorical_crossentropy"
