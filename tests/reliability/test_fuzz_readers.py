"""Fuzzing every dataset reader: random columns and cells, encodings, a BOM, CRLF or CR line
ends, empty and duplicate rows, NaN labels, odd file names. Each load gives a dataset (with
its problems listed) or a DermkitError with a message; never another exception or a hang."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dermkit.core import LoadedDataset
from dermkit.data.csv_manifest import CSVManifest
from dermkit.data.folder import ImageFolder
from dermkit.data.ham10000 import HAM10000
from dermkit.data.isic import ISICGroundTruth
from dermkit.data.open import open_dataset

from .faults import survives

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


def _png() -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.full((8, 8, 3), 120, np.uint8))
    assert ok
    return bytes(data.tobytes())


FILES = {"a.png": _png(), "b.jpg": _png(), "ISIC_0000001.png": _png(), "bad.png": b"\x89PNG\r\n"}
IMAGE_IDS = ["a", "a.png", "b.jpg", "ISIC_0000001", "bad.png", "missing.png", "../a.png", "/etc"]
LABELS = ["mel", "nv", "bcc", "MEL", " nv ", "NaN", "nan", "", "1.0", "0.0", "1", "0", "ünï"]
COLUMNS = ["image", "image_id", "path", "label", "dx", "lesion_id", "group", "MEL", "NV", "BCC",
           "AKIEC", "BKL", "DF", "VASC", "age", "sex", "", "image", "x,y", 'q"uote']  # fmt: skip
CELL = st.one_of(
    st.sampled_from(IMAGE_IDS + LABELS + ["HAM_001", "50.0", "NaN", "-inf", '"', ",", "\t"]),
    st.text(max_size=8),
)


@st.composite
def csv_bytes(draw: Callable[..., Any], required: list[str]) -> bytes:
    columns = draw(st.lists(st.sampled_from(COLUMNS), max_size=6))
    if draw(st.booleans()):
        columns = [*required, *columns]
    width = max(1, len(columns))
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=width + 1), max_size=8))
    if rows and draw(st.booleans()):
        rows = rows + rows[:2]  # duplicate rows
    if draw(st.booleans()):
        rows.insert(draw(st.integers(0, len(rows))), [])  # an empty row
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(",".join(row) for row in [columns, *rows]) + draw(st.sampled_from(["", end]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # cut short
    return data


@contextmanager
def folder_with(csv: bytes | None = None, name: str = "data.csv") -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="dermkit-fuzz-"))
    try:
        for file_name, data in FILES.items():
            (root / file_name).write_bytes(data)
        if csv is not None:
            (root / name).write_bytes(csv)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _load(dataset: Callable[[], Any], strict: bool) -> None:
    result = survives(lambda: dataset().load(strict=strict))
    if isinstance(result, LoadedDataset):
        assert all(0 <= r.label < len(result.classes) for r in result.records)


@FUZZ
@given(csv_bytes(["image", "label"]), st.booleans(), st.booleans())
def test_csv_manifest(data: bytes, grouped: bool, strict: bool) -> None:
    with folder_with(data) as root:
        _load(
            lambda: CSVManifest(
                root / "data.csv", "image", "label", group_column="group" if grouped else None
            ),
            strict,
        )


@FUZZ
@given(csv_bytes(["lesion_id", "image_id", "dx"]), st.booleans())
def test_ham10000_metadata(data: bytes, strict: bool) -> None:
    with folder_with(data, "HAM10000_metadata.csv") as root:
        (root / "images").mkdir()
        for name, image in FILES.items():
            (root / "images" / name).write_bytes(image)
        _load(lambda: HAM10000(root), strict)


@FUZZ
@given(csv_bytes(["image", "MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]), st.booleans())
def test_isic_ground_truth(data: bytes, strict: bool) -> None:
    with folder_with(data, "gt.csv") as root:
        _load(lambda: ISICGroundTruth(root / "gt.csv", root), strict)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["mel", "nv", ".hidden", "ünï", "a b", "nv/sub"]),
            st.text(min_size=1, max_size=10).filter(lambda s: "/" not in s and "\0" not in s),
            st.sampled_from([*FILES.values(), b"", b"junk"]),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_image_folder(entries: list[tuple[str, str, bytes]], strict: bool) -> None:
    with folder_with() as root:
        data = root / "dataset"
        data.mkdir()
        for folder, name, content in entries:
            target = data / folder
            target.mkdir(parents=True, exist_ok=True)
            try:
                (target / name).write_bytes(content)
            except OSError:  # a name the file system refuses (too long, '.', '..')
                continue
        _load(lambda: ImageFolder(data), strict)


@FUZZ
@given(csv_bytes(["image", "label"]), st.sampled_from(["data.csv", "HAM10000_metadata.csv"]))
def test_format_detection(data: bytes, name: str) -> None:
    with folder_with(data, name) as root:
        survives(lambda: open_dataset(root))
        survives(lambda: open_dataset(root / name))
