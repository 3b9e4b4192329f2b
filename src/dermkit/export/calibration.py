"""Representative images for int8 quantisation: the run's own training images.

The int8 converter measures the range of every activation on sample inputs. Those
must look like what the model will see, resized exactly as in training; the run's
training part (its ``split.csv``) is the one set that is certainly of the right kind
and never part of a later evaluation. Images are drawn at random (seeded) across the
whole training part and loaded through the run's own :class:`ImageLoader`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dermkit.core import Record
from dermkit.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.data.loader import ImageLoader

SPLIT_FILE = "split.csv"
DEFAULT_COUNT = 200
"""A few hundred images is what TensorFlow's guide suggests; more barely moves the ranges."""


def run_part(run_dir: Path, part: str) -> tuple[Record, ...]:
    """The records of one part (``train``, ``val``, ``test``) of a run's ``split.csv``."""
    from dermkit.data.splits import read_split_manifest

    manifest = run_dir / SPLIT_FILE
    if not manifest.is_file():
        raise DataError(
            f"no {SPLIT_FILE}: the run's {part} images are unknown",
            where=str(run_dir),
            hint="export from the run folder `dermkit train` wrote (int8 calibrates on its "
            "training images), or use --quantize float16",
        )
    records: tuple[Record, ...] = getattr(read_split_manifest(manifest), part)
    return records


def sample(records: Sequence[Record], count: int, seed: int = 0) -> list[Record]:
    """Up to ``count`` records drawn without replacement, in a seeded random order."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    return [records[i] for i in order[: max(0, count)]]


def load_images(
    records: Sequence[Record], loader: ImageLoader, *, wanted: int
) -> tuple[np.ndarray, int]:
    """``(images (n, size, size, 3) uint8, unreadable count)``: up to ``wanted`` images
    from ``records`` in order, skipping files that are gone or damaged."""
    images: list[np.ndarray] = []
    unreadable = 0
    first_error: DataError | None = None
    for record in records:
        if len(images) >= wanted:
            break
        try:
            images.append(loader(Path(record.path)))
        except DataError as error:
            unreadable += 1
            first_error = first_error or error
    if not images:
        where = first_error.where if first_error is not None else None
        raise DataError(
            "none of the run's images could be read",
            where=where,
            hint="run the export where the training images are (split.csv names them), "
            "or use --quantize float16",
        )
    return np.stack(images), unreadable


def representative_dataset(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    """What ``TFLiteConverter.representative_dataset`` wants: one float32 image at a time."""
    for image in images:
        yield [image[np.newaxis].astype(np.float32)]
