"""Shared fixtures: small synthetic images and datasets written into ``tmp_path``.

Every test gets its own empty image cache (``DERMKIT_CACHE``), so no test reads
another's cache or writes into the user's home folder.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dermkit.core import HAM10000_CLASSES

ImageWriter = Callable[..., Path]


def synthetic_image(
    height: int = 32,
    width: int = 32,
    *,
    channels: int = 3,
    dtype: Any = np.uint8,
    seed: int = 0,
) -> np.ndarray:
    """A smooth, seed-dependent test picture (RGB order; BGR conversion is the writer's job).

    Smooth rather than noise so JPEG round-trips stay close to the original.
    """
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(0.2, 0.8, size=channels)
    slope = rng.uniform(-0.3, 0.3, size=(2, channels))
    planes = [
        np.clip(base[c] + slope[0, c] * y / max(height, 1) + slope[1, c] * x / max(width, 1), 0, 1)
        for c in range(channels)
    ]
    image = np.stack(planes, axis=-1) * top
    image = image.round().astype(dtype)
    return image[:, :, 0] if channels == 1 else image


def write_image_file(path: str | Path, image: np.ndarray, *, quality: int = 95) -> Path:
    """Encode an RGB(A)/gray array by the path's suffix and write it (unicode paths work)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(path.suffix, array, params)
    assert ok, f"OpenCV could not encode {path.suffix}"
    path.write_bytes(encoded.tobytes())
    return path


@pytest.fixture
def write_image() -> ImageWriter:
    """``write_image(path, height=32, width=32, channels=3, dtype=np.uint8, seed=0) -> Path``.

    Writes a small synthetic image in the format its suffix names (.png, .jpg, .bmp,
    .webp, .tif...). ``channels`` 1 writes grayscale, 4 RGBA; ``dtype=np.uint16`` a
    16-bit PNG/TIFF.
    """

    def write(
        path: str | Path,
        height: int = 32,
        width: int = 32,
        *,
        channels: int = 3,
        dtype: Any = np.uint8,
        seed: int = 0,
    ) -> Path:
        image = synthetic_image(height, width, channels=channels, dtype=dtype, seed=seed)
        return write_image_file(path, image)

    return write


@pytest.fixture
def make_image_folder(write_image: ImageWriter) -> Callable[..., Path]:
    """``make_image_folder(root, {"class": count, ...}, suffix=".png", size=32) -> root``."""

    def make(
        root: str | Path, counts: Mapping[str, int], *, suffix: str = ".png", size: int = 32
    ) -> Path:
        root = Path(root)
        seed = 0
        for name, count in counts.items():
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                write_image(root / name / f"{name}_{i:03d}{suffix}", size, size, seed=seed)
                seed += 1
        return root

    return make


def write_ham10000(
    root: str | Path,
    rows: Sequence[Mapping[str, str]],
    *,
    image_folder: str = "images",
    write_images: bool = True,
    size: int = 32,
) -> Path:
    """A HAM10000-shaped folder: ``HAM10000_metadata.csv`` plus one JPEG per row.

    ``rows`` are metadata rows (``lesion_id``, ``image_id``, ``dx``...; missing official
    columns are filled in). Images go into ``image_folder``.
    """
    root = Path(root)
    (root / image_folder).mkdir(parents=True, exist_ok=True)
    columns = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
    with open(root / "HAM10000_metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            full = {"dx_type": "histo", "age": "50.0", "sex": "male", "localization": "back"}
            full.update(row)
            writer.writerow(full)
    if write_images:
        for seed, row in enumerate(rows):
            image = synthetic_image(size, size, seed=seed)
            write_image_file(root / image_folder / f"{row['image_id']}.jpg", image)
    return root


@pytest.fixture
def tiny_ham10000(tmp_path: Path) -> Path:
    """A HAM10000-shaped dataset: 7 classes, 4 images each, two images per lesion."""
    rows = []
    for label, dx in enumerate(HAM10000_CLASSES):
        for i in range(4):
            rows.append(
                {
                    "lesion_id": f"HAM_{label:03d}{i // 2}",
                    "image_id": f"ISIC_{label:03d}{i}",
                    "dx": dx,
                    "age": str(30 + 5 * i),
                    "sex": "female" if i % 2 else "male",
                    "localization": "back",
                }
            )
    return write_ham10000(tmp_path / "ham", rows)


@pytest.fixture
def ham10000_path() -> Path:
    """The real HAM10000 working set named by ``DERMKIT_HAM10000``, or skip the test."""
    value = os.environ.get("DERMKIT_HAM10000")
    if not value:
        pytest.skip("set DERMKIT_HAM10000 to a HAM10000 folder to run tests on real images")
    path = Path(value)
    if not (path / "HAM10000_metadata.csv").is_file():
        pytest.skip(f"DERMKIT_HAM10000={value} holds no HAM10000_metadata.csv")
    return path


@pytest.fixture(autouse=True)
def _isolated_image_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    path = tmp_path_factory.mktemp("dermkit-cache")
    monkeypatch.setenv("DERMKIT_CACHE", str(path))
    return path


def tiny_lite0_experiment(
    data: Path, cache_dir: str, balancer: Sequence[Any], **training: Any
) -> Any:
    """A Lite0 experiment on 32 px synthetic images with a frozen prefix to cache.

    Random weights and 8 trainable layers: small enough to train an epoch in seconds,
    with a cut (``feature_cache``) for the tests of whatever must hold on both the
    cached and the pixel path (mixup, logit adjustment). ``training`` overrides the
    :class:`~dermkit.training.config.Training` options (1 epoch, batch 8, 1e-3).
    """
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment
    from dermkit.models.efficientnet_lite import EfficientNetLite0
    from dermkit.training.config import Training

    options = {"epochs": 1, "batch_size": 8, "verbose": 0, "learning_rate": 1e-3, **training}
    return Experiment(
        data=ImageFolder(data),
        split=GroupedStratifiedSplit(val=0.25, test=0.25, seed=0),
        model=EfficientNetLite0(weights=None, trainable_layers=8, dropout=0.2),
        balancer=list(balancer),
        training=Training(**options),
        image_size=32,
        cache_dir=cache_dir,
    )


TINY_RUN_SIZE = 64
"""The smallest input LFN takes is 64x64."""


def train_tiny_run(
    base: Path, *, rename: Mapping[str, str] | None = None, n_boot: int = 50
) -> Path:
    """A finished one-epoch LFN run on synthetic images: ``base/run``, data in ``base/data``.

    The tests of whatever reads a finished run (export, ensembles, the run commands)
    need one; training it costs seconds, so they share one per module through a
    module-scoped fixture. ``rename`` renames the synthetic class folders first (e.g. to
    HAM10000's class names).
    """
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.demo import make_demo_dataset
    from dermkit.evaluation.evaluator import StandardEvaluator
    from dermkit.experiment import Experiment
    from dermkit.models.lfn import LFN
    from dermkit.training.config import Training

    data = make_demo_dataset(base / "data", size=TINY_RUN_SIZE, scale=0.12, seed=5)
    for old, new in (rename or {}).items():
        (data / old).rename(data / new)
    Experiment(
        data=ImageFolder(data),
        split=GroupedStratifiedSplit(val=0.25, test=0.25, seed=0),
        model=LFN(dense=(16,)),
        training=Training(epochs=1, batch_size=8, verbose=0),
        evaluator=StandardEvaluator(n_boot=n_boot),
        image_size=TINY_RUN_SIZE,
        cache_dir="",
    ).run(base / "run")
    return base / "run"


def convert_int8(
    saved_model: Path, representative: Callable[[], Any], *, calibrate_only: bool
) -> bytes:
    """A SavedModel converted by TFLite's converter for int8 (float in and out), as
    dermkit's export configures it; ``calibrate_only`` stops at the calibrated float
    model that records each activation's range."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_calibrate_only = calibrate_only
    return bytes(converter.convert())
