"""DiffAugment (Zhao et al., NeurIPS 2020) and the dihedral transforms of real images.

A discriminator trained on a few hundred images memorises them within a few thousand
steps; its feedback to the generator then becomes useless and training collapses.
DiffAugment applies the *same family* of random, differentiable transforms to real
and generated images every time the discriminator looks at them (and on the
generator's step too, so gradients pass through the transform). The discriminator can
then no longer memorise exact pixels, and because the generator is never asked to
produce augmented images, the augmentation does not leak into its samples. The three
transforms are the paper's recommended policy: colour (brightness, saturation,
contrast), translation by up to 1/8 of the image with zero padding, and cutout of a
square of half the image side.

All randomness is stateless and keyed by an explicit seed, so a step is a pure
function of its inputs, which is what makes a resumed run continue bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

Seed = Any
"""A ``(2,)`` int32/int64 tensor or array, as ``tf.random.stateless_*`` take."""


def _uniform(shape: Sequence[Any], seed: Seed, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def _colour(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    batch = tf.shape(images)[0]
    brightness = _uniform((batch, 1, 1, 1), seeds[0], -0.5, 0.5)
    images = images + brightness
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    saturation = _uniform((batch, 1, 1, 1), seeds[1], 0.0, 2.0)
    images = (images - mean) * saturation + mean
    mean = tf.reduce_mean(images, axis=(1, 2, 3), keepdims=True)
    contrast = _uniform((batch, 1, 1, 1), seeds[2], 0.5, 1.5)
    return (images - mean) * contrast + mean


def _translate(images: tf.Tensor, seeds: tf.Tensor, ratio: float = 0.125) -> tf.Tensor:
    batch = tf.shape(images)[0]
    size = images.shape[1]
    shift = max(1, round(size * ratio))
    dy = tf.random.stateless_uniform(
        (batch, 1), seed=seeds[0], minval=-shift, maxval=shift + 1, dtype=tf.int32
    )
    dx = tf.random.stateless_uniform(
        (batch, 1), seed=seeds[1], minval=-shift, maxval=shift + 1, dtype=tf.int32
    )
    padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]])
    grid = tf.range(size, dtype=tf.int32)[None, :] + shift
    rows = grid - dy  # output row r shows input row r - dy (zero outside the image)
    cols = grid - dx
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def _cutout(images: tf.Tensor, seeds: tf.Tensor, ratio: float = 0.5) -> tf.Tensor:
    batch = tf.shape(images)[0]
    size = images.shape[1]
    cut = max(1, round(size * ratio))
    half = cut // 2
    centre_y = tf.random.stateless_uniform(
        (batch, 1, 1), seed=seeds[0], minval=0, maxval=size + (1 - cut % 2), dtype=tf.int32
    )
    centre_x = tf.random.stateless_uniform(
        (batch, 1, 1), seed=seeds[1], minval=0, maxval=size + (1 - cut % 2), dtype=tf.int32
    )
    grid = tf.range(size, dtype=tf.int32)
    top, left = centre_y - half, centre_x - half  # the square is [top, top + cut)
    inside_y = tf.logical_and(grid[None, :, None] >= top, grid[None, :, None] < top + cut)
    inside_x = tf.logical_and(grid[None, None, :] >= left, grid[None, None, :] < left + cut)
    keep = tf.cast(tf.logical_not(tf.logical_and(inside_y, inside_x)), images.dtype)
    return images * keep[..., None]


def diff_augment(images: tf.Tensor, policy: Sequence[str], seed: Seed) -> tf.Tensor:
    """Apply the DiffAugment ``policy`` to a batch in [-1, 1]; differentiable in ``images``.

    Each image gets its own random parameters; ``seed`` (shape ``(2,)``) fixes them all.
    """
    if not policy:
        return images
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=8)
    if "color" in policy:
        images = _colour(images, seeds[0:3])
    if "translation" in policy:
        images = _translate(images, seeds[3:5])
    if "cutout" in policy:
        images = _cutout(images, seeds[5:7])
    return images


def dihedral(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image of a ``(n, s, s, c)`` batch under a random one of the 8 square symmetries."""
    out = np.empty_like(images)
    choices = rng.integers(0, 8, size=len(images))
    for index, (image, choice) in enumerate(zip(images, choices, strict=True)):
        turned = np.rot90(image, k=int(choice) % 4, axes=(0, 1))
        out[index] = turned[:, ::-1] if choice >= 4 else turned
    return out
