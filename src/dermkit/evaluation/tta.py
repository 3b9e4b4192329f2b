"""Test-time augmentation: average a model's predictions over flips and right-angle turns.

A dermatoscopic image has no "up": the lesion looks the same turned or mirrored, so the
eight symmetries of the square (the dihedral group D4) are label-preserving. Averaging
the class probabilities over them removes some of the model's orientation noise at the
cost of one forward pass per transform. Probabilities are averaged arithmetically
(the usual choice; geometric means punish a single confident disagreement harder).

The transforms act on the two spatial axes of channels-last batches ``(B, H, W, C)``
with plain numpy, so they work on anything that yields arrays. Quarter turns swap
height and width; a non-square batch is refused for them rather than fed to a model
built for a fixed size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from dermkit.errors import ConfigError, DataError
from dermkit.evaluation.metrics import FloatArray

if TYPE_CHECKING:  # pragma: no cover
    import keras

Transform = Callable[[npt.NDArray[Any]], npt.NDArray[Any]]

TRANSFORMS: dict[str, Transform] = {
    "identity": lambda x: x,
    "rot90": lambda x: np.rot90(x, 1, axes=(1, 2)),
    "rot180": lambda x: np.rot90(x, 2, axes=(1, 2)),
    "rot270": lambda x: np.rot90(x, 3, axes=(1, 2)),
    "flip_lr": lambda x: x[:, :, ::-1],
    "flip_ud": lambda x: x[:, ::-1],
    "transpose": lambda x: np.swapaxes(x, 1, 2),
    "transverse": lambda x: np.rot90(np.swapaxes(x, 1, 2), 2, axes=(1, 2)),
}
"""The eight dihedral transforms of a batch ``(B, H, W, C)``, by name."""

PRESETS: dict[str, tuple[str, ...]] = {
    "dihedral": tuple(TRANSFORMS),
    "flips": ("identity", "flip_lr", "flip_ud", "rot180"),
    "rotations": ("identity", "rot90", "rot180", "rot270"),
    "none": ("identity",),
}
"""Named transform sets: all eight, the four that keep the shape, the four turns, none."""

_SWAPS_AXES = frozenset({"rot90", "rot270", "transpose", "transverse"})


def resolve_transforms(transforms: str | Sequence[str]) -> tuple[str, ...]:
    """Transform names from a preset name or a list of names, checked and de-duplicated."""
    if isinstance(transforms, str):
        if transforms in PRESETS:
            return PRESETS[transforms]
        transforms = (transforms,)
    names = tuple(dict.fromkeys(transforms))
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown or not names:
        raise ConfigError(
            f"unknown test-time transform(s): {', '.join(unknown) or '(none given)'}",
            where="transforms",
            hint=f"use a preset ({', '.join(PRESETS)}) or names from {', '.join(TRANSFORMS)}",
        )
    return names


def _images_of(element: Any) -> npt.NDArray[Any]:
    """The image batch of a dataset element: ``x``, ``(x, y)`` or ``(x, y, weights)``."""
    if isinstance(element, tuple | list):
        element = element[0]
    if isinstance(element, dict):
        raise DataError(
            "dictionary inputs are not supported for test-time augmentation",
            where="images",
            hint="yield image batches or (images, labels) tuples",
        )
    array = np.asarray(element)
    if array.ndim != 4:
        raise DataError(
            f"expected batches of images shaped (batch, height, width, channels), "
            f"got {array.shape}",
            where="images",
            hint="batch the dataset (dataset.batch(32)) or pass a 4-D array",
        )
    return array


def _batches(images: Any, batch_size: int) -> Iterable[npt.NDArray[Any]]:
    if isinstance(images, np.ndarray):
        array = _images_of(images)
        for start in range(0, array.shape[0], batch_size):
            yield array[start : start + batch_size]
        return
    for element in images:
        yield _images_of(element)


def _predict(model: keras.Model, batch: npt.NDArray[Any]) -> FloatArray:
    out = model.predict_on_batch(np.ascontiguousarray(batch))
    return np.asarray(out, dtype=np.float64)


def predict_tta(
    model: keras.Model,
    images: Any,
    transforms: str | Sequence[str] = "dihedral",
    *,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> FloatArray:
    """Class probabilities averaged over ``transforms`` for every image, in input order.

    ``images`` is a 4-D array (split into ``batch_size`` batches), an iterable of such
    batches, or a batched ``tf.data.Dataset`` whose elements are ``x`` or ``(x, y[, w])``
    (labels are ignored, so the output lines up with the dataset's records).
    ``transforms`` is a preset (``"dihedral"``, ``"flips"``, ``"rotations"``,
    ``"none"``) or a list of names from :data:`TRANSFORMS`. ``on_batch`` is called with
    the number of images after each batch, e.g. to advance a progress counter.
    """
    names = resolve_transforms(transforms)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}", where="batch_size")
    functions = [TRANSFORMS[n] for n in names]
    swaps = any(n in _SWAPS_AXES for n in names)
    outputs: list[FloatArray] = []
    for batch in _batches(images, batch_size):
        if swaps and batch.shape[1] != batch.shape[2]:
            raise DataError(
                f"quarter turns need square images, got {batch.shape[1]}x{batch.shape[2]}",
                where="images",
                hint="resize to a square input or use transforms='flips'",
            )
        total: FloatArray | None = None
        for function in functions:
            prediction = _predict(model, function(batch))
            total = prediction if total is None else total + prediction
        assert total is not None
        outputs.append(total / len(functions))
        if on_batch is not None:
            on_batch(batch.shape[0])
    if not outputs:
        raise DataError("no images to predict", where="images")
    return np.concatenate(outputs, axis=0)
