"""A corpus of bad inputs, generated here: each is reported with its reason, nothing is lost.

For every reader: each bad image or row becomes exactly one problem that names it and
says what was wrong, every good image still loads, ``found == records + problems``,
and ``strict=True`` stops with a :class:`DataError` at the first bad input instead.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import ImageWriter, synthetic_image, write_ham10000, write_image_file
from dermkit.core import LoadedDataset
from dermkit.data.checks import is_ignored
from dermkit.data.csv_manifest import CSVManifest
from dermkit.data.folder import ImageFolder
from dermkit.data.ham10000 import HAM10000
from dermkit.data.images import ImageSettings, load_image
from dermkit.data.isic import ISICGroundTruth
from dermkit.errors import DataError


def _bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 9))
        + chunk(b"IEND", b"")
    )


def _reasons_by_file_name(loaded: LoadedDataset) -> dict[str, str]:
    return {Path(p.source).name: p.reason for p in loaded.problems}


def _assert_accounted(loaded: LoadedDataset) -> None:
    assert loaded.found == len(loaded.records) + len(loaded.problems)
    for problem in loaded.problems:
        assert problem.source and problem.reason and problem.hint
    settings = ImageSettings(size=16)
    for record in loaded.records:  # every good image still loads
        assert load_image(record.path, settings).shape == (16, 16, 3)


@pytest.fixture
def bad_folder(tmp_path: Path, write_image: ImageWriter) -> Path:
    root = tmp_path / "bad"
    # good ones, in every awkward-but-valid flavour
    write_image(root / "a" / "good.jpg")
    write_image(root / "a" / "gray.png", channels=1)
    write_image(root / "a" / "rgba.png", channels=4)
    write_image(root / "a" / "deep.png", dtype=np.uint16)
    write_image(root / "b" / "good.png", seed=1)
    write_image(root / "b" / "nested" / "deeper.jpg", seed=2)
    # bad ones
    (root / "a" / "empty.jpg").write_bytes(b"")
    jpeg = write_image_file(root / "b" / "whole.jpg", synthetic_image(64, 64)).read_bytes()
    (root / "b" / "whole.jpg").unlink()
    (root / "b" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])
    png = write_image_file(root / "b" / "whole.png", synthetic_image(64, 64)).read_bytes()
    (root / "b" / "whole.png").unlink()
    (root / "b" / "truncated.png").write_bytes(png[: len(png) - 30])
    (root / "b" / "text.jpg").write_text("this is not a picture\n")
    (root / "b" / "bomb.png").write_bytes(_bomb_png(40_000, 40_000))
    # not data: reported as ignored, never a strict error
    (root / "b" / "notes.txt").write_text("scanned on a Tuesday\n")
    (root / "b" / ".DS_Store").write_bytes(b"\0\0")
    (root / "c").mkdir()  # an empty class
    (root / "README.md").write_text("files at the top level are not in any class\n")
    return root


IGNORED = {"notes.txt", ".DS_Store", "README.md"}


def test_bad_folder_reports_every_bad_file_and_keeps_every_good_one(bad_folder: Path) -> None:
    loaded = ImageFolder(bad_folder).load()
    assert loaded.classes.names == ("a", "b", "c")
    assert sorted(r.path.name for r in loaded.records) == [
        "deep.png",
        "deeper.jpg",
        "good.jpg",
        "good.png",
        "gray.png",
        "rgba.png",
    ]
    reasons = _reasons_by_file_name(loaded)
    assert "empty file" in reasons["empty.jpg"]
    assert "truncated JPEG" in reasons["truncated.jpg"]
    assert "truncated PNG" in reasons["truncated.png"]
    assert "not an image" in reasons["text.jpg"]
    assert "over the limit" in reasons["bomb.png"]
    assert "not an image file" in reasons["notes.txt"]
    assert "hidden file" in reasons[".DS_Store"]
    assert "not in a class folder" in reasons["README.md"]
    assert "class 'c' has no usable images" in reasons["c"]
    assert len(loaded.problems) == 9
    assert {Path(p.source).name for p in loaded.problems if is_ignored(p)} == IGNORED
    _assert_accounted(loaded)


def test_bad_folder_in_strict_mode_raises_at_the_first(bad_folder: Path) -> None:
    # problems seen while listing come first, then those found by decoding, in file
    # order; files that are not data (notes.txt, .DS_Store, README.md) never raise
    (bad_folder / "b" / "stray.jpg").symlink_to(bad_folder / "b" / "gone.jpg")
    with pytest.raises(DataError) as caught:
        ImageFolder(bad_folder).load(strict=True)
    assert caught.value.where == str(bad_folder / "b" / "stray.jpg")
    assert "broken symbolic link" in caught.value.message
    (bad_folder / "b" / "stray.jpg").unlink()
    with pytest.raises(DataError) as caught:
        ImageFolder(bad_folder).load(strict=True)
    assert caught.value.where == str(bad_folder / "a" / "empty.jpg")
    assert "empty file" in caught.value.message and caught.value.hint


def test_without_verify_only_structural_problems_are_found(bad_folder: Path) -> None:
    loaded = ImageFolder(bad_folder, verify=False).load()
    assert {Path(p.source).name for p in loaded.problems} == {*IGNORED, "c"}
    assert loaded.found == len(loaded.records) + len(loaded.problems)


def test_unlisted_folder_is_reported_when_classes_are_given(
    tmp_path: Path, make_image_folder: ImageWriter
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 2, "nv": 2, "other": 1})
    loaded = ImageFolder(root, classes=("nv", "mel")).load()
    assert loaded.classes.names == ("nv", "mel")
    assert [p.reason for p in loaded.problems] == [
        "folder 'other' is not one of the classes (nv, mel)"
    ]
    _assert_accounted(loaded)


def test_missing_root_is_a_hard_error(tmp_path: Path) -> None:
    for dataset in (
        ImageFolder(tmp_path / "nowhere"),
        HAM10000(tmp_path / "nowhere"),
        CSVManifest(tmp_path / "nowhere.csv", image_column="f", label_column="y"),
        ISICGroundTruth(tmp_path / "nowhere.csv", image_dir=tmp_path),
    ):
        with pytest.raises(DataError, match="not found") as caught:
            dataset.load()
        assert "nowhere" in (caught.value.where or "")


# ----------------------------------------------------------------------------- CSV manifest


@pytest.fixture
def bad_manifest(tmp_path: Path, write_image: ImageWriter) -> Path:
    for i in range(4):
        write_image(tmp_path / "img" / f"p{i}.jpg", seed=i)
    (tmp_path / "img" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (tmp_path / "manifest.csv").write_text(
        "file,diagnosis,lesion\n"
        "img/p0.jpg,mel,L0\n"  # line 2: good
        "img/p1.jpg,nv,L1\n"  # line 3: good
        "img/p2.jpg,melanoma,L2\n"  # line 4: unknown label
        "img/missing.jpg,nv,L3\n"  # line 5: image missing
        "img/p0.jpg,mel,L0\n"  # line 6: duplicate
        "img/p3,nv,\n"  # line 7: no group
        "img/broken.jpg,nv,L9\n"  # line 8: corrupt image
        "img/p3,,L4\n",  # line 9: no label
        encoding="utf-8",
    )
    return tmp_path / "manifest.csv"


def test_bad_manifest_rows_are_reported_by_row(bad_manifest: Path) -> None:
    dataset = CSVManifest(
        bad_manifest, "file", "diagnosis", group_column="lesion", classes=("mel", "nv")
    )
    loaded = dataset.load()
    assert [r.path.name for r in loaded.records] == ["p0.jpg", "p1.jpg"]
    reasons = {p.source: p.reason for p in loaded.problems}
    csv = str(bad_manifest)
    assert reasons[f"{csv}:row 4"] == "unknown label 'melanoma'"
    assert "not found" in reasons[f"{csv}:row 5"]
    assert "listed twice (first on row 2)" in reasons[f"{csv}:row 6"]
    assert "no group" in reasons[f"{csv}:row 7"]
    assert "no label" in reasons[f"{csv}:row 9"]
    assert "corrupt JPEG" in reasons[str(bad_manifest.parent / "img" / "broken.jpg")]
    assert loaded.found == 8
    _assert_accounted(loaded)


def test_bad_manifest_strict_names_the_row(bad_manifest: Path) -> None:
    dataset = CSVManifest(
        bad_manifest, "file", "diagnosis", group_column="lesion", classes=("mel", "nv")
    )
    with pytest.raises(DataError, match="unknown label 'melanoma'") as caught:
        dataset.load(strict=True)
    assert caught.value.where == f"{bad_manifest}:row 4"


def test_missing_required_column_is_a_hard_error_naming_both_sets(bad_manifest: Path) -> None:
    with pytest.raises(DataError) as caught:
        CSVManifest(bad_manifest, "file", "label").load()
    error = caught.value
    assert error.where == str(bad_manifest)
    assert "label" in error.message
    assert "it has columns file, diagnosis, lesion" in (error.hint or "")
    assert "it needs file, label" in (error.hint or "")


def test_empty_csv_is_a_hard_error(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        CSVManifest(tmp_path / "empty.csv", "file", "label").load()


# ----------------------------------------------------------------------------- HAM10000


def test_bad_ham10000_rows_are_reported(tmp_path: Path) -> None:
    rows = [
        {"lesion_id": "HAM_1", "image_id": "ISIC_1", "dx": "mel"},
        {"lesion_id": "HAM_2", "image_id": "ISIC_2", "dx": "nv"},
        {"lesion_id": "HAM_3", "image_id": "ISIC_3", "dx": "melanoma"},
        {"lesion_id": "HAM_1", "image_id": "ISIC_1", "dx": "mel"},
        {"lesion_id": "", "image_id": "ISIC_5", "dx": "nv"},
        {"lesion_id": "HAM_6", "image_id": "ISIC_6", "dx": "bcc"},
    ]
    root = write_ham10000(tmp_path / "ham", rows)
    (root / "images" / "ISIC_6.jpg").unlink()
    loaded = HAM10000(root).load()
    assert [r.metadata["image_id"] for r in loaded.records] == ["ISIC_1", "ISIC_2"]
    csv = root / "HAM10000_metadata.csv"
    reasons = {p.source: p.reason for p in loaded.problems}
    assert "unknown diagnosis 'melanoma'" in reasons[f"{csv}:row 4"]
    assert "listed twice (first on row 2)" in reasons[f"{csv}:row 5"]
    assert "no lesion_id" in reasons[f"{csv}:row 6"]
    assert "not found in images/" in reasons[f"{csv}:row 7"]
    # five of the seven HAM10000 classes have no images here: each is reported once
    empty = [p for p in loaded.problems if "has no usable images" in p.reason]
    assert len(empty) == 5 and all(p.source == str(csv) for p in empty)
    _assert_accounted(loaded)


def test_ham10000_without_metadata_or_images_is_a_hard_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"HAM10000_metadata\.csv"):
        HAM10000(tmp_path).load()
    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\n")
    (tmp_path / "images").rmdir()
    with pytest.raises(DataError, match="no image folder"):
        HAM10000(tmp_path).load()


def test_ham10000_missing_column_is_a_hard_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,diagnosis\nA,B,nv\n")
    with pytest.raises(DataError, match="lacks required column") as caught:
        HAM10000(tmp_path).load()
    assert "it has columns lesion_id, image_id, diagnosis" in (caught.value.hint or "")


# ----------------------------------------------------------------------------- ISIC


def test_bad_isic_rows_are_reported(tmp_path: Path, write_image: ImageWriter) -> None:
    for i in range(4):
        write_image(tmp_path / "in" / f"ISIC_{i}.jpg", seed=i)
    (tmp_path / "gt.csv").write_text(
        "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\n"
        "ISIC_0,1.0,0.0,0.0,0.0,0.0,0.0,0.0\n"  # good
        "ISIC_1,1.0,1.0,0.0,0.0,0.0,0.0,0.0\n"  # two diagnoses
        "ISIC_2,0.0,0.0,0.0,0.0,0.0,0.0,0.0\n"  # none
        "ISIC_3,0.5,0.5,0.0,0.0,0.0,0.0,0.0\n"  # soft label
        "ISIC_0,1.0,0.0,0.0,0.0,0.0,0.0,0.0\n"  # duplicate
        "ISIC_9,0.0,1.0,0.0,0.0,0.0,0.0,0.0\n"  # image missing
    )
    loaded = ISICGroundTruth(tmp_path / "gt.csv", tmp_path / "in", classes=("mel", "nv")).load()
    assert [r.group for r in loaded.records] == ["ISIC_0"]
    reasons = {p.source.rsplit(":", 1)[-1]: p.reason for p in loaded.problems}
    assert "found 2 (MEL, NV)" in reasons["row 3"]
    assert "found 0" in reasons["row 4"]
    assert "neither 0 nor 1" in reasons["row 5"]
    assert "listed twice" in reasons["row 6"]
    assert "not found" in reasons["row 7"]
    assert "class 'nv' has no usable images" in reasons[str(tmp_path / "gt.csv").rsplit(":", 1)[-1]]
    _assert_accounted(loaded)
