"""The figures the real-data benchmarks print from a report, in one place.

Balanced accuracy with its lesion-bootstrap interval, recall per class and melanoma
sensitivity at specificity 0.8 are the headline figures of docs/benchmarks.md; every
script that prints them reads them from a :class:`dermkit.evaluation.report.Report`
the same way.
"""

from __future__ import annotations

from typing import Any

MEL_SPECIFICITY = 0.8


def report_figures(report: Any) -> dict[str, Any]:
    """``balanced_accuracy``, ``ci`` (low, high) or None, ``recall`` by class name,
    ``mel_sens_at_spec_0.8`` (None without a mel class) and ``n`` images."""
    interval = report.intervals.balanced_accuracy if report.intervals is not None else None
    mel = None
    if "mel" in report.class_names:
        for point in report.metrics.operating_points:
            if abs(point.target_specificity - MEL_SPECIFICITY) < 1e-9:
                mel = point.sensitivity
    return {
        "balanced_accuracy": report.balanced_accuracy,
        "ci": (interval.low, interval.high) if interval is not None else None,
        "recall": dict(zip(report.class_names, report.metrics.recall, strict=True)),
        "mel_sens_at_spec_0.8": mel,
        "n": report.metrics.n,
    }
