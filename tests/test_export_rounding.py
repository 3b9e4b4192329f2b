"""int8 rounding that minimises each layer's output error (GPTQ-style).

Inputs whose neighbouring values are correlated (as neighbouring pixels and channels
are) let one weight's rounding error be cancelled by its neighbours: the chosen
rounding must give a smaller output error than rounding each weight to its nearest
level, stay on the converter's grid, and survive the converter unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dermkit.export.rounding import (
    INT8_LEVELS,
    InputStatistics,
    int8_grid,
    output_error_rounding,
)

SIZE = 10


def correlated_images(count: int, channels: int, seed: int) -> np.ndarray:
    """All-positive maps (as ReLU6 outputs are) that vary smoothly across pixels and
    share most of their signal across channels."""
    rng = np.random.default_rng(seed)
    shared = rng.uniform(0, 1, (count, SIZE // 2, SIZE // 2, 1))
    own = rng.uniform(0, 1, (count, SIZE // 2, SIZE // 2, channels))
    small = 0.8 * shared + 0.2 * own
    return np.repeat(np.repeat(small, 2, axis=1), 2, axis=2).astype(np.float32)


def output_error(layer: Any, kernel: np.ndarray, images: np.ndarray) -> float:
    original = layer.get_weights()
    expected = np.asarray(layer(images))
    layer.set_weights([kernel, *original[1:]])
    got = np.asarray(layer(images))
    layer.set_weights(original)
    return float(np.mean((got - expected) ** 2))


def on_grid_of(rounded: np.ndarray, kernel: np.ndarray, out_axis: int) -> None:
    scale = np.abs(kernel).max(axis=tuple(range(out_axis)), keepdims=True) / INT8_LEVELS
    steps = rounded / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(steps).max() <= INT8_LEVELS + 1e-3
    # each channel keeps its largest weight, so the converter finds the same scale
    np.testing.assert_allclose(
        np.abs(rounded).max(axis=tuple(range(out_axis))),
        np.abs(kernel).max(axis=tuple(range(out_axis))),
        rtol=1e-6,
    )
    np.testing.assert_allclose(int8_grid(rounded, out_axis), rounded, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kind", ["conv", "depthwise", "pointwise", "dense"])
def test_output_error_rounding_beats_nearest_and_stays_on_the_grid(kind: str) -> None:
    import keras

    channels = 6
    train = correlated_images(24, channels, seed=1)
    held_out = correlated_images(24, channels, seed=2)
    if kind == "conv":
        layer: Any = keras.layers.Conv2D(5, 3, strides=2, padding="same", use_bias=False)
        out_axis = 3
    elif kind == "depthwise":
        layer = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)
        out_axis = 2
    elif kind == "pointwise":
        layer = keras.layers.Conv2D(5, 1, use_bias=False)
        out_axis = 3
    else:
        layer = keras.layers.Dense(5, use_bias=False)
        out_axis = 1
        train, held_out = train.reshape(-1, channels), held_out.reshape(-1, channels)
    layer.build(train.shape)
    rng = np.random.default_rng(3)
    kernel = rng.normal(0, 1, layer.get_weights()[0].shape).astype(np.float32)
    layer.set_weights([kernel])

    statistics = InputStatistics(layer, out_axis)
    for start in range(0, len(train), 8):
        statistics.add(train[start : start + 8])
    np.testing.assert_allclose(statistics.mean_input, train.mean(axis=0), rtol=1e-5)
    assert statistics.hessian is not None
    rounded = output_error_rounding(kernel, out_axis, statistics.hessian)
    nearest = int8_grid(kernel, out_axis)

    on_grid_of(rounded, kernel, out_axis)
    assert not np.array_equal(rounded, nearest)
    # smaller output error, on the images it was chosen on and on others
    for images in (train, held_out):
        chosen, plain = (output_error(layer, k, images) for k in (rounded, nearest))
        assert chosen < 0.8 * plain, (kind, chosen, plain)


def test_the_converter_keeps_the_chosen_rounding(tmp_path: Path) -> None:
    """The converter folds BatchNormalization into the kernel and quantises it again
    with its own per-channel scale: the int8 levels it stores must be ours."""
    import keras
    import tensorflow as tf

    from dermkit.export.bias_correction import corrected_copy

    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(image)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    model = keras.Model(image, keras.layers.GlobalAveragePooling2D()(x))
    rng = np.random.default_rng(4)
    for name in ("conv_bn", "dw_bn"):  # positive gammas: folding keeps the levels' signs
        bn = model.get_layer(name)
        channels = bn.get_weights()[0].shape
        bn.set_weights(
            [
                rng.uniform(0.5, 2, channels),
                rng.normal(0, 0.1, channels),
                rng.normal(0, 0.1, channels),
                rng.uniform(0.5, 2, channels),
            ]
        )
    images = 255 * correlated_images(16, 3, seed=5)
    copy, corrected = corrected_copy(model, images)
    assert corrected == 2
    assert not np.array_equal(
        copy.get_layer("dw").get_weights()[0], int8_grid(model.get_layer("dw").get_weights()[0], 2)
    )

    copy.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[np.newaxis]] for image in images)
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    stored = {
        tuple(detail["shape"]): interpreter.get_tensor(detail["index"])
        for detail in interpreter.get_tensor_details()
        if detail["dtype"] == np.int8 and len(detail["quantization_parameters"]["scales"]) > 1
    }
    for name, out_axis, layout in (("conv", 3, (3, 0, 1, 2)), ("dw", 2, (3, 0, 1, 2))):
        kernel = copy.get_layer(name).get_weights()[0]
        scale = np.abs(kernel).max(axis=tuple(range(out_axis)), keepdims=True) / INT8_LEVELS
        ours = np.round(kernel / scale).astype(np.int8).transpose(layout)
        np.testing.assert_array_equal(stored[ours.shape], ours)
