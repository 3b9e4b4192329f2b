"""Augmentation: random flips, 90° turns, small zoom and colour jitter on training batches.

Dermatoscopic images have no canonical orientation, so all eight flips and right-angle
rotations are label-preserving; zoom and colour jitter mimic differences between
dermatoscopes. Augmentation runs in the tf.data pipeline on training batches only, never
on validation or test data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from dermkit.core import BalanceContext, TrainingPlan

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

RECIPES: tuple[str, ...] = ("flip", "rotate90", "zoom", "color")


def _to_recipes(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _known_recipes(_: object, __: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    unknown = [v for v in value if v not in RECIPES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown}; choose from {', '.join(RECIPES)}")


@attrs.frozen(slots=True)
class Augment:
    """Add label-preserving augmentations to the training stream.

    ``strength`` scales zoom and colour jitter (1.0: up to 10 % zoom, ±10 % brightness
    and contrast, saturation 0.8-1.2, small hue shifts).
    """

    name: ClassVar[str] = "augment"
    recipes: tuple[str, ...] = attrs.field(
        default=RECIPES, converter=_to_recipes, validator=_known_recipes
    )
    strength: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))

    def apply(self, plan: TrainingPlan, context: BalanceContext) -> TrainingPlan:
        merged = tuple(dict.fromkeys((*plan.augmentations, *self.recipes)))
        note = f"augment: {', '.join(self.recipes)} (strength {self.strength:g})"
        return attrs.evolve(
            plan,
            augmentations=merged,
            augment_strength=self.strength,
            notes=(*plan.notes, note),
        )


def build_augmenter(recipes: tuple[str, ...], strength: float, seed: int) -> Any:
    """A function ``(images float32 [0,255] batch) -> augmented batch`` for tf.data ``map``."""
    import keras
    import keras_cv
    import tensorflow as tf

    layers: list[Any] = []
    if "flip" in recipes:
        layers.append(keras.layers.RandomFlip("horizontal_and_vertical", seed=seed))
    if "zoom" in recipes:
        factor = min(0.5, 0.1 * strength)
        layers.append(
            keras.layers.RandomZoom((-factor, factor), fill_mode="reflect", seed=seed + 1)
        )
    if "color" in recipes:
        layers.append(
            keras_cv.layers.RandomColorJitter(
                value_range=(0, 255),
                brightness_factor=min(0.5, 0.1 * strength),
                contrast_factor=min(0.5, 0.1 * strength),
                saturation_factor=(max(0.0, 0.5 - 0.1 * strength), min(1.0, 0.5 + 0.1 * strength)),
                hue_factor=min(0.5, 0.03 * strength),
                seed=seed + 2,
            )
        )
    rotate = "rotate90" in recipes
    generator = tf.random.Generator.from_seed(seed + 3)

    def augment(images: tf.Tensor) -> tf.Tensor:
        if rotate:
            # A transpose on a random half of the batch, followed by the random flips,
            # reaches all eight right-angle rotations and reflections of a square image.
            transposed = tf.transpose(images, (0, 2, 1, 3))
            pick = generator.uniform((tf.shape(images)[0],)) < 0.5
            images = tf.where(pick[:, None, None, None], transposed, images)
        for layer in layers:
            images = layer(images, training=True)
        return tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 255.0)

    return augment
