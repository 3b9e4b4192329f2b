"""Decoding and resizing of single images: the only code that turns bytes into pixels.

Every image, whatever its encoding, comes out as an 8-bit RGB array, because that is
what every model factory expects (each one bakes its own preprocessing into the
model, see :class:`dermkit.core.ModelFactory`). Bad files are refused with a
:class:`~dermkit.errors.DataError` that names the file, says what is wrong with it and
what to do, instead of letting OpenCV hand back ``None`` or a half-decoded picture.

OpenCV is imported on first use, not at import time, so that code which only needs
:class:`ImageSettings` (configuration, ``dermkit data inspect --no-verify``) starts fast.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs
import numpy as np

from dermkit.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import NDArray

    ImageArray = NDArray[np.uint8]

ResizeMode = Literal["squash", "center_crop", "pad"]
Interpolation = Literal["nearest", "linear", "area", "cubic", "lanczos4"]

RESIZE_MODES: tuple[str, ...] = ("squash", "center_crop", "pad")
INTERPOLATIONS: tuple[str, ...] = ("nearest", "linear", "area", "cubic", "lanczos4")

DEFAULT_MAX_PIXELS = 89_478_485
"""Pillow's decompression-bomb threshold: far above any dermatoscope, far below a bomb."""

DECODE_VERSION = 1
"""Bumped whenever decoding or resizing changes its output, so old cache entries go unused."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp"}
)
"""File suffixes (lower case) that the dataset readers treat as images."""

_CV2_INTERPOLATION: dict[str, int] = {
    # the numeric values of cv2.INTER_*; spelled out so this table needs no cv2 import
    "nearest": 0,
    "linear": 1,
    "cubic": 2,
    "area": 3,
    "lanczos4": 4,
}

_cv2_module: Any = None


def _cv2() -> Any:
    """OpenCV, imported on first use with its own warnings turned down.

    dermkit reports every bad file itself (with a hint), so OpenCV's own
    ``[ WARN ]`` lines would only repeat that, once per file, on stderr. A user who
    sets ``OPENCV_LOG_LEVEL`` keeps whatever level they chose.
    """
    global _cv2_module
    if _cv2_module is None:
        import cv2

        if "OPENCV_LOG_LEVEL" not in os.environ:
            with contextlib.suppress(AttributeError):  # very old OpenCV builds
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        _cv2_module = cv2
    return _cv2_module


def _config_error(field: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"invalid {field} {value!r}", where="image settings", hint=f"use {allowed}")


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _config_error(attribute.name, value, "a positive whole number")


def _one_of(
    choices: tuple[str, ...],
) -> Any:
    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in choices:
            raise _config_error(attribute.name, value, "one of " + ", ".join(choices))

    return check


@attrs.frozen(slots=True)
class ImageSettings:
    """How every image is turned into a ``(size, size, 3)`` uint8 RGB array.

    ``resize_mode``: ``"squash"`` stretches the whole image to a square (what the
    original study did; dermatoscopic images are 4:3, so lesions get slightly
    narrower), ``"center_crop"`` keeps the aspect ratio and cuts the long side's
    edges, ``"pad"`` keeps the whole image and pads the short side with black (the
    colour of a dermatoscope's vignette). ``interpolation`` defaults to Lanczos, as
    the study used. ``max_pixels`` refuses larger images before they are decoded, so
    a hostile or broken file cannot exhaust memory; it does not change any pixel and
    is therefore not part of :meth:`cache_key`.
    """

    size: int = attrs.field(default=224, validator=_positive_int)
    resize_mode: ResizeMode = attrs.field(default="squash", validator=_one_of(RESIZE_MODES))
    interpolation: Interpolation = attrs.field(
        default="lanczos4", validator=_one_of(INTERPOLATIONS)
    )
    max_pixels: int = attrs.field(default=DEFAULT_MAX_PIXELS, validator=_positive_int)

    FIELDS: ClassVar[tuple[str, ...]] = ("size", "resize_mode", "interpolation", "max_pixels")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, 3)

    def to_config(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "resize_mode": self.resize_mode,
            "interpolation": self.interpolation,
            "max_pixels": self.max_pixels,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ImageSettings:
        unknown = sorted(set(config) - set(cls.FIELDS))
        if unknown:
            raise ConfigError(
                f"unknown image setting(s) {', '.join(unknown)}",
                where="image settings",
                hint=f"known settings are {', '.join(cls.FIELDS)}",
            )
        return cls(**dict(config))

    def cache_key(self) -> str:
        """A short folder-safe name for everything that decides the output pixels."""
        return f"{self.size}-{self.resize_mode}-{self.interpolation}-v{DECODE_VERSION}"


# --------------------------------------------------------------------------- sniffing


def sniff_format(data: bytes) -> str | None:
    """The image format named by the file's first bytes, or ``None`` if unknown."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_header(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """``((width, height) or None, offset of the first scan or None)`` of a JPEG.

    Walks the marker segments up to the first start-of-scan. No scan found means the
    header itself is cut off or garbled.
    """
    size: tuple[int, int] | None = None
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return size, None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        if marker == 0xD9:  # end of image before any scan
            return size, None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return size, None
        if marker in _JPEG_SOF and pos + 9 <= end:
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            if height and width:
                size = (width, height)
        if marker == 0xDA:
            return size, pos
        pos += 2 + length
    return size, None


def _png_complete(data: bytes) -> bool:
    """Whether the PNG's chunks all fit in the file and end with ``IEND``."""
    pos, end = 8, len(data)
    while pos + 8 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_end = pos + 12 + length
        if chunk_end > end:
            return False
        if data[pos + 4 : pos + 8] == b"IEND":
            return True
        pos = chunk_end
    return False


def header_size(data: bytes, fmt: str | None = None) -> tuple[int, int] | None:
    """``(width, height)`` read from the header alone, or ``None`` where not known.

    Lets :func:`decode_image` refuse a decompression bomb before allocating it.
    """
    fmt = fmt or sniff_format(data)
    try:
        if fmt == "jpeg":
            return _jpeg_header(data)[0]
        if fmt == "png" and data[12:16] == b"IHDR":
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if fmt == "gif" and len(data) >= 10:
            return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
        if fmt == "bmp" and len(data) >= 26:
            width = int.from_bytes(data[18:22], "little", signed=True)
            height = int.from_bytes(data[22:26], "little", signed=True)
            return abs(width), abs(height)
        if fmt == "webp" and len(data) >= 30:
            chunk = data[12:16]
            if chunk == b"VP8X":
                width = int.from_bytes(data[24:27], "little") + 1
                height = int.from_bytes(data[27:30], "little") + 1
                return width, height
            if chunk == b"VP8 ":
                width = int.from_bytes(data[26:28], "little") & 0x3FFF
                height = int.from_bytes(data[28:30], "little") & 0x3FFF
                return width, height
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    except (IndexError, ValueError):  # pragma: no cover - slicing never raises; belt and braces
        return None
    return None


def _truncation(data: bytes, fmt: str | None) -> str | None:
    """Why the file looks cut off, or ``None`` if it looks whole.

    OpenCV builds differ in what they do with a partial file: some return ``None``,
    some decode the top of the picture and leave the rest grey without a word. A
    cut-off download must never train a model, so this is checked explicitly.
    """
    if fmt == "jpeg":
        _, scan = _jpeg_header(data)
        if scan is None:
            return "truncated or corrupt JPEG: the header ends before the image data"
        # 0xFFD9 cannot occur inside entropy-coded data (0xFF is always stuffed), so the
        # end-of-image marker must follow the first scan in a complete file.
        if data.rfind(b"\xff\xd9") < scan:
            return "truncated JPEG: the file ends before the end-of-image marker"
    elif fmt == "png":
        if not _png_complete(data):
            return "truncated PNG: the file ends before its final IEND chunk"
    elif fmt == "bmp" and len(data) >= 6:
        declared = int.from_bytes(data[2:6], "little")
        if declared > len(data):
            return f"truncated BMP: header says {declared:,} bytes, file has {len(data):,}"
    elif fmt == "webp" and len(data) >= 8:
        declared = int.from_bytes(data[4:8], "little") + 8
        if declared > len(data):
            return f"truncated WebP: header says {declared:,} bytes, file has {len(data):,}"
    return None


_REDOWNLOAD = "the download or copy was probably interrupted; fetch the image again or remove it"


def _describe_non_image(data: bytes) -> str:
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"{", b"<")):
        return "not an image: the file holds text/markup (an error page saved as an image?)"
    try:
        data[:256].decode("utf-8")
    except UnicodeDecodeError:
        return f"not an image: unrecognised content starting with {data[:8]!r}"
    return "not an image: the file holds plain text"


def _too_large(width: int, height: int, max_pixels: int, where: str) -> DataError:
    return DataError(
        f"image is {width}×{height} = {width * height:,} pixels, over the limit of {max_pixels:,}",
        where=where,
        hint="downscale the file, or raise ImageSettings.max_pixels if you trust it",
    )


# --------------------------------------------------------------------------- decoding


def _to_uint8(image: Any, where: str) -> Any:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        # 65535 / 257 == 255 exactly, so full range maps onto full range
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if image.dtype in (np.float32, np.float64, np.float16):
        values = np.nan_to_num(image.astype(np.float32))
        if values.size and float(values.max()) <= 1.0:
            values = values * 255.0
        return np.clip(values + 0.5, 0, 255).astype(np.uint8)
    raise DataError(
        f"unsupported pixel type {image.dtype}",
        where=where,
        hint="convert the image to 8- or 16-bit RGB (JPEG or PNG)",
    )


def _to_rgb(image: Any, where: str) -> Any:
    cv2 = _cv2()
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        # Composite over black: transparent areas become the dark border a
        # dermatoscope's field of view already has, not whatever colour hides
        # behind alpha = 0.
        alpha = image[:, :, 3:4].astype(np.uint16)
        premultiplied = (image[:, :, :3].astype(np.uint16) * alpha + 127) // 255
        return cv2.cvtColor(premultiplied.astype(np.uint8), cv2.COLOR_BGR2RGB)
    raise DataError(
        f"unsupported channel layout {image.shape}",
        where=where,
        hint="convert the image to RGB, grayscale or RGBA",
    )


def decode_image(
    data: bytes, *, where: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageArray:
    """Encoded image bytes to an ``(H, W, 3)`` uint8 RGB array, or a :class:`DataError`.

    Grayscale is repeated to three channels, alpha is composited over black, 16-bit
    is scaled to 8-bit. EXIF orientation is not applied: it is rarely set on
    dermatoscopic images, and lesion orientation carries no label.
    """
    if not data:
        raise DataError(
            "empty file (0 bytes)",
            where=where,
            hint="the file was never written completely; fetch or export it again, or remove it",
        )
    fmt = sniff_format(data)
    truncated = _truncation(data, fmt)
    if truncated:
        raise DataError(truncated, where=where, hint=_REDOWNLOAD)
    size = header_size(data, fmt)
    if size is not None and size[0] * size[1] > max_pixels:
        raise _too_large(size[0], size[1], max_pixels, where)
    cv2 = _cv2()
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else "no detail"
        raise DataError(
            f"OpenCV could not decode this file ({detail})",
            where=where,
            hint="the file is damaged or too large; re-export it as JPEG or PNG",
        ) from None
    if image is None:
        if fmt is None:
            raise DataError(
                _describe_non_image(data),
                where=where,
                hint="remove the file or replace it with the real image (JPEG or PNG)",
            )
        raise DataError(
            f"corrupt {fmt.upper()} file: OpenCV could not decode it",
            where=where,
            hint=_REDOWNLOAD,
        )
    height, width = image.shape[:2]
    if height * width > max_pixels:
        raise _too_large(width, height, max_pixels, where)
    if height == 0 or width == 0:
        raise DataError("image has no pixels", where=where, hint=_REDOWNLOAD)
    rgb = _to_rgb(_to_uint8(image, where), where)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, or a :class:`DataError` saying why it cannot be read.

    Reads through Python's own file API rather than ``cv2.imread``, so non-ASCII
    paths work on every platform.
    """
    where = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise DataError(
            "file not found", where=where, hint="check the path; was the file moved or deleted?"
        ) from None
    except IsADirectoryError:
        raise DataError(
            "is a folder, not an image file", where=where, hint="point at the image file itself"
        ) from None
    except PermissionError:
        raise DataError(
            "cannot read file: permission denied",
            where=where,
            hint="fix the file's permissions (chmod) or run as a user that can read it",
        ) from None
    except OSError as error:
        raise DataError(
            f"cannot read file: {error.strerror or error}",
            where=where,
            hint="check the disk or network share the file is on",
        ) from None


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageArray:
    """Decode the image at ``path`` to an ``(H, W, 3)`` uint8 RGB array.

    Refuses, with a :class:`DataError` naming the file, anything that is not a whole,
    readable image of at most ``max_pixels`` pixels: missing, empty, truncated,
    non-image, undecodable and oversized files.
    """
    return decode_image(read_bytes(path), where=os.fspath(path), max_pixels=max_pixels)


# --------------------------------------------------------------------------- resizing


def resize_image(image: ImageArray, settings: ImageSettings) -> ImageArray:
    """Resize an RGB array to ``(settings.size, settings.size, 3)`` per ``resize_mode``."""
    cv2 = _cv2()
    interpolation = _CV2_INTERPOLATION[settings.interpolation]
    size = settings.size
    height, width = image.shape[:2]
    if settings.resize_mode == "center_crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        image = image[top : top + side, left : left + side]
        height = width = side
    elif settings.resize_mode == "pad":
        scale = size / max(height, width)
        new_w = min(size, max(1, round(width * scale)))
        new_h = min(size, max(1, round(height * scale)))
        if (new_h, new_w) != (height, width):
            image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        out = np.zeros((size, size, 3), dtype=np.uint8)
        top, left = (size - new_h) // 2, (size - new_w) // 2
        out[top : top + new_h, left : left + new_w] = image
        return out
    if (height, width) == (size, size):
        return np.ascontiguousarray(image, dtype=np.uint8)
    resized = cv2.resize(image, (size, size), interpolation=interpolation)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def load_image(path: str | Path, settings: ImageSettings) -> ImageArray:
    """Read, decode and resize one image: ``(size, size, 3)`` uint8 RGB."""
    return resize_image(read_image(path, settings.max_pixels), settings)
