"""The HAM10000 release as published: a metadata CSV plus folders of JPEGs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import attrs

from dermkit.core import ClassIndex, LoadedDataset, MetadataValue, Record
from dermkit.data.common import (
    ProblemLog,
    finish,
    read_csv,
    report_unlisted,
    require_dir,
    scan_image_folders,
    to_str,
)
from dermkit.errors import DataError

METADATA_NAMES: tuple[str, ...] = ("HAM10000_metadata.csv", "HAM10000_metadata")
"""The metadata file's name: with ``.csv`` (Kaggle) or without (some Dataverse downloads)."""

IMAGE_FOLDERS: tuple[str, ...] = (
    "images",
    "HAM10000_images_part_1",
    "HAM10000_images_part_2",
    "HAM10000_images",
)
"""Where the JPEGs may be, matched case-insensitively (Kaggle's copy is lower case)."""

REQUIRED_COLUMNS: tuple[str, ...] = ("lesion_id", "image_id", "dx")
METADATA_COLUMNS: tuple[str, ...] = ("age", "sex", "localization")


def find_metadata(root: Path) -> Path | None:
    for name in METADATA_NAMES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def _image_folders(root: Path) -> list[Path]:
    wanted = {name.lower(): rank for rank, name in enumerate(IMAGE_FOLDERS)}
    with os.scandir(root) as entries:
        found = [e.name for e in entries if e.is_dir() and e.name.lower() in wanted]
    return [root / name for name in sorted(found, key=lambda n: (wanted[n.lower()], n))]


def _age(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value else None  # NaN -> unknown


@attrs.frozen(slots=True)
class HAM10000:
    """HAM10000: ``HAM10000_metadata.csv`` plus ``images/`` (or the official two parts).

    Labels always use :meth:`ClassIndex.ham10000` (akiec, bcc, bkl, df, mel, nv, vasc:
    the study's label order), so models trained on any subset agree on label numbers.
    The group is ``lesion_id``: HAM10000 has several images of many lesions, and a
    split that puts one lesion on both sides inflates every score.

    ``age``, ``sex`` and ``localization`` are kept in each record's metadata (age as a
    float, ``None`` when missing). ``dx_type`` (how the diagnosis was confirmed:
    histopathology, follow-up, consensus, confocal) is deliberately left out: it
    correlates strongly with the diagnosis (every image confirmed by follow-up is a
    ``nv``, every ``mel`` was confirmed by histopathology), so a model given it would
    learn the clinic's paperwork instead of the lesion, and it is unknown for a new
    patient.

    Every file in the image folders is used or reported: images no metadata row names
    (a cut-off CSV) and anything else there are reported as ignored. Other files
    beside the metadata (a README, the segmentation masks of the full download) are
    not the reader's business and are not looked at.
    """

    name: ClassVar[str] = "ham10000"

    root: str = attrs.field(converter=to_str)
    verify: bool = True

    def load(self, *, strict: bool = False) -> LoadedDataset:
        root = require_dir(self.root, "HAM10000 folder")
        metadata = find_metadata(root)
        if metadata is None:
            raise DataError(
                "no HAM10000_metadata.csv in this folder",
                where=str(root),
                hint="point at the folder that holds HAM10000_metadata.csv and the image folders",
            )
        table = read_csv(metadata, REQUIRED_COLUMNS, what="HAM10000 metadata")
        folders = _image_folders(root)
        if not folders:
            raise DataError(
                "no image folder next to the metadata",
                where=str(root),
                hint=f"expected {IMAGE_FOLDERS[0]}/ or {IMAGE_FOLDERS[1]}/ + {IMAGE_FOLDERS[2]}/",
            )
        where_images = " or ".join(f"{f.name}/" for f in folders)
        classes = ClassIndex.ham10000()
        log = ProblemLog(strict)
        images, reported = scan_image_folders(folders, log, root)
        used: list[Path] = []
        records: list[Record] = []
        first_row: dict[str, int] = {}
        kept = {column for column in METADATA_COLUMNS if table.has(column)}
        for row in table.rows:
            source = table.source(row)
            where_row = f"row {row.line}"
            image_id, lesion_id, dx = (
                row.get("image_id"),
                row.get("lesion_id"),
                row.get("dx").lower(),
            )
            if not image_id:
                log.add(
                    source,
                    "no image_id",
                    "fill in the image id or delete the row",
                    kind="rows without an image_id",
                    item=where_row,
                )
                continue
            if image_id in first_row:
                log.add(
                    source,
                    f"image {image_id} is listed twice (first on row {first_row[image_id]})",
                    "delete the duplicate row",
                    kind="rows listing an image a second time",
                    item=f"{where_row} ({image_id})",
                )
                continue
            first_row[image_id] = row.line
            path = images.get(image_id)
            if path is not None:
                used.append(path)  # named by a row, even a bad one: not "unlisted"
            if dx not in classes:
                log.add(
                    source,
                    f"unknown diagnosis {dx!r}" if dx else "no diagnosis (dx is empty)",
                    f"HAM10000 diagnoses are {', '.join(classes)}; fix or delete the row",
                    kind="rows with an unknown or empty diagnosis",
                    item=f"{where_row} ({dx!r})",
                )
                continue
            if not lesion_id:
                log.add(
                    source,
                    f"image {image_id} has no lesion_id",
                    "fill it in: without it, images of one lesion could land on both sides "
                    "of a split",
                    kind="rows without a lesion_id",
                    item=image_id,
                )
                continue
            if path is None:
                log.add(
                    source,
                    f"image file for {image_id} not found in {where_images}",
                    "add the image, or delete the row if the image is gone for good",
                    kind=f"images missing from {where_images}",
                    item=image_id,
                )
                continue
            info: dict[str, MetadataValue] = {"image_id": image_id}
            if "age" in kept:
                info["age"] = _age(row.get("age"))
            for column in ("sex", "localization"):
                if column in kept:
                    info[column] = row.get(column) or None
            records.append(
                Record(path=path, label=classes.index(dx), group=lesion_id, metadata=info)
            )
        unlisted = report_unlisted(log, images.values(), used, root, listed_in=metadata.name)
        return finish(
            records=records,
            classes=classes,
            log=log,
            found=len(table.rows) + reported + unlisted,
            source=str(root),
            verify=self.verify,
            class_sources={name: str(metadata) for name in classes},
        )


def looks_like_ham10000(path: Path) -> bool:
    """A folder holding the HAM10000 metadata file (used by format auto-detection)."""
    return path.is_dir() and find_metadata(path) is not None
