"""Turn a :class:`~dermkit.core.TrainingPlan` into the tf.data stream that ``fit`` consumes.

The order of images for every epoch is drawn in NumPy from ``(seed, epoch)`` before any
pixels are touched. That makes a resumed run see exactly the batches an uninterrupted
run would have seen, and lets the whole multi-epoch stream be one tf.data pipeline
(parallel decode, cache, prefetch) with epoch boundaries that line up with steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np

from dermkit.core import Record, TrainingPlan
from dermkit.data.sampling import balanced_batches

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from dermkit.data.pipeline import ImageLoader


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, epoch]))


def steps_per_epoch(plan: TrainingPlan, batch_size: int) -> int:
    if plan.steps_per_epoch is not None:
        return plan.steps_per_epoch
    return max(1, -(-len(plan.records) // batch_size))


def epoch_indices(plan: TrainingPlan, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """Indices into ``plan.records`` for one epoch: exactly ``steps * batch_size`` of them.

    With plain shuffling every record appears at least once; the last batch is topped
    up from a second permutation, so every step has a full batch and epochs never
    straddle a batch.
    """
    steps = steps_per_epoch(plan, batch_size)
    needed = steps * batch_size
    if plan.sampling == "balanced":
        labels = [r.label for r in plan.records]
        epoch_seed = int(_epoch_rng(seed, epoch).integers(2**31))
        batches = list(balanced_batches(labels, batch_size, steps, seed=epoch_seed))
        return np.concatenate(batches).astype(np.int64)
    rng = _epoch_rng(seed, epoch)
    n = len(plan.records)
    chunks = [rng.permutation(n) for _ in range(-(-needed // n))]
    return np.concatenate(chunks)[:needed].astype(np.int64)


@attrs.frozen
class Stream:
    dataset: tf.data.Dataset
    steps_per_epoch: int


def training_stream(
    plan: TrainingPlan,
    loader: ImageLoader,
    *,
    batch_size: int,
    seed: int,
    first_epoch: int,
    epochs: int,
) -> Stream:
    """Batches of (float32 images in [0, 255], int32 labels), epochs ``first_epoch..epochs-1``."""
    import tensorflow as tf

    from dermkit.balancers.augment import build_augmenter
    from dermkit.data.pipeline import image_dataset

    steps = steps_per_epoch(plan, batch_size)
    order = np.concatenate(
        [epoch_indices(plan, batch_size, seed, e) for e in range(first_epoch, epochs)]
        or [np.zeros(0, dtype=np.int64)]
    )
    paths = [str(plan.records[i].path) for i in order]
    labels = np.asarray([plan.records[i].label for i in order], dtype=np.int32)
    images = image_dataset(paths, loader)
    dataset = tf.data.Dataset.zip((images, tf.data.Dataset.from_tensor_slices(labels)))
    dataset = dataset.batch(batch_size, drop_remainder=True)
    # The decoder works on chunks, which hides the length from tf.data; state it, so
    # Keras neither warns about running out of data nor over-reads at epoch ends.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(order) // batch_size))
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y))
    if plan.augmentations:
        augment = build_augmenter(plan.augmentations, plan.augment_strength, seed + first_epoch)
        dataset = dataset.map(lambda x, y: (augment(x), y), num_parallel_calls=1)
    return Stream(dataset=dataset.prefetch(tf.data.AUTOTUNE), steps_per_epoch=steps)


def evaluation_stream(
    records: Sequence[Record], loader: ImageLoader, *, batch_size: int
) -> tf.data.Dataset:
    """Batches of float32 images in record order, for prediction; no labels, no augmentation."""
    import tensorflow as tf

    from dermkit.data.pipeline import image_dataset

    images = image_dataset([str(r.path) for r in records], loader)
    batches = -(-len(records) // batch_size)
    return (
        images.batch(batch_size)
        .apply(tf.data.experimental.assert_cardinality(batches))
        .map(lambda x: tf.cast(x, tf.float32))
        .prefetch(tf.data.AUTOTUNE)
    )
