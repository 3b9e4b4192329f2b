"""Mixup: train on convex mixtures of pairs of examples and of their labels.

Why: a tail trained on cached activations (or a small network on pixels) fits the
training lesions within a few epochs (training accuracy 0.93 against validation 0.73
for EfficientNet-Lite0's blocks 11-15, docs/benchmarks.md), and the cached views leave
only flips and turns as augmentation. Mixup (Zhang et al., 2018) regularises by
asking for predictions that are linear between examples; applied to a cached tail's
inputs it is *manifold mixup* at the cut (Verma et al., 2019), which costs nothing
extra per step.

Each example of a batch is mixed with another example of the same batch (a seeded
permutation) with its own weight ``lam ~ Beta(alpha, alpha)``, folded to
``max(lam, 1 - lam)`` so that the example keeps the larger share. Labels become the
same mixture of one-hot vectors; class weights become the same mixture of the two
examples' class weights and travel as sample weights (Keras' ``class_weight`` needs
hard labels). The draws depend only on ``seed`` and the step number, so a resumed run
mixes exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

_STREAM = 0x6D6978  # "mix": keeps these draws apart from every other seeded stream


def class_weight_vector(class_weight: Mapping[int, float] | None, classes: int) -> np.ndarray:
    """Per-class weights as a vector, 1 for a class the mapping leaves out."""
    weights = np.ones(classes, dtype=np.float32)
    for label, weight in (class_weight or {}).items():
        weights[int(label)] = float(weight)
    return weights


def mix_batches(
    dataset: tf.data.Dataset,
    *,
    alpha: float,
    classes: int,
    class_weight: Mapping[int, float] | None,
    seed: int,
    first_step: int,
) -> tf.data.Dataset:
    """Batches of ``(x, int labels)`` → ``(mixed x, soft labels, sample weights)``.

    ``first_step`` is the number of the dataset's first batch counted over the whole
    run (epochs done × steps per epoch), so that draws continue across a resume.
    """
    import tensorflow as tf

    if alpha <= 0:
        raise ValueError(f"mixup needs alpha > 0, got {alpha}")
    weights = tf.constant(class_weight_vector(class_weight, classes))

    def mix(step: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, ...]:
        x, y = batch
        size = tf.shape(y)[0]
        key = tf.stack([tf.constant(seed, tf.int64), _STREAM + step])
        keys = tf.random.experimental.stateless_split(key, num=3)
        first = tf.random.stateless_gamma([size], seed=keys[0], alpha=alpha)
        second = tf.random.stateless_gamma([size], seed=keys[1], alpha=alpha)
        lam = first / tf.maximum(first + second, 1e-12)
        lam = tf.maximum(lam, 1.0 - lam)
        partner = tf.argsort(tf.random.stateless_uniform([size], seed=keys[2]))
        y = tf.cast(y, tf.int32)
        y_other = tf.gather(y, partner)
        shape = tf.concat([[size], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
        lam_x = tf.reshape(tf.cast(lam, x.dtype), shape)
        mixed = lam_x * x + (1.0 - lam_x) * tf.gather(x, partner)
        lam_y = lam[:, None]
        soft = lam_y * tf.one_hot(y, classes) + (1.0 - lam_y) * tf.one_hot(y_other, classes)
        sample_weight = lam * tf.gather(weights, y) + (1.0 - lam) * tf.gather(weights, y_other)
        return mixed, soft, sample_weight

    return dataset.enumerate(start=first_step).map(mix, num_parallel_calls=1, deterministic=True)
