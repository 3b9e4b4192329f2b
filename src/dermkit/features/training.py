"""Train a model's tail on cached frozen-prefix activations instead of on pixels.

:func:`choose` decides whether a fit can use the cache (the model has a frozen prefix,
and every augmentation in the plan is one the cache can keep), :func:`prepare` computes
or reads the activations, and :class:`CachedInputs` streams them to ``fit`` in exactly
the per-epoch order the image stream would use (:func:`dermkit.training.stream.epoch_indices`),
so a cached and an uncached run see the same batches and a resumed run the same
batches as an uninterrupted one. Each training sample gets a seeded random view per
epoch, which is how flips and right-angle turns survive caching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from dermkit.core import Record, TrainingPlan
from dermkit.errors import ConfigError
from dermkit.features.cut import ModelCut, split_at
from dermkit.features.store import FeatureCache, feature_cache_for, prefix_key
from dermkit.features.views import DIHEDRAL_VIEWS
from dermkit.training.config import FEATURE_CACHE_MODES

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from dermkit.data.loader import ImageLoader
    from dermkit.training.stream import Stream

FeatureCacheMode = Literal["auto", "on", "off"]

CACHEABLE_AUGMENTATIONS: frozenset[str] = frozenset({"flip", "rotate90"})
"""Exact, finite augmentations: kept by caching several dihedral views."""


@attrs.frozen
class Decision:
    """Whether to train on cached activations, with how many views, and why."""

    use: bool
    views: int = 1
    dropped: tuple[str, ...] = ()
    """Augmentations left out because they cannot be cached (``feature_cache="on"``)."""
    message: str = ""


def choose(
    mode: str, views: int | None, plan: TrainingPlan, cut_layer: str | None, model_name: str
) -> Decision:
    """Decide between cached activations and pixels for one fit.

    ``auto`` caches when the model has a frozen prefix and every augmentation is a
    flip or a right-angle turn; it trains on pixels (and says why) when a random
    augmentation such as zoom or colour jitter would be lost. ``on`` caches anyway,
    dropping those augmentations (and says so); ``off`` never caches. ``views``
    defaults to all eight dihedral views when flips or turns were asked for, else 1.
    """
    if mode not in FEATURE_CACHE_MODES:
        raise ConfigError(
            f"feature_cache must be one of {', '.join(FEATURE_CACHE_MODES)}, got {mode!r}"
        )
    if mode == "off":
        return Decision(use=False)
    if cut_layer is None:
        if mode == "on":
            raise ConfigError(
                "feature_cache=on, but nothing in the model is frozen, so there is nothing "
                "to cache",
                where=f"model {model_name}",
                hint="freeze part of the backbone (e.g. trainable_layers=4) or feature_cache=auto",
            )
        return Decision(use=False)
    random_ones = tuple(a for a in plan.augmentations if a not in CACHEABLE_AUGMENTATIONS)
    dihedral = any(a in CACHEABLE_AUGMENTATIONS for a in plan.augmentations)
    count = views if views is not None else (DIHEDRAL_VIEWS if dihedral else 1)
    if random_ones and mode == "auto":
        return Decision(
            use=False,
            message=(
                f"feature cache off: the augmentations {', '.join(random_ones)} are random, so "
                f"the frozen prefix of {model_name} must run on every image in every epoch; "
                "use feature_cache=on to drop them and train several times faster on cached "
                "activations with flips and turns kept"
            ),
        )
    message = (
        f"feature cache on: {model_name} is frozen up to {cut_layer!r}; its activations are "
        f"computed once per image ({count} view{'s' if count > 1 else ''}) and only the "
        "layers after it are trained"
    )
    if random_ones:
        message += f"; random augmentations left out: {', '.join(random_ones)}"
    return Decision(use=True, views=count, dropped=random_ones, message=message)


def _epoch_views(seed: int, epoch: int, count: int, views: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0x76696577]))
    return rng.integers(views, size=count)


@attrs.frozen
class CachedInputs:
    """The activations of the training and validation records at a model's cut."""

    cut: ModelCut
    train: np.ndarray
    """``(unique training images, views, *feature_shape)`` float16."""
    rows: np.ndarray
    """For each record of the plan, its row in ``train`` (oversampling repeats rows)."""
    labels: np.ndarray
    val: np.ndarray
    """``(validation images, *feature_shape)`` float16, the unturned view."""

    @property
    def views(self) -> int:
        return int(self.train.shape[1])

    def stream(
        self, plan: TrainingPlan, *, batch_size: int, seed: int, first_epoch: int, epochs: int
    ) -> Stream:
        """Batches of (float32 activations, int32 labels), epochs ``first_epoch..epochs-1``."""
        import tensorflow as tf

        from dermkit.training.stream import Stream, epoch_indices, steps_per_epoch

        steps = steps_per_epoch(plan, batch_size)
        orders, views = [], []
        for epoch in range(first_epoch, epochs):
            order = epoch_indices(plan, batch_size, seed, epoch)
            orders.append(order)
            views.append(_epoch_views(seed, epoch, len(order), self.views))
        order = np.concatenate(orders) if orders else np.zeros(0, dtype=np.int64)
        view = np.concatenate(views) if views else np.zeros(0, dtype=np.int64)
        batches = len(order) // batch_size
        train, rows, labels = self.train, self.rows, self.labels

        def gather(batch: Any) -> tuple[np.ndarray, np.ndarray]:
            picked = order[int(batch) * batch_size : (int(batch) + 1) * batch_size]
            chosen = view[int(batch) * batch_size : (int(batch) + 1) * batch_size]
            features = train[rows[picked], chosen].astype(np.float32)
            return features, labels[picked].astype(np.int32)

        shape = tuple(self.train.shape[2:])
        dataset = tf.data.Dataset.range(batches).map(
            lambda b: tf.numpy_function(gather, [b], (tf.float32, tf.int32)),
            num_parallel_calls=1,
            deterministic=True,
        )
        dataset = dataset.map(
            lambda x, y: (
                tf.ensure_shape(x, (batch_size, *shape)),
                tf.ensure_shape(y, (batch_size,)),
            )
        )
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
        return Stream(dataset=dataset.prefetch(2), steps_per_epoch=steps)

    def predict_val(self, batch_size: int) -> np.ndarray:
        """Class probabilities of the validation records, from their cached activations."""
        if len(self.val) == 0:
            return np.zeros((0, int(self.cut.tail.output_shape[-1])), dtype=np.float64)
        out = [
            np.asarray(
                self.cut.tail.predict_on_batch(self.val[i : i + batch_size].astype("float32"))
            )
            for i in range(0, len(self.val), batch_size)
        ]
        return np.concatenate(out).astype(np.float64)


def prepare(
    model: keras.Model,
    cut_layer: str,
    plan: TrainingPlan,
    val_records: Sequence[Record],
    loader: ImageLoader,
    *,
    views: int,
    batch_size: int,
    cache: FeatureCache | None = None,
) -> CachedInputs:
    """Cut ``model`` at ``cut_layer`` and get the activations of every image it needs."""
    cut = split_at(model, cut_layer)
    if cache is None:
        cache = feature_cache_for(loader)
    key = prefix_key(cut.prefix, cut.layer, loader.settings)
    unique: dict[str, int] = {}
    for record in plan.records:
        unique.setdefault(str(record.path), len(unique))
    rows = np.asarray([unique[str(r.path)] for r in plan.records], dtype=np.int64)
    labels = np.asarray([r.label for r in plan.records], dtype=np.int64)

    def run_prefix(batch: np.ndarray) -> np.ndarray:
        return np.asarray(cut.prefix.predict_on_batch(batch.astype(np.float32)))

    prefix: Callable[[np.ndarray], np.ndarray] = run_prefix
    shape = cut.feature_shape
    train = cache.features(
        prefix,
        key,
        shape,
        list(unique),
        loader,
        views=views,
        batch_size=batch_size,
        label="frozen features (training part)",
    )
    val = cache.features(
        prefix,
        key,
        shape,
        [str(r.path) for r in val_records],
        loader,
        views=1,
        batch_size=batch_size,
        label="frozen features (validation part)",
    )[:, 0]
    return CachedInputs(cut=cut, train=train, rows=rows, labels=labels, val=val)
