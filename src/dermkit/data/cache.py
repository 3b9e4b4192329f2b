"""A persistent on-disk cache of decoded, resized images.

Decoding a JPEG and resizing it with Lanczos costs about a millisecond and a half per
image; reading back the finished array costs a few tens of microseconds. Training
re-reads every image once per epoch and users re-run experiments, so after the first
pass nothing is decoded again, in this run or any later one.

Layout: ``<root>/<settings.cache_key()>/<2 hex>/<hash>.npy``. Each entry is a plain
``.npy`` file (``numpy.load`` opens it for inspection). The hash covers the source
file's identity: its absolute path, size and modification time in nanoseconds (or,
with ``content_hash=True``, its bytes, which survives moving or copying a dataset).
Editing an image therefore changes its key; the stale entry is simply never read.

Safety under concurrency: an entry is written to a temporary file in its own folder
and moved into place with :func:`os.replace`, which is atomic on POSIX and Windows;
two runs filling the same cache at once at worst both write the same bytes. An entry
that does not have exactly the expected header and length (a crash without fsync, a
disk error, a stray edit) counts as a miss and is rewritten. Nothing is ever evicted:
delete the folder (or call :meth:`ImageCache.clear`) to reclaim the space.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.data.images import ImageArray, ImageSettings

CACHE_ENV = "DERMKIT_CACHE"

_preadv = getattr(os, "preadv", None)


class CacheWarning(UserWarning):
    """The cache could not be written; images are still loaded, only not cached."""


def default_cache_root() -> Path:
    """``$DERMKIT_CACHE``, else ``$XDG_CACHE_HOME/dermkit/images``, else ``~/.cache/...``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dermkit" / "images"


@lru_cache(maxsize=64)
def _npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def _read_exactly(handle: io.RawIOBase, view: memoryview) -> bool:
    """Fill ``view`` from ``handle``; ``False`` if the file ends first."""
    filled, size = 0, len(view)
    while filled < size:
        got = handle.readinto(view[filled:])
        if not got:
            return False
        filled += got
    return True


def source_identity(path: str | Path, *, content_hash: bool = False) -> bytes:
    """What identifies a source file for a cache: absolute path, size and modification
    time in nanoseconds, or (``content_hash``) a hash of its bytes. Editing the file
    changes it, so a cache keyed by it never serves a stale entry."""
    if content_hash:
        with open(path, "rb") as handle:
            return hashlib.blake2b(handle.read(), digest_size=20).digest()
    absolute = os.path.abspath(path)
    stat = os.stat(absolute)
    return f"{absolute}\0{stat.st_size}\0{stat.st_mtime_ns}".encode("utf-8", "surrogateescape")


class ImageCache:
    """Decoded images on disk, keyed by source-file identity and :class:`ImageSettings`.

    ``root`` defaults to :func:`default_cache_root`. Pass ``cache=None`` wherever a
    cache is accepted to switch caching off.
    """

    def __init__(self, root: str | Path | None = None, *, content_hash: bool = False) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.content_hash = content_hash
        self._warned = False
        self._lock = threading.Lock()
        self._folders: dict[ImageSettings, str] = {}

    def __repr__(self) -> str:
        return f"ImageCache(root={str(self.root)!r}, content_hash={self.content_hash})"

    # ----------------------------------------------------------------- keys

    def _identity(self, path: str | Path) -> bytes:
        return source_identity(path, content_hash=self.content_hash)

    def entry_path(self, path: str | Path, settings: ImageSettings) -> Path:
        """Where the cached array for ``path`` under ``settings`` lives (may not exist).

        Raises :class:`OSError` if the source file cannot be stat'ed (or read, with
        ``content_hash``); :class:`~dermkit.data.loader.ImageLoader` then decodes
        directly, which produces a proper :class:`~dermkit.errors.DataError`.
        """
        return Path(self.locate(path, settings))

    def locate(self, path: str | Path, settings: ImageSettings) -> str:
        """:meth:`entry_path` as a plain string, for the hot path.

        This runs once per image per epoch, and pathlib joins cost more than the rest
        of a cache hit's Python work together.
        """
        digest = hashlib.blake2b(self._identity(path), digest_size=16).hexdigest()
        folder = self._folders.get(settings)
        if folder is None:
            folder = self._folders[settings] = os.path.join(self.root, settings.cache_key())
        return os.path.join(folder, digest[:2], digest + ".npy")

    # ----------------------------------------------------------------- read / write

    def read(
        self, entry: str | Path, settings: ImageSettings, out: ImageArray | None = None
    ) -> ImageArray | None:
        """The array stored at ``entry``, or ``None`` if absent or not exactly right.

        With ``out`` (a C-contiguous ``settings.shape`` uint8 array) the pixels are read
        straight into it, saving a copy when filling a batch; on a miss its contents
        are undefined.
        """
        header = _npy_header(settings.shape)
        target = np.empty(settings.shape, dtype=np.uint8) if out is None else out
        if target.shape != settings.shape or not target.flags.c_contiguous:
            raise ValueError(f"`out` must be a C-contiguous {settings.shape} uint8 array")
        head = bytearray(len(header))
        pixels = target.data.cast("B")
        try:
            if _preadv is not None:
                # one system call for header, pixels and a probe byte that must stay
                # unread: the hot path of every epoch after the first
                fd = os.open(entry, os.O_RDONLY)
                try:
                    got = _preadv(fd, [head, pixels, bytearray(1)], 0)
                finally:
                    os.close(fd)
                whole = got == len(header) + len(pixels)
            else:  # pragma: no cover - Windows
                with open(entry, "rb", buffering=0) as handle:
                    whole = (
                        _read_exactly(handle, memoryview(head))
                        and _read_exactly(handle, pixels)
                        and not handle.read(1)
                    )
        except OSError:
            return None
        if not whole or head != header:
            return None
        return target

    def write(self, entry: str | Path, image: ImageArray, settings: ImageSettings) -> None:
        """Store ``image`` at ``entry`` atomically; a failure warns once and is ignored."""
        if image.shape != settings.shape or image.dtype != np.uint8:
            raise ValueError(
                f"cache entries must be {settings.shape} uint8, got {image.shape} {image.dtype}"
            )
        folder = os.path.dirname(entry)
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=folder)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(_npy_header(settings.shape))
                    handle.write(np.ascontiguousarray(image).tobytes())
                os.replace(tmp, entry)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as error:
            with self._lock:
                if self._warned:
                    return
                self._warned = True
            warnings.warn(
                f"image cache {self.root} is not writable ({error}); images are decoded "
                f"every time. Set {CACHE_ENV} to a writable folder to cache them.",
                CacheWarning,
                stacklevel=3,
            )

    def get(self, path: str | Path, settings: ImageSettings) -> ImageArray | None:
        """The cached array for ``path``, or ``None`` on a miss."""
        try:
            entry = self.locate(path, settings)
        except OSError:
            return None
        return self.read(entry, settings)

    def put(self, path: str | Path, settings: ImageSettings, image: ImageArray) -> None:
        try:
            entry = self.locate(path, settings)
        except OSError:
            return
        self.write(entry, image, settings)

    # ----------------------------------------------------------------- housekeeping

    def clear(self, settings: ImageSettings | None = None) -> None:
        """Delete every entry (or only those made with ``settings``)."""
        target = self.root / settings.cache_key() if settings is not None else self.root
        shutil.rmtree(target, ignore_errors=True)

    def size_bytes(self) -> int:
        """Disk space the entries take."""
        return sum(p.stat().st_size for p in self.root.rglob("*.npy") if p.is_file())
