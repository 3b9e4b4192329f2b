"""Predict from stored frozen-prefix activations, where a run's training left them.

Test-time augmentation scores every image in eight orientations: eight passes of the
whole network. A run trained on cached activations has already stored its frozen
prefix's output for every training image in every orientation (and, in
cross-validation, for the images of the other folds), so for those images only the
tail has to run: several times less work for a backbone frozen up to its later blocks.

This is read-only. An image whose activations are not all stored goes through the whole
model on pixels as before, and nothing is written: predicting new images never grows
the cache. The stored activations are float16, so probabilities differ from the pixel
path's by rounding (about 1e-3), never by more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit.features.store import FeatureCache, feature_cache_for, prefix_key

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from dermkit.data.loader import ImageLoader
    from dermkit.features.cut import ModelCut

TRANSFORM_VIEWS: dict[str, int] = {
    "identity": 0,
    "rot90": 1,
    "rot180": 2,
    "rot270": 3,
    "flip_lr": 4,
    "transverse": 5,
    "flip_ud": 6,
    "transpose": 7,
}
"""The stored view (:func:`dermkit.features.views.apply_view`) each test-time transform
of :data:`dermkit.evaluation.tta.TRANSFORMS` equals, pixel for pixel."""

CHUNK = 256
"""Images read at once: their activations in every view stay well under a gigabyte."""


@attrs.frozen
class CachedPrediction:
    """Probabilities of the images found in the cache: ``found[i]`` says whether row
    ``i`` of ``probabilities`` holds image ``i``'s (rows of the others are zeros)."""

    probabilities: np.ndarray
    found: np.ndarray


@attrs.frozen
class StoredTail:
    """A model's tail and where its prefix's activations are stored: what
    :func:`predict_cached` needs, worked out once per model and loader (cutting the
    model and hashing its prefix's weights take longer than predicting one image)."""

    cut: ModelCut
    key: str
    store: FeatureCache


def stored_tail(
    model: keras.Model, loader: ImageLoader, cache: FeatureCache | None = None
) -> StoredTail | None:
    """The model's tail, or ``None`` when nothing can be read: no frozen prefix (or
    one Keras cannot cut), no cache beside ``loader``, or no activation of this prefix
    stored yet. ``cache`` defaults to the one training used beside ``loader``'s
    decoded-image cache."""
    from dermkit.errors import ConfigError
    from dermkit.features.cut import split_at
    from dermkit.models.freezing import frozen_prefix_end

    store = cache if cache is not None else feature_cache_for(loader)
    layer = frozen_prefix_end(model)
    if layer is None or not store.persist:
        return None
    try:
        cut = split_at(model, layer)
    except ConfigError:
        return None
    key = prefix_key(cut.prefix, cut.layer, loader.settings)
    if not (store.root / key).is_dir():
        return None
    return StoredTail(cut=cut, key=key, store=store)


def predict_cached(
    tail: StoredTail,
    paths: Sequence[str],
    transforms: Sequence[str],
    *,
    batch_size: int = 32,
    on_found: Callable[[int], None] | None = None,
) -> CachedPrediction:
    """Mean class probabilities over ``transforms`` of each image whose activations are
    stored in every view the transforms need; the others are left for the pixel path.
    ``on_found`` is called with the number of images scored after each chunk, e.g. to
    advance a progress counter."""
    views = [TRANSFORM_VIEWS[name] for name in transforms]
    classes = int(tail.cut.tail.output_shape[-1])
    probabilities = np.zeros((len(paths), classes), dtype=np.float64)
    found = np.zeros(len(paths), dtype=bool)
    for start in range(0, len(paths), CHUNK):
        chunk = list(paths[start : start + CHUNK])
        activations, complete = tail.store.stored(tail.key, tail.cut.feature_shape, chunk, views)
        rows = np.flatnonzero(complete)
        if not len(rows):
            continue
        total = np.zeros((len(rows), classes), dtype=np.float64)
        for slot in range(len(views)):
            total += _tail(tail.cut.tail, activations[rows, slot], batch_size)
        probabilities[start + rows] = total / len(views)
        found[start + rows] = True
        if on_found is not None:
            on_found(len(rows))
    return CachedPrediction(probabilities=probabilities, found=found)


def _tail(tail: Any, activations: np.ndarray, batch_size: int) -> np.ndarray:
    out = [
        np.asarray(tail.predict_on_batch(activations[i : i + batch_size].astype(np.float32)))
        for i in range(0, len(activations), batch_size)
    ]
    return np.concatenate(out).astype(np.float64)
