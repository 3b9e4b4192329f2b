"""Export a run's model to TFLite, SavedModel or ONNX, and predict with the export.

``dermkit export RUN --format tflite|saved_model|onnx [--quantize float16|int8]``
writes the run's best model in a deployable format. The exported model carries the
run's class names and image settings (:class:`ExportInfo`), inside the file where the
format allows and in a ``<name>.dermkit.json`` sidecar, so ``dermkit predict`` and
``dermkit evaluate`` accept it in place of the run folder and resize images exactly as
training did. TensorFlow is imported only when a model is exported or opened.
"""

from __future__ import annotations

from dermkit.export.exported import ExportedModel, is_exported, open_exported
from dermkit.export.exporter import Agreement, ExportResult, agreement, default_output, export_run
from dermkit.export.info import FORMATS, QUANTIZATIONS, ExportInfo, sidecar_path

__all__ = [
    "FORMATS",
    "QUANTIZATIONS",
    "Agreement",
    "ExportInfo",
    "ExportResult",
    "ExportedModel",
    "agreement",
    "default_output",
    "export_run",
    "is_exported",
    "open_exported",
    "sidecar_path",
]
