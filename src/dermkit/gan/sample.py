"""Sampling a trained generator: deterministic images, PNG files and a manifest.

Image ``i`` of class ``c`` with seed ``s`` always comes from the latent vector drawn by
``numpy.random.default_rng([s, c, i])``, and the generator runs in inference mode (its
BatchNorm uses the saved statistics), so an image never depends on how many others are
drawn with it or in which batch. That makes samples reproducible and cacheable: asking
for 500 images after 300 reuses the first 300.

The manifest (``manifest.csv`` in the output folder) marks every file as synthetic and
names the generator run, its step and the SHA-256 of its ``generator.keras``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit import atomic
from dermkit.core import Record
from dermkit.errors import ConfigError, DataError
from dermkit.gan.run import GENERATOR, GanRun
from dermkit.gan.step import to_uint8

if TYPE_CHECKING:  # pragma: no cover
    import keras

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS: tuple[str, ...] = (
    "path",
    "class",
    "synthetic",
    "synthetic_source",
    "generator_step",
    "generator_sha256",
    "seed",
    "index",
)
"""``path`` is relative to the manifest's folder; ``synthetic`` is always ``1``."""


def latents(seed: int, label: int, start: int, count: int, z_dim: int) -> np.ndarray:
    """The latent vectors of images ``start .. start + count - 1`` of class ``label``."""
    return (
        np.stack(
            [
                np.random.default_rng([seed, label, index]).standard_normal(z_dim, dtype=np.float32)
                for index in range(start, start + count)
            ]
        )
        if count
        else np.zeros((0, z_dim), dtype=np.float32)
    )


def generate_images(
    generator: keras.Model, labels: np.ndarray, z: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """uint8 images for ``(labels, z)``, the generator in inference mode."""
    size = int(generator.output_shape[1])
    if len(z) == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    parts = []
    for i in range(0, len(z), batch_size):
        batch = generator(
            [z[i : i + batch_size], labels[i : i + batch_size].astype(np.int32)], training=False
        )
        parts.append(to_uint8(batch))
    return np.concatenate(parts)


def generate_class(
    generator: keras.Model, label: int, count: int, seed: int, z_dim: int, start: int = 0
) -> np.ndarray:
    z = latents(seed, label, start, count, z_dim)
    return generate_images(generator, np.full(count, label, dtype=np.int32), z)


@attrs.frozen
class LoadedGenerator:
    """A generator run with its saved (averaged) generator loaded."""

    run: GanRun
    model: Any
    step: int
    sha256: str

    def label(self, class_name: str) -> int:
        classes = self.run.config.classes
        if class_name not in classes:
            raise ConfigError(
                f"generator {self.run.name} does not know class {class_name!r}",
                where="--class",
                hint=f"it was trained on {', '.join(classes)}",
            )
        return classes.index(class_name)

    def images(self, class_name: str, count: int, seed: int, start: int = 0) -> np.ndarray:
        return generate_class(
            self.model, self.label(class_name), count, seed, self.run.config.z_dim, start
        )


def open_generator(folder: str | Path) -> LoadedGenerator:
    from dermkit.gan.networks import load_generator

    run = GanRun.open(folder)
    info = run.generator_info()
    model = load_generator(run.folder / GENERATOR)
    return LoadedGenerator(run, model, int(info["step"]), str(info["sha256"]))


def file_name(class_name: str, seed: int, index: int) -> str:
    return f"{class_name}_s{seed}_{index:05d}.png"


def write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise DataError("OpenCV could not encode a PNG", where=str(path))

    def write(tmp: Path) -> None:
        tmp.write_bytes(encoded.tobytes())

    atomic.write_with(path, write)


def read_manifest(folder: Path) -> dict[str, dict[str, str]]:
    """Rows of ``folder/manifest.csv`` by ``path``; empty if there is none."""
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
            raise DataError(
                "this is not a dermkit synthetic-image manifest",
                where=str(path),
                hint="sample into an empty folder, or one written by `dermkit gan sample`",
            )
        return {row["path"]: row for row in reader}


def _write_manifest(folder: Path, rows: dict[str, dict[str, str]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(MANIFEST_COLUMNS))
            writer.writeheader()
            for key in sorted(rows):
                writer.writerow(rows[key])

    atomic.write_with(folder / MANIFEST, write)


def write_samples(
    generator: LoadedGenerator,
    class_name: str,
    count: int,
    out_dir: str | Path,
    *,
    seed: int = 0,
    batch_size: int = 64,
) -> list[Path]:
    """Write images ``0 .. count - 1`` of ``class_name`` as PNGs; return their paths.

    A file already listed in the manifest as made by this very generator (same SHA-256)
    with this seed is reused, not drawn again. The manifest is updated atomically after
    every batch, so an interrupted call keeps what it wrote.
    """
    if count < 0:
        raise ConfigError(f"cannot sample {count} images", where="--n")
    label = generator.label(class_name)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(folder)
    names = [file_name(class_name, seed, i) for i in range(count)]
    missing = [
        i
        for i, name in enumerate(names)
        if rows.get(name, {}).get("generator_sha256") != generator.sha256
        or not (folder / name).is_file()
    ]
    for start in range(0, len(missing), batch_size):
        chunk = missing[start : start + batch_size]
        z = np.stack([latents(seed, label, i, 1, generator.run.config.z_dim)[0] for i in chunk])
        images = generate_images(generator.model, np.full(len(chunk), label), z, batch_size)
        for index, image in zip(chunk, images, strict=True):
            write_png(folder / names[index], image)
            rows[names[index]] = {
                "path": names[index],
                "class": class_name,
                "synthetic": "1",
                "synthetic_source": generator.run.source,
                "generator_step": str(generator.step),
                "generator_sha256": generator.sha256,
                "seed": str(seed),
                "index": str(index),
            }
        _write_manifest(folder, rows)
    if not missing and not (folder / MANIFEST).is_file():
        _write_manifest(folder, rows)
    return [folder / name for name in names]


def synthetic_records(
    generator: LoadedGenerator,
    paths: Sequence[Path],
    class_name: str,
    label: int,
    seed: int,
) -> list[Record]:
    """Records for sampled files, flagged synthetic with the generator run as source.

    Each file is its own group, named after the generator run, so it can never share a
    group with a real lesion.
    """
    return [
        Record(
            path=os.fspath(path),
            label=label,
            group=f"synthetic:{generator.run.name}:{class_name}:{seed}:{index}",
            metadata={"generator_step": generator.step, "seed": seed, "index": index},
            synthetic_source=generator.run.source,
        )
        for index, path in enumerate(paths)
    ]
