"""Evaluation: metrics, bootstrap intervals, calibration, reports, TTA and Grad-CAM.

Everything here except :mod:`~dermkit.evaluation.plots` (matplotlib) and the inside of
:func:`~dermkit.evaluation.gradcam.gradcam` / :func:`~dermkit.evaluation.tta.predict_tta`
(TensorFlow, imported on use) needs only numpy, so scoring saved predictions is quick.
"""

from __future__ import annotations

from dermkit.evaluation.bootstrap import BootstrapResult, Interval, bootstrap_intervals
from dermkit.evaluation.calibration import TemperatureScaling, fit_temperature
from dermkit.evaluation.classmap import AlignedRecords, align_records
from dermkit.evaluation.comparison import (
    compare_reports,
    comparison_warnings,
    records_digest,
    setting_differences,
)
from dermkit.evaluation.evaluator import StandardEvaluator
from dermkit.evaluation.gradcam import find_last_conv_layer, gradcam, overlay
from dermkit.evaluation.metrics import (
    Metrics,
    OperatingPoint,
    ReliabilityBins,
    RocCurve,
    compute_metrics,
)
from dermkit.evaluation.report import Report, RunContext, count_by_class
from dermkit.evaluation.sanity import prediction_warnings, single_class_warning
from dermkit.evaluation.tta import predict_tta

__all__ = [
    "AlignedRecords",
    "BootstrapResult",
    "Interval",
    "Metrics",
    "OperatingPoint",
    "ReliabilityBins",
    "Report",
    "RocCurve",
    "RunContext",
    "StandardEvaluator",
    "TemperatureScaling",
    "align_records",
    "bootstrap_intervals",
    "compare_reports",
    "comparison_warnings",
    "compute_metrics",
    "count_by_class",
    "find_last_conv_layer",
    "fit_temperature",
    "gradcam",
    "overlay",
    "predict_tta",
    "prediction_warnings",
    "records_digest",
    "setting_differences",
    "single_class_warning",
]
