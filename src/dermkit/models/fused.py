"""Batch normalisation that trains through TensorFlow's fused kernel.

Keras 3 computes a training-mode BatchNormalization from separate operations: the
batch mean, the variance, then the normalisation, each one a pass over the activation
map, and as many again for the gradient. A full-resolution map of a small CNN (LFN's
first stage at 128×128 is 64 channels × 16,384 pixels per image) does not fit in a
CPU's cache, so on CPUs those memory passes cost more than the convolution before
them. TensorFlow's ``FusedBatchNormV3`` (oneDNN's kernel on x86) does the forward
pass and its gradient in one kernel each. docs/performance.md has the measurements.

Only the training step changes. Inference (``training=False``) runs Keras' own code
with the moving statistics, so a saved or exported model contains the same ordinary
operations as one built with ``keras.layers.BatchNormalization``, and the weights
(gamma, beta, moving mean and variance) are the same four variables with the same
names. Importing this module imports Keras; ``dermkit.models.load_model`` imports it
before loading, so saved models that use the layer load in Keras' safe mode.
"""

from __future__ import annotations

from typing import Any

import keras

FUSED_RANK = 4
"""The fused kernel normalises the channels of NHWC batches, i.e. 4-D inputs only."""


@keras.saving.register_keras_serializable(package="dermkit")
class FusedBatchNormalization(keras.layers.BatchNormalization):  # type: ignore[misc]
    """``keras.layers.BatchNormalization`` with a fused training step (same maths).

    Falls back to the Keras implementation wherever the fused kernel does not apply:
    another backend than TensorFlow, inference, a frozen layer, masks, inputs that are
    not 4-D channels-last, renormalisation, synchronised statistics, or a layer
    without ``center``/``scale``. The moving variance is updated with the biased batch
    variance, as Keras does (the fused kernel returns the unbiased one; it is scaled
    back), so the two layers agree to float rounding in every respect.
    """

    def _fusable(self, inputs: Any, training: Any, mask: Any) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and training is True
            and self.trainable
            and mask is None
            and len(inputs.shape) == FUSED_RANK
            and self.axis in (-1, FUSED_RANK - 1)
            and not self.renorm
            and not self.synchronized
            and self.center
            and self.scale
        )

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, tf.float32)
        empty = tf.constant([], dtype=tf.float32)
        outputs, mean, unbiased, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=tf.cast(self.gamma, tf.float32),
            offset=tf.cast(self.beta, tf.float32),
            mean=empty,
            variance=empty,
            epsilon=float(self.epsilon),
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
        variance = unbiased * tf.maximum(count - 1.0, 0.0) / tf.maximum(count, 1.0)
        momentum = float(self.momentum)
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        return tf.cast(outputs, self.compute_dtype)
