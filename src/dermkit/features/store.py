"""Frozen-prefix activations on disk, one small ``.npy`` per image and view.

Layout: ``<root>/<prefix key>/v<view>/<2 hex>/<hash>.npy`` (float16). The prefix key
covers everything that changes the activations of an image: the prefix's layers, their
configuration and weights, where the model is cut, and the image settings (size,
resize mode, interpolation). The per-image hash is a hash of the source file's bytes,
so an edited image gets a new entry and a stale one is never read, while a dataset
that is copied, re-extracted or touched (new paths or modification times, same bytes)
keeps its entries: an entry costs eight passes of a prefix (measured: 20 to 35 minutes
for HAM10000's training part on a 2-core CPU), reading a 20 kB file to hash it costs
microseconds. (The decoded-image cache keys by path, size and modification time,
since decoding is cheap to redo.) Entries are written to a
temporary file and renamed into place, so two runs filling the cache at once, or a run
killed mid-write, never leave a half-written entry that is read back; an entry of the
wrong length counts as missing and is recomputed.

Float16 halves the disk and memory cost; activations of a BatchNorm/ReLU6 network lie
well inside its range, and the tail trains in float32.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dermkit.data.cache import default_cache_root, source_identity
from dermkit.features.views import apply_view, check_views

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.data.images import ImageSettings
    from dermkit.data.loader import ImageLoader

FEATURE_VERSION = 1
"""Bump when the way activations are computed or stored changes."""

FEATURE_DTYPE = np.float16

PrefixFn = Callable[[np.ndarray], np.ndarray]
"""``uint8 (n, h, w, 3) -> activations (n, *feature_shape)``."""


def default_feature_root() -> Path:
    """The ``features`` folder inside the decoded-image cache's root."""
    return default_cache_root() / "features"


_NOT_IN_THE_OUTPUT = ("_initializer", "_regularizer", "_constraint")
"""Config entries that shape training only: with the weights given, the output is the same."""


def _output_config(value: Any) -> Any:
    """A layer config without the names Keras makes up per session (``conv2d_3``) and
    without what cannot change a built layer's output (initialisers, regularisers,
    constraints): a new default initialiser must not orphan every cached activation."""
    if isinstance(value, dict):
        return {
            k: _output_config(v)
            for k, v in value.items()
            if k != "name" and not k.endswith(_NOT_IN_THE_OUTPUT)
        }
    if isinstance(value, list):
        return [_output_config(v) for v in value]
    return value


def prefix_key(prefix: Any, layer: str, settings: ImageSettings) -> str:
    """A folder name for the activations of ``prefix`` on images made with ``settings``.

    Hashes each prefix layer's type, configuration (names left out, since Keras numbers
    auto-named layers per session) and weights, so a different weights file, another
    cut point or a changed architecture never reads another's activations.
    """
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"dermkit-features-v{FEATURE_VERSION}\0{settings.cache_key()}\0".encode())
    for index, item in enumerate(prefix.layers):
        try:
            config = _output_config(item.get_config())
        except NotImplementedError:  # pragma: no cover - layers without a config
            config = {}
        digest.update(f"{index}\0{type(item).__name__}\0".encode())
        digest.update(json.dumps(config, sort_keys=True, default=str).encode())
        for weight in item.weights:
            array = np.ascontiguousarray(np.asarray(weight.numpy()))
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    safe_layer = "".join(c if c.isalnum() or c in "-_" else "_" for c in layer)
    return f"{settings.size}-{safe_layer}-{digest.hexdigest()}"


def _identity(path: str | Path) -> str:
    """The hash of the image file's bytes: what its activations depend on."""
    return hashlib.blake2b(source_identity(path, content_hash=True), digest_size=16).hexdigest()


class FeatureCache:
    """Activations of a frozen prefix, computed once per image and view, then read back.

    ``root`` defaults to :func:`default_feature_root`. ``computed`` and ``read`` count
    entries, so tests and benchmarks can show that a second run computes nothing.
    """

    def __init__(self, root: str | Path | None = None, *, persist: bool = True) -> None:
        self.root = Path(root).expanduser() if root is not None else default_feature_root()
        self.persist = persist  # False: compute in memory only, write nothing to disk
        self.computed = 0
        self.read = 0

    def __repr__(self) -> str:
        return f"FeatureCache(root={str(self.root)!r}, persist={self.persist})"

    def entry(self, key: str, view: int, path: str | Path) -> str:
        return self._entry(key, view, _identity(path))

    def _entry(self, key: str, view: int, digest: str) -> str:
        return os.path.join(self.root, key, f"v{view}", digest[:2], digest + ".npy")

    def _load(self, entry: str, shape: tuple[int, ...]) -> np.ndarray | None:
        if not self.persist:
            return None
        try:
            array: np.ndarray = np.load(entry, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if array.shape != shape or array.dtype != FEATURE_DTYPE:
            return None
        return array

    def _store(self, entry: str, array: np.ndarray) -> None:
        if not self.persist:
            return
        folder = os.path.dirname(entry)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            os.replace(tmp, entry)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def stored(
        self,
        key: str,
        feature_shape: tuple[int, ...],
        paths: Sequence[str | Path],
        views: Sequence[int],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Read-only: ``(len(paths), len(views), *feature_shape)`` float16 activations and,
        per path, whether every one of ``views`` was stored (rows of the others are
        unset). Nothing is computed or written."""
        for view in views:
            check_views(view + 1)
        shape = tuple(feature_shape)
        out = np.empty((len(paths), len(views), *shape), dtype=FEATURE_DTYPE)
        complete = np.zeros(len(paths), dtype=bool)
        for index, path in enumerate(paths):
            try:
                digest = _identity(path)
            except OSError:
                continue  # a missing file: the pixel path names it
            for slot, view in enumerate(views):
                cached = self._load(self._entry(key, view, digest), shape)
                if cached is None:
                    break
                out[index, slot] = cached
            else:
                complete[index] = True
                self.read += len(views)
        return out, complete

    def features(
        self,
        prefix: PrefixFn,
        key: str,
        feature_shape: tuple[int, ...],
        paths: Sequence[str | Path],
        loader: ImageLoader,
        *,
        views: int = 1,
        batch_size: int = 32,
        label: str = "frozen features",
    ) -> np.ndarray:
        """``(len(paths), views, *feature_shape)`` float16 activations, computing misses.

        Misses are computed in batches: the images are loaded (through ``loader`` and
        its cache), turned to each missing view and run through ``prefix``.
        """
        check_views(views)
        shape = tuple(feature_shape)
        out = np.empty((len(paths), views, *shape), dtype=FEATURE_DTYPE)
        missing: dict[int, list[int]] = {}
        entries: list[list[str]] = []
        for index, path in enumerate(paths):
            row: list[str] = []
            digest = _identity(path)  # one read per image, not one per view
            for view in range(views):
                entry = self._entry(key, view, digest)
                row.append(entry)
                cached = self._load(entry, shape)
                if cached is None:
                    missing.setdefault(index, []).append(view)
                else:
                    out[index, view] = cached
                    self.read += 1
            entries.append(row)
        total = sum(len(v) for v in missing.values())
        if total:
            self._compute(prefix, paths, loader, missing, entries, out, batch_size, label, total)
        return out

    def _compute(
        self,
        prefix: PrefixFn,
        paths: Sequence[str | Path],
        loader: ImageLoader,
        missing: dict[int, list[int]],
        entries: list[list[str]],
        out: np.ndarray,
        batch_size: int,
        label: str,
        total: int,
    ) -> None:
        from dermkit.data.verify import Progress

        _say(f"dermkit: computing {label}: {total:,} image-views (stored for later runs)")
        started = time.perf_counter()
        meter = Progress(label, total)
        indices = sorted(missing)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            images = loader.load_batch([paths[i] for i in chunk])
            needed = sorted({v for i in chunk for v in missing[i]})
            for view in needed:
                members = [n for n, i in enumerate(chunk) if view in missing[i]]
                batch = apply_view(images[members], view)
                activations = np.asarray(prefix(batch)).astype(FEATURE_DTYPE)
                for row, member in enumerate(members):
                    index = chunk[member]
                    out[index, view] = activations[row]
                    self._store(entries[index][view], activations[row])
                    self.computed += 1
                meter.update(len(members))
        meter.close()
        seconds = time.perf_counter() - started
        _say(f"dermkit: {label}: {total:,} image-views in {seconds:.0f} s")


def feature_cache_for(loader: ImageLoader) -> FeatureCache:
    """The feature cache beside ``loader``'s decoded-image cache, or an in-memory one
    (``persist=False``) when the loader has no cache."""
    image_cache = getattr(loader, "cache", None)
    if image_cache is None:
        return FeatureCache(persist=False)
    return FeatureCache(image_cache.root / "features")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
