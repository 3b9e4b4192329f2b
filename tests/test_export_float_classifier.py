"""Int8 export with the classifier kept float (``dermkit.export.float_classifier``).

Small Keras models are calibrated by hand, as in ``test_export_activation_ranges``:
the ops kept float are exactly the last dense layer and its softmax, quantising with
them denylisted leaves that dense layer's weights float and every convolution int8,
and a model that does not end in a dense layer keeps every op int8.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import convert_int8
from dermkit.export import activation_ranges
from dermkit.export.float_classifier import classifier_nodes, op_name

SIZE = 16


def _calibrated(head: Callable[[Any], Any]) -> bytes:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu6")(x)
    x = keras.layers.Dense(6, activation="relu")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, head(x))
    folder = Path(tempfile.mkdtemp()) / "saved"
    model.export(str(folder), verbose=False)
    images = np.random.default_rng(0).uniform(0, 255, (16, SIZE, SIZE, 3)).astype(np.float32)

    def representative() -> Any:
        for image in images:
            yield [image[np.newaxis]]

    return convert_int8(folder, representative, calibrate_only=True)


def _weight_types(content: bytes) -> list[tuple[str, int]]:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    return [
        (op_name(model.operatorCodes[op.opcodeIndex]), int(graph.tensors[int(op.inputs[1])].type))
        for op in graph.operators
        if op_name(model.operatorCodes[op.opcodeIndex]) in ("CONV_2D", "FULLY_CONNECTED")
    ]


@pytest.fixture(scope="module")
def dense_softmax() -> bytes:
    import keras

    return _calibrated(lambda x: keras.layers.Dense(4, activation="softmax")(x))


def test_the_last_dense_layer_and_its_softmax_stay_float(dense_softmax: bytes) -> None:
    from tensorflow.lite.python import schema_py_generated as schema

    nodes = classifier_nodes(dense_softmax)
    assert len(nodes) == 2  # softmax (the output), then the dense layer feeding it
    int8, float32 = schema.TensorType.INT8, schema.TensorType.FLOAT32
    mixed = _weight_types(activation_ranges.quantize_calibrated(dense_softmax, nodes))
    assert mixed == [("CONV_2D", int8), ("FULLY_CONNECTED", int8), ("FULLY_CONNECTED", float32)]
    every = _weight_types(activation_ranges.quantize_calibrated(dense_softmax))
    assert every == [("CONV_2D", int8), ("FULLY_CONNECTED", int8), ("FULLY_CONNECTED", int8)]


def test_a_model_without_a_dense_classifier_keeps_every_op_int8() -> None:
    import keras

    calibrated = _calibrated(lambda x: keras.layers.Activation("softmax")(x * 2.0 - 1.0))
    assert classifier_nodes(calibrated) == []
