"""The GAN's training images: the training part of a lesion-grouped split, nothing else.

The split is the very one ``dermkit train`` makes with the same ``--val``, ``--test``
and ``--seed`` (:class:`~dermkit.data.splits.GroupedStratifiedSplit` over *all*
classes), so a classifier run with those options has exactly this training part, and
the ``gan_oversampling`` balancer can prove it: it refuses a generator that trained on
any image outside the classifier run's training part. Pixels come through the same
loader and disk cache as the classifier's (:class:`~dermkit.data.loader.ImageLoader`),
at the GAN's image size, and are held in memory: a few hundred 64×64 images are a few
megabytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from dermkit.core import ClassIndex, LoadedDataset, Record, Split
from dermkit.errors import ConfigError, DataError
from dermkit.gan.run import TrainingImage, image_key


@attrs.frozen
class GanData:
    """Pixels and GAN labels of the training images, and where they came from."""

    images: np.ndarray
    """uint8 ``(n, s, s, 3)``."""
    labels: np.ndarray
    """int32 ``(n,)``: positions in the GAN's class list (not the dataset's labels)."""
    training: tuple[TrainingImage, ...]
    split: Split
    dataset_classes: ClassIndex
    loaded: LoadedDataset


def training_records(
    train: Sequence[Record], dataset_classes: ClassIndex, gan_classes: Sequence[str]
) -> list[tuple[Record, int]]:
    """The training records of ``gan_classes``, each with its GAN label."""
    for name in gan_classes:
        if name not in dataset_classes:
            raise ConfigError(
                f"class {name!r} is not in the dataset",
                where="--classes",
                hint=f"the dataset's classes are {', '.join(dataset_classes)}",
            )
    wanted = {dataset_classes.index(name): i for i, name in enumerate(gan_classes)}
    chosen = [(r, wanted[r.label]) for r in train if r.label in wanted and not r.is_synthetic]
    present = {label for _, label in chosen}
    for i, name in enumerate(gan_classes):
        if i not in present:
            raise DataError(
                f"the training part holds no images of class {name!r}",
                where="--classes",
                hint="check the dataset and the split fractions (--val, --test)",
            )
    return chosen


def load_pixels(paths: Sequence[str | Path], image_size: int, cache_dir: str | None) -> np.ndarray:
    """uint8 ``(n, size, size, 3)`` through dermkit's loader and cache (``""``: no cache)."""
    from dermkit.data.cache import ImageCache
    from dermkit.data.images import ImageSettings
    from dermkit.data.loader import ImageLoader

    cache = None if cache_dir == "" else ImageCache(cache_dir)
    loader = ImageLoader(ImageSettings(size=image_size), cache)
    return loader.load_batch([str(p) for p in paths])


def prepare(
    loaded: LoadedDataset,
    split: Split,
    gan_classes: Sequence[str],
    image_size: int,
    cache_dir: str | None,
) -> GanData:
    """Select the training records of ``gan_classes`` and load their pixels."""
    chosen = training_records(split.train, loaded.classes, gan_classes)
    training = tuple(
        TrainingImage(image_key(r.path), gan_classes[label], r.group) for r, label in chosen
    )
    images = load_pixels([r.path for r, _ in chosen], image_size, cache_dir)
    labels = np.asarray([label for _, label in chosen], dtype=np.int32)
    return GanData(images, labels, training, split, loaded.classes, loaded)


def split_options(val: float, test: float, seed: int) -> dict[str, Any]:
    return {"val": val, "test": test, "seed": seed}
