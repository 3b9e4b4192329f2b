"""Fuzzing the image decoder: random bytes, truncated and bit-flipped real JPEGs and PNGs,
and absurd declared sizes. Every case decodes to an RGB array or raises a DataError with
a message, within a time limit; never another exception, a crash or a hang."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dermkit.data.images import decode_image
from dermkit.errors import DataError

from .faults import survives

FUZZ = settings(
    max_examples=150,
    deadline=None,  # the per-case limit is survives()' alarm, which also catches hangs
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same cases in CI every time
)


def _encoded(suffix: str, size: int = 24, seed: int = 0) -> bytes:
    import cv2

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    image = np.stack([x * 9 % 256, y * 7 % 256, (x + y) * 5 % 256], axis=-1).astype(np.uint8)
    image = np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return bytes(data.tobytes())


JPEG, PNG = _encoded(".jpg"), _encoded(".png")


def _check(data: bytes) -> None:
    result = survives(lambda: decode_image(data, where="fuzz.bin"), seconds=5)
    if isinstance(result, DataError):
        assert result.where == "fuzz.bin"
    else:
        assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.sampled_from([JPEG, PNG]), st.integers(min_value=0), st.binary(max_size=16))
def test_truncated_real_images(original: bytes, cut: int, tail: bytes) -> None:
    _check(original[: cut % len(original)] + tail)


@FUZZ
@given(
    st.sampled_from([JPEG, PNG]),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=12),
)
def test_bit_flipped_real_images(original: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(original)
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    _check(bytes(data))


def _png_with_header(width: int, height: int, bit_depth: int, colour: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\x80" * 12)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _jpeg_with_size(width: int, height: int) -> bytes:
    """The real JPEG with the frame header's height and width rewritten."""
    data = bytearray(JPEG)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at >= 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no frame header in the test JPEG")


@FUZZ
@given(
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**31 - 1),
    st.sampled_from([1, 2, 4, 8, 16, 3, 0]),
    st.sampled_from([0, 2, 3, 4, 6, 5]),
)
def test_pngs_declaring_absurd_sizes(width: int, height: int, depth: int, colour: int) -> None:
    _check(_png_with_header(width, height, depth, colour))


@FUZZ
@given(st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1))
def test_jpegs_declaring_absurd_sizes(width: int, height: int) -> None:
    _check(_jpeg_with_size(width, height))


def test_a_huge_declared_size_is_refused_from_the_header_not_decoded() -> None:
    error = survives(lambda: decode_image(_png_with_header(60000, 60000, 8, 2), where="x.png"))
    assert isinstance(error, DataError) and "pixels" in error.message
