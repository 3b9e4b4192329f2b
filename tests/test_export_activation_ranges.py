"""Percentile activation ranges for int8 export (``dermkit.export.activation_ranges``).

A small Keras model (ReLU6 convolutions, pooling, softmax) is converted by hand, so
each step can be checked alone: splitting the conversion in calibrate + quantise
changes nothing by itself, the 100th percentile reads back exactly the converter's
ranges (so the right tensors are read), and a lower percentile narrows them.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import convert_int8
from dermkit.errors import ConfigError
from dermkit.export import activation_ranges

SIZE = 16


def _interpreter() -> Any:
    import tensorflow as tf

    return tf.lite.Interpreter


@pytest.fixture(scope="module")
def converted() -> dict[str, Any]:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu6")(x)
    x = keras.layers.DepthwiseConv2D(3, activation="relu6")(x)
    x = keras.layers.Conv2D(8, 1)(x)  # linear: negative values too
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    folder = Path(tempfile.mkdtemp()) / "saved"
    model.export(str(folder), verbose=False)
    images = np.random.default_rng(0).uniform(0, 255, (24, SIZE, SIZE, 3)).astype(np.float32)

    def representative() -> Iterator[list[np.ndarray]]:
        for image in images:
            yield [image[np.newaxis]]

    return {
        "saved": folder,
        "int8": convert_int8(folder, representative, calibrate_only=False),
        "calibrated": convert_int8(folder, representative, calibrate_only=True),
        "representative": representative,
    }


def _predict(content: bytes, images: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = _interpreter()(model_content=content)
    interpreter.allocate_tensors()
    entry = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    rows = []
    for image in images:
        interpreter.set_tensor(entry, image[np.newaxis])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out)[0])
    return np.array(rows)


def test_calibrate_then_quantize_is_the_converters_int8(converted: dict[str, Any]) -> None:
    images = np.random.default_rng(1).uniform(0, 255, (8, SIZE, SIZE, 3)).astype(np.float32)
    split = activation_ranges.quantize_calibrated(converted["calibrated"])
    np.testing.assert_array_equal(_predict(split, images), _predict(converted["int8"], images))


def test_the_100th_percentile_is_the_recorded_min_and_max(converted: dict[str, Any]) -> None:
    recorded = activation_ranges.calibrated_tensors(converted["calibrated"])
    assert len(recorded) >= 4  # the activations; the model's input and output are left out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = activation_ranges.percentile_ranges(
            converted["calibrated"], converted["representative"](), 100.0, _interpreter()
        )
        narrow = activation_ranges.percentile_ranges(
            converted["calibrated"], converted["representative"](), 99.0, _interpreter()
        )
    assert full.keys() == recorded.keys()
    for index, (low, high) in recorded.items():
        assert full[index] == pytest.approx((min(0.0, low), max(0.0, high)), rel=1e-5, abs=1e-7)
        assert full[index][0] <= narrow[index][0] <= 0.0 <= narrow[index][1] <= full[index][1]
    assert any(narrow[i][1] < 0.99 * full[i][1] for i in recorded)
    assert any(narrow[i][0] > 0.99 * full[i][0] for i in recorded if full[i][0] < 0)


def test_edited_ranges_are_what_the_quantiser_uses(converted: dict[str, Any]) -> None:
    recorded = activation_ranges.calibrated_tensors(converted["calibrated"])
    halved = {i: (low / 2, high / 2) for i, (low, high) in recorded.items()}
    edited = activation_ranges.with_ranges(converted["calibrated"], halved)
    read_back = activation_ranges.calibrated_tensors(edited)
    assert read_back.keys() == halved.keys()
    for index, pair in halved.items():
        assert read_back[index] == pytest.approx(pair)
    images = np.random.default_rng(2).uniform(0, 255, (8, SIZE, SIZE, 3)).astype(np.float32)
    before = _predict(activation_ranges.quantize_calibrated(converted["calibrated"]), images)
    after = _predict(activation_ranges.quantize_calibrated(edited), images)
    assert not np.array_equal(before, after)  # clipped at half the range: other outputs


@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(
        st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=30), min_size=1, max_size=5
    ),
    k=st.integers(1, 10),
)
def test_extremes_keep_the_kth_largest_and_smallest(chunks: list[list[float]], k: int) -> None:
    extremes = activation_ranges._Extremes(k)
    for chunk in chunks:
        extremes.add(np.array(chunk, np.float32))
    values = np.sort(np.concatenate([np.array(c, np.float32) for c in chunks]))
    kth = min(k, values.size)
    assert extremes.range() == (values[kth - 1], values[-kth])


@pytest.mark.parametrize("bad", [50.0, 0.0, 100.5, -1.0])
def test_a_percentile_outside_50_to_100_is_refused(bad: float) -> None:
    with pytest.raises(ConfigError, match="activation percentile"):
        activation_ranges.check_percentile(bad)
    activation_ranges.check_percentile(None)
    activation_ranges.check_percentile(99.99)
