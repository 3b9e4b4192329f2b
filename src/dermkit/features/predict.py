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


def predict_cached(
    model: keras.Model,
    paths: Sequence[str],
    loader: ImageLoader,
    transforms: Sequence[str],
    *,
    batch_size: int = 32,
    cache: FeatureCache | None = None,
    on_found: Callable[[int], None] | None = None,
) -> CachedPrediction | None:
    """Mean class probabilities over ``transforms`` of each image whose activations are stored.

    ``None`` when the model has no frozen prefix to skip (or cannot be cut there), so the
    caller predicts on pixels. ``cache`` defaults to the one training used beside
    ``loader``'s decoded-image cache. ``on_found`` is called with the number of images
    scored from the cache after each chunk, e.g. to advance a progress counter.
    """
    from dermkit.errors import ConfigError
    from dermkit.features.cut import split_at
    from dermkit.models.freezing import frozen_prefix_end

    layer = frozen_prefix_end(model)
    if layer is None:
        return None
    try:
        cut = split_at(model, layer)
    except ConfigError:
        return None
    store = cache if cache is not None else feature_cache_for(loader)
    if not store.persist:
        return None
    key = prefix_key(cut.prefix, cut.layer, loader.settings)
    views = [TRANSFORM_VIEWS[name] for name in transforms]
    classes = int(cut.tail.output_shape[-1])
    probabilities = np.zeros((len(paths), classes), dtype=np.float64)
    found = np.zeros(len(paths), dtype=bool)
    for start in range(0, len(paths), CHUNK):
        chunk = list(paths[start : start + CHUNK])
        activations, complete = store.stored(key, cut.feature_shape, chunk, views)
        rows = np.flatnonzero(complete)
        if not len(rows):
            continue
        total = np.zeros((len(rows), classes), dtype=np.float64)
        for slot in range(len(views)):
            total += _tail(cut.tail, activations[rows, slot], batch_size)
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
