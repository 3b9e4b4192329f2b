"""The path-to-pixels function the input pipeline calls, with the disk cache in front.

Kept free of TensorFlow so benchmarks, verification and notebooks can load images
without paying for a TensorFlow import; :mod:`dermkit.data.pipeline` wraps it in
``tf.data``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dermkit.data.images import ImageSettings, load_image

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.data.cache import ImageCache
    from dermkit.data.images import ImageArray

PathLike = str | Path | bytes


class ImageLoader:
    """``path -> (size, size, 3) uint8 RGB``; a cache hit decodes nothing.

    Thread-safe: ``tf.data`` calls it from several threads at once. ``hits`` and
    ``decodes`` count what happened, which tests and benchmarks use to prove that a
    second pass really reads from the cache. :meth:`load_batch` fills one array for
    many paths, which is how the pipeline calls it: a cache hit costs tens of
    microseconds, so per-call overhead (a ``tf.numpy_function`` call, a thread-pool
    task) would otherwise cost more than the read itself.
    """

    def __init__(self, settings: ImageSettings | None = None, cache: ImageCache | None = None):
        self.settings = settings if settings is not None else ImageSettings()
        self.cache = cache
        self.hits = 0
        self.decodes = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ImageLoader({self.settings!r}, cache={self.cache!r})"

    def __call__(self, path: PathLike) -> ImageArray:
        return self._load(path, None)

    def load_batch(self, paths: Sequence[PathLike]) -> ImageArray:
        """``(len(paths), size, size, 3)`` uint8, in the order of ``paths``."""
        out: ImageArray = np.empty((len(paths), *self.settings.shape), dtype=np.uint8)
        for index, path in enumerate(paths):
            self._load(path, out[index])
        return out

    def _load(self, path: PathLike, out: ImageArray | None) -> ImageArray:
        if isinstance(path, bytes):  # what tf.numpy_function hands over
            path = os.fsdecode(path)
        entry = None
        if self.cache is not None:
            try:
                entry = self.cache.locate(path, self.settings)
            except OSError:
                entry = None  # unreadable source: let load_image say why
            if entry is not None:
                cached = self.cache.read(entry, self.settings, out)
                if cached is not None:
                    with self._lock:
                        self.hits += 1
                    return cached
        image = load_image(path, self.settings)
        with self._lock:
            self.decodes += 1
        if self.cache is not None and entry is not None:
            self.cache.write(entry, image, self.settings)
        if out is not None:
            out[...] = image
            return out
        return image
