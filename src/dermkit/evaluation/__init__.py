"""Evaluation: metrics, bootstrap intervals, calibration, reports, TTA and Grad-CAM.

Everything here except :mod:`~dermkit.evaluation.plots` (matplotlib) and the inside of
:func:`~dermkit.evaluation.gradcam.gradcam` / :func:`~dermkit.evaluation.tta.predict_tta`
(TensorFlow, imported on use) needs only numpy, so scoring saved predictions is quick.
"""

from __future__ import annotations

from dermkit.evaluation.bootstrap import BootstrapResult, Interval, bootstrap_intervals
from dermkit.evaluation.calibration import TemperatureScaling, fit_temperature
from dermkit.evaluation.evaluator import StandardEvaluator
from dermkit.evaluation.gradcam import find_last_conv_layer, gradcam, overlay
from dermkit.evaluation.metrics import (
    Metrics,
    OperatingPoint,
    ReliabilityBins,
    RocCurve,
    compute_metrics,
)
from dermkit.evaluation.report import Report, RunContext, compare_reports, count_by_class
from dermkit.evaluation.tta import predict_tta

__all__ = [
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
    "bootstrap_intervals",
    "compare_reports",
    "compute_metrics",
    "count_by_class",
    "find_last_conv_layer",
    "fit_temperature",
    "gradcam",
    "overlay",
    "predict_tta",
]
