"""``tf.data`` input pipelines: the one place where records become pixel tensors.

Images are decoded by :class:`~dermkit.data.loader.ImageLoader` (OpenCV, with the
on-disk cache in front) inside ``tf.numpy_function``, in parallel, in a fixed order.
OpenCV releases the GIL while it decodes and resizes, so the parallel map really runs
on several cores.

A bad image met while iterating stops the stream, as it must: TensorFlow wraps the
:class:`~dermkit.errors.DataError` raised inside the map in its own error type, whose
message still contains ours (file, reason, hint). Wrap iteration (or ``model.fit``) in
:func:`surface_data_errors` to get the original :class:`DataError` back, so the command
line prints one clear line instead of a TensorFlow traceback. Datasets verify images
when they load (``verify=True``), so this should be rare.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from dermkit.core import Record
from dermkit.data.cache import ImageCache
from dermkit.data.images import ImageSettings
from dermkit.data.loader import ImageLoader
from dermkit.errors import ConfigError, DataError

__all__ = [
    "ImageCache",
    "ImageLoader",
    "ImageSettings",
    "image_dataset",
    "records_dataset",
    "surface_data_errors",
]

_RECENT_LIMIT = 256
_recent_errors: OrderedDict[str, DataError] = OrderedDict()
_recent_lock = threading.Lock()


def _remember(error: DataError) -> None:
    with _recent_lock:
        _recent_errors[error.render()] = error
        _recent_errors.move_to_end(error.render())
        while len(_recent_errors) > _RECENT_LIMIT:
            _recent_errors.popitem(last=False)


def _find_data_error(error: BaseException) -> DataError | None:
    message = str(getattr(error, "message", "") or error)
    with _recent_lock:
        candidates = list(reversed(_recent_errors.items()))
    for rendered, data_error in candidates:
        if rendered in message:
            return data_error
    return None


@contextmanager
def surface_data_errors() -> Iterator[None]:
    """Turn a TensorFlow error caused by a bad image back into its :class:`DataError`.

    ::

        with surface_data_errors():
            model.fit(records_dataset(...))
    """
    try:
        yield
    except tf.errors.OpError as error:
        data_error = _find_data_error(error)
        if data_error is None:
            raise
        raise data_error from error


def _batch_loader(
    loader: Callable[[Any], Any], shape: tuple[int, int, int]
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A graph function ``paths (n,) -> images (n, size, size, 3)`` around ``loader``.

    One ``tf.numpy_function`` call per chunk of paths, not per image: a cached read
    takes tens of microseconds, about what the call itself costs.
    """
    load_batch = getattr(loader, "load_batch", None)

    def call(paths: Any) -> Any:
        try:
            if load_batch is not None:
                images = load_batch(list(paths))
            else:
                images = np.stack([loader(p) for p in paths]) if len(paths) else None
        except DataError as error:
            _remember(error)
            raise
        if images is None:
            return np.zeros((0, *shape), dtype=np.uint8)
        if images.shape[1:] != shape or images.dtype != np.uint8:
            first = paths[0]
            wrong = DataError(
                f"the loader returned {images.shape[1:]} {images.dtype} arrays, "
                f"expected {shape} uint8",
                where=os.fsdecode(first) if isinstance(first, bytes) else str(first),
                hint="make the loader resize to the pipeline's image size",
            )
            _remember(wrong)
            raise wrong
        return images

    def load(paths: tf.Tensor) -> tf.Tensor:
        images = tf.numpy_function(call, [paths], tf.uint8, stateful=False, name="dermkit_load")
        images.set_shape((None, *shape))
        return images

    return load


def _chunk_size(count: int) -> int:
    """Paths per loader call: up to 32, but small sets still spread over every core."""
    cores = os.cpu_count() or 1
    return max(1, min(32, -(-count // (4 * cores))))


def _loader_shape(loader: Callable[[Any], Any]) -> tuple[int, int, int]:
    settings = getattr(loader, "settings", None)
    if not isinstance(settings, ImageSettings):
        raise ConfigError(
            "the image loader has no `settings` (ImageSettings) attribute",
            hint="pass a dermkit.data.loader.ImageLoader, or give your callable a `settings`",
        )
    return settings.shape


def _encode_paths(paths: Sequence[str | Path]) -> list[bytes]:
    # bytes survive file names that are not valid UTF-8; the loader decodes with fsdecode
    return [os.fsencode(os.fspath(p)) for p in paths]


def image_dataset(
    paths: Sequence[str | Path],
    loader: ImageLoader | Callable[[Any], Any],
    *,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """A dataset of ``(size, size, 3)`` uint8 images, in the order of ``paths``.

    ``loader`` is an :class:`ImageLoader`, or any callable ``path -> array`` with a
    ``settings`` attribute (an :class:`ImageSettings`) that fixes the static shape.
    """
    shape = _loader_shape(loader)
    load = _batch_loader(loader, shape)
    names = tf.constant(_encode_paths(paths), dtype=tf.string, shape=(len(paths),))
    dataset = tf.data.Dataset.from_tensor_slices(names).batch(_chunk_size(len(paths)))
    dataset = dataset.map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
    return dataset.unbatch().prefetch(tf.data.AUTOTUNE)


def records_dataset(
    records: Sequence[Record],
    loader: ImageLoader | Callable[[Any], Any],
    num_classes: int,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    repeat: bool = False,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """Batches of ``(float32 images in [0, 255], int32 labels)`` for ``fit``/``predict``.

    Shuffling happens on the paths, before decoding, so the shuffle buffer holds the
    whole epoch without holding its pixels; with ``seed`` fixed the order is the same
    in every run and differs between epochs. Images stay in [0, 255]: every model
    factory scales its own input.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}", where="batch_size")
    if not records:
        raise DataError(
            "no records to build an input pipeline from",
            hint="check that the dataset loaded images and the split left some for this part",
        )
    for record in records:
        if not 0 <= record.label < num_classes:
            raise DataError(
                f"label {record.label} is outside 0..{num_classes - 1}",
                where=str(record.path),
                hint="the records and the class index do not belong together",
            )
    shape = _loader_shape(loader)
    load = _batch_loader(loader, shape)
    names = tf.constant(_encode_paths([r.path for r in records]), dtype=tf.string)
    labels = tf.constant([r.label for r in records], dtype=tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices((names, labels))
    if shuffle:
        dataset = dataset.shuffle(len(records), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(
        lambda paths, labels: (tf.cast(load(paths), tf.float32), labels),
        num_parallel_calls=num_parallel_calls,
        deterministic=True,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
