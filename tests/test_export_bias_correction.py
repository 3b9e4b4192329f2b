"""int8 weights with bias correction: rounding must not shift any channel's mean.

A tiny model is built whose weights round badly on purpose (a few large weights per
channel set the int8 step, the many small ones all round the same way) and fed
all-positive inputs, as ReLU6 outputs are: plain rounding then shifts every channel's
mean output, and the corrected copy must remove that shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dermkit.export.bias_correction import corrected_copy
from dermkit.export.rounding import INT8_LEVELS, int8_grid

SIZE = 12


def skewed_model() -> Any:
    """image → Conv2D (no bias) → BN → ReLU6 → DepthwiseConv2D (no bias) → BN → ReLU6
    → pooling → Dense, with kernels whose rounding errors all point one way."""
    import keras

    keras.utils.set_random_seed(0)  # initial weights not set below: not left to test order
    rng = np.random.default_rng(0)
    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(image)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, name="dense")(x)
    model = keras.Model(image, outputs)

    def skewed(shape: tuple[int, ...]) -> np.ndarray:
        # small weights just below half an int8 step of the channel's one large weight
        kernel = np.full(shape, 0.45 / INT8_LEVELS) * rng.uniform(0.9, 1.0, shape)
        kernel[0, 0] = 1.0
        return kernel.astype(np.float32)

    model.get_layer("conv").set_weights([skewed((3, 3, 3, 8))])
    model.get_layer("dw").set_weights([skewed((3, 3, 8, 1))])
    probe_images = rng.uniform(0.0, 1.0, (8, SIZE, SIZE, 3)).astype(np.float32)
    for name in ("conv_bn", "dw_bn"):  # centred, and scaled up 10x as trained BNs can be
        bn = model.get_layer(name)
        gamma, beta, _, var = bn.get_weights()
        mean = channel_means(model, name.removesuffix("_bn"), probe_images)
        bn.set_weights([gamma, beta + 1.0, mean, np.full_like(var, 0.01)])
    return model


def channel_means(model: Any, layer: str, images: np.ndarray) -> np.ndarray:
    import keras

    probe = keras.Model(model.input, model.get_layer(layer).output)
    out = np.asarray(probe(images, training=False))
    return np.asarray(out.reshape(-1, out.shape[-1]).mean(axis=0))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).uniform(0.0, 1.0, (16, SIZE, SIZE, 3)).astype(np.float32)


def test_int8_grid_is_the_converters_per_channel_grid() -> None:
    kernel = np.random.default_rng(2).normal(size=(3, 3, 4, 5)).astype(np.float32)
    rounded = int8_grid(kernel, 3)
    scale = np.abs(kernel).max(axis=(0, 1, 2)) / INT8_LEVELS
    steps = rounded / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)  # on the grid
    np.testing.assert_allclose(np.abs(rounded).max(axis=(0, 1, 2)), scale * INT8_LEVELS)
    np.testing.assert_allclose(int8_grid(rounded, 3), rounded, rtol=1e-6)  # a fixed point
    assert np.abs(rounded - kernel).max() <= scale.max() / 2 + 1e-7
    # depthwise (h, w, channels, multiplier): one scale per channel and multiplier
    depthwise = kernel[:, :, :, :2]
    per = np.abs(int8_grid(depthwise, 2)).max(axis=(0, 1))
    np.testing.assert_allclose(per, np.abs(depthwise).max(axis=(0, 1)), rtol=1e-6)


def test_corrected_copy_removes_the_shift_that_rounding_makes(images: np.ndarray) -> None:
    model = skewed_model()
    before = [np.array(w) for w in model.get_weights()]
    copy, corrected = corrected_copy(model, images, rounding="nearest")
    assert corrected == 3  # conv (via its BN), depthwise (via its BN), dense (its bias)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)  # the run's model is left as it was

    import keras

    plain = keras.models.clone_model(model)  # the same weights, rounded without correction
    plain.set_weights(model.get_weights())
    for name, axis in (("conv", 3), ("dw", 2), ("dense", 1)):
        layer = plain.get_layer(name)
        weights = layer.get_weights()
        weights[0] = int8_grid(weights[0], axis)
        layer.set_weights(weights)
        np.testing.assert_array_equal(copy.get_layer(name).get_weights()[0], weights[0])
    for layer in ("conv_bn", "dw_bn"):
        want = channel_means(model, layer, images)
        plain_shift = np.abs(channel_means(plain, layer, images) - want).max()
        corrected_shift = np.abs(channel_means(copy, layer, images) - want).max()
        assert plain_shift > 0.05, plain_shift  # the rounding does shift these channels
        # exact up to float rounding, borders ("same" padding) included
        assert corrected_shift < plain_shift / 100, (layer, plain_shift, corrected_shift)
    expected = np.asarray(model(images))
    assert np.abs(np.asarray(copy(images)) - expected).mean() < (
        np.abs(np.asarray(plain(images)) - expected).mean() / 5
    )


def test_layers_that_cannot_be_corrected_are_left_to_the_converter(images: np.ndarray) -> None:
    import keras

    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="bare")(image)  # no bias, no BN
    x = keras.layers.Conv2D(4, 3, name="with_bias")(x)
    model = keras.Model(image, keras.layers.GlobalAveragePooling2D()(x))
    copy, corrected = corrected_copy(model, images)
    assert corrected == 1
    np.testing.assert_array_equal(
        copy.get_layer("bare").get_weights()[0], model.get_layer("bare").get_weights()[0]
    )
    # and no images: nothing to measure, a plain copy
    copy, corrected = corrected_copy(model, images[:0])
    assert corrected == 0


def test_rounding_for_the_output_error_beats_nearest_rounding(images: np.ndarray) -> None:
    """The default rounding: on the grid, different from nearest rounding, and no larger
    an error in the model's output than nearest rounding with the same bias correction."""
    model = skewed_model()
    chosen, _ = corrected_copy(model, images)
    nearest, _ = corrected_copy(model, images, rounding="nearest")
    for name, axis in (("conv", 3), ("dw", 2), ("dense", 1)):
        kernel = chosen.get_layer(name).get_weights()[0]
        np.testing.assert_allclose(int8_grid(kernel, axis), kernel, rtol=1e-5, atol=1e-9)
    assert not np.array_equal(
        chosen.get_layer("conv").get_weights()[0], nearest.get_layer("conv").get_weights()[0]
    )
    held_out = np.random.default_rng(7).uniform(0.0, 1.0, (16, SIZE, SIZE, 3)).astype(np.float32)
    expected = np.asarray(model(held_out))
    chosen_error = np.abs(np.asarray(chosen(held_out)) - expected).mean()
    nearest_error = np.abs(np.asarray(nearest(held_out)) - expected).mean()
    # Each layer's own output error is lower (tests/test_export_rounding.py asserts that);
    # through this tiny model's BatchNorm and pooling the whole-model gain ranged from
    # 15 % to none between test processes, so only "not worse" is asserted here.
    assert chosen_error <= 1.05 * nearest_error, (chosen_error, nearest_error)
