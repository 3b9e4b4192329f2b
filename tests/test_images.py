"""Decoding to 8-bit RGB, resizing, and the image settings' configuration round-trip."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import ImageWriter, synthetic_image, write_image_file
from dermkit.data.images import (
    ImageSettings,
    decode_image,
    header_size,
    load_image,
    read_image,
    resize_image,
)
from dermkit.errors import ConfigError, DataError

# ----------------------------------------------------------------------------- settings


def test_settings_defaults_follow_the_study() -> None:
    settings = ImageSettings()
    assert (settings.size, settings.resize_mode, settings.interpolation) == (
        224,
        "squash",
        "lanczos4",
    )
    assert settings.max_pixels == 89_478_485
    assert settings.shape == (224, 224, 3)


def test_settings_round_trip_through_json() -> None:
    settings = ImageSettings(size=300, resize_mode="pad", interpolation="area", max_pixels=10**6)
    again = ImageSettings.from_config(json.loads(json.dumps(settings.to_config())))
    assert again == settings


def test_cache_key_names_everything_that_changes_pixels_and_nothing_else() -> None:
    key = ImageSettings(size=300, resize_mode="center_crop").cache_key()
    assert "300" in key and "center_crop" in key and "lanczos4" in key
    assert "/" not in key and len(key) < 40
    assert ImageSettings(max_pixels=5).cache_key() == ImageSettings().cache_key()
    assert ImageSettings(interpolation="area").cache_key() != ImageSettings().cache_key()


@pytest.mark.parametrize(
    "options",
    [{"size": 0}, {"size": "big"}, {"resize_mode": "stretch"}, {"interpolation": "bilinear"}],
)
def test_invalid_settings_are_config_errors_with_the_choices(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        ImageSettings(**options)  # type: ignore[arg-type]
    assert caught.value.hint


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="colour"):
        ImageSettings.from_config({"size": 64, "colour": "rgb"})


# ----------------------------------------------------------------------------- decoding


def test_colour_channels_come_out_in_rgb_order(tmp_path: Path) -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[:, :, 0] = 255
    path = write_image_file(tmp_path / "red.png", red)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (8, 8, 3)
    assert image[0, 0].tolist() == [255, 0, 0]


def test_grayscale_becomes_three_equal_channels(tmp_path: Path, write_image: ImageWriter) -> None:
    image = read_image(write_image(tmp_path / "gray.png", channels=1))
    assert image.shape == (32, 32, 3)
    assert np.array_equal(image[:, :, 0], image[:, :, 1])
    assert np.array_equal(image[:, :, 1], image[:, :, 2])


def test_alpha_is_composited_over_black(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :, :3] = (200, 100, 50)
    rgba[:2, :, 3] = 255  # opaque top
    rgba[2:, :, 3] = 0  # transparent bottom
    image = read_image(write_image_file(tmp_path / "rgba.png", rgba))
    assert image.shape == (4, 4, 3)
    assert image[0, 0].tolist() == [200, 100, 50]
    assert image[3, 0].tolist() == [0, 0, 0]


def test_sixteen_bit_is_scaled_to_eight_bit(tmp_path: Path) -> None:
    deep = np.zeros((4, 4, 3), np.uint16)
    deep[0] = 65535
    deep[1] = 257 * 100
    image = read_image(write_image_file(tmp_path / "deep.png", deep))
    assert image.dtype == np.uint8
    assert image[0, 0].tolist() == [255, 255, 255]
    assert image[1, 0].tolist() == [100, 100, 100]
    assert image[2, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp", ".tif"])
def test_common_formats_decode(tmp_path: Path, write_image: ImageWriter, suffix: str) -> None:
    path = write_image(tmp_path / f"image{suffix}", 24, 40)
    assert read_image(path).shape == (24, 40, 3)


def test_unicode_paths_work(tmp_path: Path, write_image: ImageWriter) -> None:
    path = write_image(tmp_path / "läsion_日本" / "bild_ø.jpg")
    assert read_image(path).shape == (32, 32, 3)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp"])
def test_header_size_reads_dimensions_without_decoding(
    tmp_path: Path, write_image: ImageWriter, suffix: str
) -> None:
    path = write_image(tmp_path / f"image{suffix}", 24, 40)
    assert header_size(path.read_bytes()) == (40, 24)


def _png_claiming(width: int, height: int) -> bytes:
    """A structurally whole PNG whose header claims a huge size (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def test_oversized_image_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(50_000, 50_000))
    with pytest.raises(DataError, match="2,500,000,000 pixels") as caught:
        read_image(bomb)
    assert caught.value.where == str(bomb)
    assert "max_pixels" in (caught.value.hint or "")


def test_image_over_a_small_max_pixels_is_refused(tmp_path: Path, write_image: ImageWriter) -> None:
    path = write_image(tmp_path / "big.jpg", 64, 64)
    with pytest.raises(DataError, match="over the limit of 1,000"):
        read_image(path, max_pixels=1000)
    assert read_image(path, max_pixels=64 * 64).shape == (64, 64, 3)


def test_decode_error_messages_say_what_and_where() -> None:
    with pytest.raises(DataError, match="empty file") as caught:
        decode_image(b"", where="x.jpg")
    assert caught.value.where == "x.jpg"
    with pytest.raises(DataError, match="text/markup"):
        decode_image(b"<!DOCTYPE html><html>Not found</html>", where="x.jpg")
    with pytest.raises(DataError, match="plain text"):
        decode_image(b"hello, I am a text file", where="x.jpg")


def test_truncated_files_are_refused(tmp_path: Path) -> None:
    data = write_image_file(tmp_path / "a.jpg", synthetic_image(64, 64)).read_bytes()
    for cut in (len(data) - 2, len(data) - 50, len(data) // 2, 40):
        with pytest.raises(DataError, match="truncated"):
            decode_image(data[:cut])
    png = write_image_file(tmp_path / "a.png", synthetic_image(64, 64)).read_bytes()
    with pytest.raises(DataError, match="truncated PNG"):
        decode_image(png[:-20])


def test_trailing_bytes_after_the_end_marker_are_tolerated(tmp_path: Path) -> None:
    data = write_image_file(tmp_path / "a.jpg", synthetic_image(16, 16)).read_bytes()
    assert decode_image(data + b"\x00" * 32).shape == (16, 16, 3)


def test_missing_file_and_folder_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(DataError, match="folder"):
        read_image(tmp_path)


# ----------------------------------------------------------------------------- resizing


def _halves() -> np.ndarray:
    """20 tall, 40 wide: red left quarter, green middle half, blue right quarter."""
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :10] = (255, 0, 0)
    image[:, 10:30] = (0, 255, 0)
    image[:, 30:] = (0, 0, 255)
    return image


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "area", "cubic", "lanczos4"])
@pytest.mark.parametrize("mode", ["squash", "center_crop", "pad"])
def test_every_mode_gives_a_square_uint8_image(mode: str, interpolation: str) -> None:
    settings = ImageSettings(size=16, resize_mode=mode, interpolation=interpolation)  # type: ignore[arg-type]
    out = resize_image(_halves(), settings)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8 and out.flags.c_contiguous


def test_center_crop_keeps_the_middle() -> None:
    out = resize_image(
        _halves(), ImageSettings(size=20, resize_mode="center_crop", interpolation="nearest")
    )
    assert (out == (0, 255, 0)).all()


def test_squash_keeps_everything() -> None:
    out = resize_image(
        _halves(), ImageSettings(size=20, resize_mode="squash", interpolation="nearest")
    )
    assert out[10, 0].tolist() == [255, 0, 0] and out[10, 19].tolist() == [0, 0, 255]


def test_pad_keeps_aspect_and_fills_black() -> None:
    out = resize_image(
        _halves(), ImageSettings(size=40, resize_mode="pad", interpolation="nearest")
    )
    assert (out[:10] == 0).all() and (out[30:] == 0).all()
    assert out[20, 0].tolist() == [255, 0, 0] and out[20, 20].tolist() == [0, 255, 0]


def test_same_size_is_returned_untouched() -> None:
    image = synthetic_image(16, 16)
    assert np.array_equal(resize_image(image, ImageSettings(size=16)), image)


def test_load_image_decodes_and_resizes(tmp_path: Path, write_image: ImageWriter) -> None:
    path = write_image(tmp_path / "x.jpg", 30, 45)
    out = load_image(path, ImageSettings(size=20))
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
