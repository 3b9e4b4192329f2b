"""The generator run folder: what ``dermkit gan train`` writes and everyone else reads.

Layout (``gans/NAME/``)::

    gan.json              GanConfig + data source + split options + image settings
    split.csv             the lesion-grouped split of the whole dataset (all classes)
    training_images.csv   exactly the images the GAN trained on (absolute paths)
    checkpoints/last.npz  every variable, for --resume; state.json says which step
    generator.keras       the averaged (EMA) generator; generator.json: step, sha256
    log.csv / log.json    losses every log_every steps; losses.png
    kid.csv / kid.json    KID during training (if a feature extractor was available); kid.png
    samples/              per-class grids (real | generated): step_NNNNNN.png, latest.png
    quality.json / .md    written by ``dermkit gan evaluate``

``training_images.csv`` is what the ``gan_oversampling`` balancer checks against a
classifier run's training part: a generator that saw any image outside it is refused.
This module imports neither TensorFlow nor OpenCV.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from dermkit import atomic
from dermkit.errors import ConfigError, DataError
from dermkit.gan.config import GanConfig

GAN_FILE = "gan.json"
SPLIT_FILE = "split.csv"
TRAINING_IMAGES = "training_images.csv"
CHECKPOINT = Path("checkpoints") / "last.npz"
STATE = "state.json"
GENERATOR = "generator.keras"
GENERATOR_INFO = "generator.json"
SAMPLES = "samples"
FORMAT_VERSION = 1

TRAINING_IMAGE_COLUMNS: tuple[str, ...] = ("path", "class", "group")


@attrs.frozen(slots=True)
class TrainingImage:
    """One image the GAN trained on: absolute path, class name, lesion id."""

    path: str
    class_name: str
    group: str


def image_key(path: str | os.PathLike[str]) -> str:
    """How images are compared across runs: the real, absolute path."""
    return os.path.realpath(os.fspath(path))


def write_training_images(folder: Path, images: Sequence[TrainingImage]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(TRAINING_IMAGE_COLUMNS)
            for image in images:
                writer.writerow((image.path, image.class_name, image.group))

    atomic.write_with(folder / TRAINING_IMAGES, write)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@attrs.frozen
class GanRun:
    """A generator run folder, opened for reading."""

    folder: Path
    config: GanConfig
    data: dict[str, Any]
    """``{"path": ..., "format": ...}``: where the images came from."""
    split: dict[str, Any]
    """``{"val": ..., "test": ..., "seed": ...}``: the split options, as ``dermkit train``'s."""
    image: dict[str, Any]
    """The :class:`~dermkit.data.images.ImageSettings` the images were loaded with."""

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def source(self) -> str:
        """What synthetic records name as their source: the run folder's real path."""
        return image_key(self.folder)

    @classmethod
    def open(cls, folder: str | Path) -> GanRun:
        """Read ``gan.json``; a :class:`ConfigError` if ``folder`` is not a generator run."""
        root = Path(folder)
        path = root / GAN_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                "not a generator run (no gan.json)",
                where=str(root),
                hint="pass a folder written by `dermkit gan train`",
            ) from None
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read gan.json: {error}", where=str(path)) from None
        try:
            return cls(
                folder=root,
                config=GanConfig.from_config(data["config"]),
                data=dict(data["data"]),
                split=dict(data["split"]),
                image=dict(data["image"]),
            )
        except (KeyError, TypeError) as error:
            raise ConfigError(
                f"gan.json lacks {error}", where=str(path), hint="was it edited by hand?"
            ) from None

    def write(self) -> None:
        atomic.write_json(
            self.folder / GAN_FILE,
            {
                "format_version": FORMAT_VERSION,
                "config": self.config.to_config(),
                "data": self.data,
                "split": self.split,
                "image": self.image,
            },
        )

    def training_images(self) -> list[TrainingImage]:
        """The images the generator trained on, from ``training_images.csv``."""
        path = self.folder / TRAINING_IMAGES
        try:
            handle = path.open(newline="", encoding="utf-8")
        except OSError as error:
            raise DataError(
                f"cannot read the generator's training images: {error.strerror or error}",
                where=str(path),
                hint="this generator run is incomplete; train it again",
            ) from None
        with handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != TRAINING_IMAGE_COLUMNS:
                raise DataError(
                    f"expected columns {', '.join(TRAINING_IMAGE_COLUMNS)}",
                    where=str(path),
                )
            return [TrainingImage(row["path"], row["class"], row["group"]) for row in reader]

    def generator_info(self) -> dict[str, Any]:
        """``{"step", "sha256", "finished"}`` of the saved generator, or a DataError."""
        path = self.folder / GENERATOR_INFO
        try:
            info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(
                "this generator run has no saved generator yet",
                where=str(self.folder),
                hint="let `dermkit gan train` reach its first checkpoint (or finish)",
            ) from None
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"cannot read generator.json: {error}", where=str(path)) from None
        return info
