"""Int8 activation ranges from a percentile of the calibration values, not their extremes.

TFLite's converter gives every activation the int8 range from its minimum to its
maximum over all calibration images. One unusual image then widens a range, and every
image pays for it with coarser steps: on a trained Lite0, ranges from three disjoint
sets of 32 images gave 96.3 %, 97.2 % and 98.1 % top-1 agreement with the float model
(docs/performance.md). Clipping the rarest values, so that each range covers all but
a ``1 - percentile / 100`` fraction of the calibration values at either end, keeps
the steps fine where almost all values are; it is the usual remedy (percentile
calibration, Wu et al. 2020, "Integer Quantization for Deep Learning Inference").

The converter has no option for it, so the conversion is split in its two steps, as
TensorFlow's own quantisation debugger does: calibrate (a float model that records
each activation's minimum and maximum), then quantise. In between, the float model
runs on the calibration images with every tensor kept, and each recorded range is
replaced by the percentiles of that tensor's values. The model's input and output
keep their ranges: the input's is the pixel range, the output's the probabilities'.
Ranges never grow past the recorded ones. So the 100th percentile is the recorded
min/max wherever the calibration records a tensor's own extremes; on Lite0 it does not
for the convolutions that feed a residual ADD, whose recorded ranges are up to 2.2 times
as wide, and there even the 100th percentile narrows them (docs/performance.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from dermkit.errors import ConfigError


def check_percentile(percentile: float | None) -> None:
    """``None`` (min/max) or a percentile in (50, 100]."""
    if percentile is not None and not 50.0 < percentile <= 100.0:
        raise ConfigError(
            f"activation percentile must be above 50 and at most 100, got {percentile}",
            where="activation_percentile",
            hint="e.g. 99.99: each range covers all but the rarest 0.01 % of values "
            "at either end; leave it out for the converter's min/max ranges",
        )


class _Extremes:
    """The ``k`` largest and ``k`` smallest values seen so far of one tensor."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.high = np.empty(0, np.float32)
        self.low = np.empty(0, np.float32)

    def add(self, values: np.ndarray) -> None:
        flat = values.reshape(-1).astype(np.float32, copy=False)
        self.high = _largest(np.concatenate([self.high, _largest(flat, self.k)]), self.k)
        self.low = -_largest(np.concatenate([-self.low, _largest(-flat, self.k)]), self.k)

    def range(self) -> tuple[float, float]:
        """The smallest of the top ``k`` and the largest of the bottom ``k``."""
        return float(self.low.max()), float(self.high.min())


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    if values.size <= k:
        return values
    return np.partition(values, values.size - k)[values.size - k :]


def calibrated_tensors(content: bytes) -> dict[int, tuple[float, float]]:
    """``{tensor index: (min, max)}`` of every activation the calibration recorded,
    the model's inputs and outputs left out."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    ends = {int(i) for i in graph.inputs} | {int(i) for i in graph.outputs}
    found: dict[int, tuple[float, float]] = {}
    for index, tensor in enumerate(graph.tensors):
        quantization = tensor.quantization
        if index in ends or quantization is None:
            continue
        if quantization.min is None or quantization.max is None or len(quantization.min) != 1:
            continue
        found[index] = (float(quantization.min[0]), float(quantization.max[0]))
    return found


def percentile_ranges(
    content: bytes,
    images: Iterable[list[np.ndarray]],
    percentile: float,
    interpreter_class: Any,
) -> dict[int, tuple[float, float]]:
    """Each calibrated activation's range at ``percentile`` over ``images``.

    ``content`` is the calibrated float model; ``images`` what the converter's
    representative dataset yields (one ``[batch]`` per call). Ranges always include
    0 and never reach past the recorded min/max.
    """
    check_percentile(percentile)
    recorded = calibrated_tensors(content)
    interpreter = interpreter_class(model_content=content, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    entry = interpreter.get_input_details()[0]["index"]
    inputs = [np.asarray(item[0], np.float32) for item in images]
    extremes: dict[int, _Extremes] = {}
    for item in inputs:
        interpreter.set_tensor(entry, item)
        interpreter.invoke()
        for index in recorded:
            values = interpreter.get_tensor(index)
            if index not in extremes:
                total = values.size * len(inputs)
                extremes[index] = _Extremes(max(1, math.ceil(total * (1 - percentile / 100))))
            extremes[index].add(values)
    ranges: dict[int, tuple[float, float]] = {}
    for index, (low, high) in recorded.items():
        if index not in extremes:
            continue
        clipped_low, clipped_high = extremes[index].range()
        ranges[index] = (
            min(0.0, max(low, clipped_low)),
            max(0.0, min(high, clipped_high)),
        )
    return ranges


def with_ranges(content: bytes, ranges: Mapping[int, tuple[float, float]]) -> bytes:
    """The calibrated model with the given activations' recorded ranges replaced."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    tensors = model.subgraphs[0].tensors
    for index, (low, high) in ranges.items():
        quantization = tensors[index].quantization
        quantization.min = np.array([low], np.float32)
        quantization.max = np.array([high], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def quantize_calibrated(content: bytes, float_nodes: Sequence[str] = ()) -> bytes:
    """Int8 weights and activations from a calibrated model, float32 in and out, as the
    converter's own last step makes them (per-channel weights), except the ops writing
    the tensors named in ``float_nodes``, which stay float."""
    from tensorflow.lite.python import convert

    return bytes(convert.mlir_quantize(content, denylisted_nodes=list(float_nodes) or None))
