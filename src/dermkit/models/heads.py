"""The classification head shared by every built-in factory.

features → Flatten or global average pooling → [Dense (ReLU) → Dropout] × N →
Dense softmax named ``probabilities``. The study's heads are all of this shape; only
the widths, the dropout rate and the pooling differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import keras

OUTPUT_NAME = "probabilities"
"""Name of every built model's last layer; evaluation and export look it up by name."""

INPUT_NAME = "image"
"""Name of every built model's input layer (raw RGB, float32, [0, 255])."""


def build_head(
    features: Any,
    num_classes: int,
    *,
    pooling: str,
    dense: tuple[int, ...],
    dropout: float,
    input_dropout: float = 0.0,
) -> keras.KerasTensor:
    """Stack the head on ``features``; ``input_dropout`` > 0 adds a Dropout before the first Dense.

    The softmax layer computes in float32 even under a mixed-precision policy, because
    half-precision softmax saturates and its probabilities are what gets evaluated.
    """
    from keras import layers

    if pooling == "flatten":
        x = layers.Flatten(name="head_flatten")(features)
    else:
        x = layers.GlobalAveragePooling2D(name="head_avg_pool")(features)
    if input_dropout > 0:
        x = layers.Dropout(input_dropout, name="head_dropout_0")(x)
    for index, width in enumerate(dense, start=1):
        x = layers.Dense(width, activation="relu", name=f"head_dense_{index}")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"head_dropout_{index}")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name=OUTPUT_NAME)(x)
