"""Writing a Keras model as SavedModel, TFLite or ONNX, with the export description inside.

Every format starts from the same place: Keras' own ``model.export(format=
"tf_saved_model")``, which traces the model in inference mode (BatchNormalization with
its moving statistics, Dropout off) with a free batch dimension. TFLite is converted
from that SavedModel; ONNX goes through tf2onnx, an optional dependency
(``pip install "dermkit[onnx]"``), which is said clearly when it is missing.

Quantisation is TFLite's post-training kind: ``float16`` halves the weights (the
arithmetic stays float32 on CPUs), ``int8`` quantises weights and activations with
ranges measured on a representative set of images (the run's training images, see
:mod:`dermkit.export.calibration`). Inputs and outputs stay float32 in every case, so
an exported model takes the same raw [0, 255] pixels and gives the same probabilities
as the Keras model, whatever happens inside.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dermkit import atomic
from dermkit.errors import ConfigError, DataError
from dermkit.export.info import METADATA_NAME, Quantize

if TYPE_CHECKING:  # pragma: no cover
    import keras

SAVED_MODEL_INFO = Path("assets.extra") / "dermkit.json"
"""Where a SavedModel folder keeps its description: TensorFlow leaves ``assets.extra``
alone when it loads the model."""

ONNX_OPSET = 17
ONNX_INSTALL_HINT = (
    'ONNX export needs tf2onnx and onnxruntime: pip install "dermkit[onnx]" '
    "(or use --format tflite / saved_model)"
)

Representative = Callable[[], Iterable[list[np.ndarray]]]


def write_saved_model(model: keras.Model, target: Path, info_text: str) -> None:
    """``target`` becomes a SavedModel folder (replacing an older one only when complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}{atomic.TEMP_MARKER}", dir=target.parent)
    )
    try:
        folder = staging / "saved_model"
        model.export(str(folder), format="tf_saved_model", verbose=False)
        (folder / SAVED_MODEL_INFO).parent.mkdir(parents=True, exist_ok=True)
        (folder / SAVED_MODEL_INFO).write_text(info_text, encoding="utf-8")
        old = staging / "old"
        if target.exists():
            if not (target / "saved_model.pb").is_file():
                raise ConfigError(
                    "the output folder exists and is not a SavedModel",
                    where=str(target),
                    hint="choose another --out, or remove the folder",
                )
            os.replace(target, old)
        os.replace(folder, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_saved_model_info(folder: Path) -> str | None:
    path = folder / SAVED_MODEL_INFO
    return path.read_text(encoding="utf-8") if path.is_file() else None


def tflite_bytes(
    saved_model: Path,
    quantize: Quantize | None,
    representative: Representative | None,
    activation_percentile: float | None = None,
    float_classifier: bool = True,
) -> bytes:
    """Convert a SavedModel folder to a TFLite flatbuffer, quantised as asked.

    For int8, ``activation_percentile`` replaces the converter's min/max activation
    ranges by percentiles of the calibration values
    (:mod:`dermkit.export.activation_ranges`), and ``float_classifier`` keeps the last
    dense layer and its softmax float (:mod:`dermkit.export.float_classifier`).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if representative is None:  # pragma: no cover - export_run always passes one
            raise ConfigError("int8 quantisation needs representative images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # every operation in int8 (an error names any that cannot be), raw float
        # pixels in and float probabilities out, as for the other formats
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # calibrate only, then quantise here: the ranges may be replaced and the
        # classifier kept float in between (the converter's own last step otherwise)
        converter._experimental_calibrate_only = True
    try:
        content = bytes(converter.convert())
        if quantize == "int8":
            assert representative is not None
            content = _quantize_int8(
                content, representative, activation_percentile, float_classifier
            )
        return content
    except Exception as error:
        raise DataError(
            f"the TFLite converter failed: {type(error).__name__}: {error}",
            where=str(saved_model),
            hint="try --format saved_model, or export without --quantize",
        ) from error


def _quantize_int8(
    calibrated: bytes,
    representative: Representative,
    percentile: float | None,
    float_classifier: bool,
) -> bytes:
    """The calibrated float model quantised, with percentile activation ranges if asked."""
    import tensorflow as tf

    from dermkit.export import activation_ranges
    from dermkit.export.float_classifier import classifier_nodes

    kept_float = classifier_nodes(calibrated) if float_classifier else []
    if percentile is not None:
        with warnings.catch_warnings():  # TF's interpreter: deprecation and debug-mode notes
            warnings.simplefilter("ignore")
            ranges = activation_ranges.percentile_ranges(
                calibrated, representative(), percentile, tf.lite.Interpreter
            )
        calibrated = activation_ranges.with_ranges(calibrated, ranges)
    return activation_ranges.quantize_calibrated(calibrated, kept_float)


def embed_tflite_info(content: bytes, info_text: str) -> bytes:
    """``content`` with ``info_text`` added as TFLite metadata named ``dermkit``."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(info_text.encode("utf-8"), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if flatbuffer_text(m.name) != METADATA_NAME]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def flatbuffer_text(value: str | bytes | None) -> str:
    """A name read from a TFLite flatbuffer (bytes or str, or absent) as a str."""
    return value.decode("utf-8") if isinstance(value, bytes) else (value or "")


def read_tflite_info(content: bytes) -> str | None:
    """The ``dermkit`` metadata of a TFLite flatbuffer, or ``None`` if it has none."""
    try:
        from tensorflow.lite.python import schema_py_generated as schema
    except ImportError:  # pragma: no cover - TensorFlow ships it; then rely on the sidecar
        return None
    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if flatbuffer_text(entry.Name()) == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return bytes(np.asarray(data, dtype=np.uint8)).decode("utf-8")
    return None


def write_tflite(content: bytes, target: Path) -> None:
    def fill(tmp: Path) -> None:
        tmp.write_bytes(content)

    atomic.write_with(target, fill, suffix=".tflite")


def onnx_modules() -> tuple[Any, Any]:
    """``(tf2onnx, onnx)``, or a :class:`ConfigError` saying how to install them."""
    try:
        import onnx
        import tf2onnx
    except ImportError as error:
        raise ConfigError(f"cannot import {error.name}", hint=ONNX_INSTALL_HINT) from None
    return tf2onnx, onnx


def write_onnx(model: keras.Model, target: Path, size: int, info_text: str) -> None:
    """Convert with tf2onnx (opset 17) and store ``info_text`` in ``metadata_props``."""
    import tensorflow as tf

    tf2onnx, onnx = onnx_modules()
    spec = (tf.TensorSpec((None, size, size, 3), tf.float32, name="image"),)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=ONNX_OPSET)
    except Exception as error:
        raise DataError(
            f"tf2onnx could not convert the model: {type(error).__name__}: {error}",
            where=str(target),
            hint="use --format tflite or saved_model for this model",
        ) from error
    entry = proto.metadata_props.add()
    entry.key = METADATA_NAME
    entry.value = info_text

    def fill(tmp: Path) -> None:
        onnx.save(proto, str(tmp))

    atomic.write_with(target, fill, suffix=".onnx")
