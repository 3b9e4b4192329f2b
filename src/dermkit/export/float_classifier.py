"""Int8 everywhere but the classifier: the last dense layer and its softmax stay float.

A fully int8 model stores its output probabilities in int8 too, in steps of 1/256.
Two classes whose probabilities lie within one step then tie, and the tie goes to the
lower class index, not to the class the float model prefers. On a trained Lite0
(docs/performance.md) five of the 1,057 test images tied at the top, and every one of
them disagreed with the Keras model. Keeping the final dense layer (1,280 × 7 weights
on Lite0) and the softmax in float removes the ties and costs no measurable speed,
since the convolutions before them are int8 as before; that is how the
``--quantize int8`` export is built unless ``float_classifier=False``.

The ops kept float are found in the calibrated model's graph: from the op that writes
the model's output back to the nearest FULLY_CONNECTED, through ops that only reshape
or normalise (softmax, reshape, ...). A model that does not end in a dense layer keeps
every op int8.
"""

from __future__ import annotations

from typing import Any

from dermkit.export.formats import flatbuffer_text

PASS_THROUGH_OPS: frozenset[str] = frozenset(
    {"SOFTMAX", "LOGISTIC", "RESHAPE", "SQUEEZE", "DEQUANTIZE", "QUANTIZE", "CAST"}
)
"""Ops between the classifier and the output that carry its values on unchanged in kind."""

MAX_STEPS_BACK = 4
"""How far from the output the classifier's dense layer may sit."""


def classifier_nodes(calibrated: bytes) -> list[str]:
    """Names of the output tensors of the ops from the last dense layer to the output.

    ``calibrated`` is the converter's calibrated float model. The names are what the
    TFLite quantiser's ``denylisted_nodes`` takes. Empty when no FULLY_CONNECTED op is
    reached within :data:`MAX_STEPS_BACK` pass-through ops of the output.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    graph = model.subgraphs[0]
    codes = {index: op_name(code) for index, code in enumerate(model.operatorCodes)}
    writer = {int(out): op for op in graph.operators for out in op.outputs}
    names: list[str] = []
    tensor = int(graph.outputs[0])
    for _ in range(MAX_STEPS_BACK + 1):
        op = writer.get(tensor)
        if op is None:
            return []
        kind = codes[op.opcodeIndex]
        names.append(flatbuffer_text(graph.tensors[int(op.outputs[0])].name))
        if kind == "FULLY_CONNECTED":
            return names
        if kind not in PASS_THROUGH_OPS:
            return []
        tensor = int(op.inputs[0])
    return []


def op_name(code: Any) -> str:
    """The builtin operator's name (``"CONV_2D"``) of a TFLite model's operator code."""
    from tensorflow.lite.python import schema_py_generated as schema

    number = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    for name, value in vars(schema.BuiltinOperator).items():
        if value == number and not name.startswith("_"):
            return str(name)
    return str(number)
