"""``report.md``: a :class:`~dermkit.evaluation.report.Report` for people.

The page opens with what a reader came for: the headline figures (balanced accuracy
with its interval, macro F1 and AUC, the sensitivity for melanoma where the classes
have it, and how many images they rest on) and any warning that makes them suspect.
Then the configuration that produced them, the data, how the numbers were made, and
the details. Figures are linked by relative paths, so the folder can be moved, zipped
or rendered on GitHub.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dermkit.evaluation._format import cell, flatten, with_ci
from dermkit.evaluation._io import fmt
from dermkit.evaluation.bootstrap import Interval

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.evaluation.report import Report

MAX_SKIPPED_IN_MARKDOWN = 50
"""Skipped files listed in ``report.md``; ``report.json`` always has all of them."""

CAPTIONS: dict[str, str] = {
    "training_curves": "Training curves",
    "confusion_matrix": "Confusion matrix",
    "roc_curves": "ROC curves",
    "per_class_recall": "Per-class recall",
    "reliability": "Reliability diagram",
}


def render_markdown(report: Report, figures: Mapping[str, str]) -> str:
    """The whole page; ``figures`` maps plot name to a PNG path relative to the page."""
    lines = [f"# {report.title}", ""]
    lines += headline_section(report)
    lines += warnings_section(report)
    lines += configuration_section(report)
    lines += data_section(report)
    lines += evaluation_section(report)
    lines += metrics_section(report)
    lines += per_class_section(report)
    lines += operating_points_section(report)
    lines += confusion_section(report)
    lines += figures_section(figures)
    lines += skipped_section(report)
    if report.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _level(report: Report) -> int:
    return 95 if report.intervals is None else round(report.intervals.level * 100)


def headline_section(report: Report) -> list[str]:
    m = report.metrics
    iv = report.intervals
    rows: list[tuple[str, float, Interval | None]] = [
        (
            "Balanced accuracy (mean recall)",
            m.balanced_accuracy,
            None if iv is None else iv.balanced_accuracy,
        ),
        ("Macro F1", m.macro_f1, None if iv is None else iv.macro_f1),
        ("Macro ROC AUC (one vs rest)", m.macro_auc, None),
    ]
    positive = report.positive_class
    if positive is not None:
        rows.append(
            (
                f"Sensitivity for {positive} (recall)",
                report.recall_of(positive),
                None if iv is None else report.recall_interval(positive),
            )
        )
    lines = [
        "## Headline",
        "",
        f"| Figure | Value | {_level(report)}% CI |",
        "|---|---:|---:|",
    ]
    for label, value, interval in rows:
        shown, ci = with_ci(value, interval)
        lines.append(f"| {label} | {shown} | {ci} |")
    lines += [f"| Images evaluated (n) | {m.n} | |", ""]
    return lines


def warnings_section(report: Report) -> list[str]:
    return [line for w in report.warnings for line in (f"> **Warning:** {w}.", "")]


def configuration_section(report: Report) -> list[str]:
    if not report.config:
        return []
    lines = ["## Configuration", "", "| Setting | Value |", "|---|---|"]
    lines += [f"| {key} | {cell(value)} |" for key, value in flatten(report.config)]
    lines.append("")
    return lines


def data_section(report: Report) -> list[str]:
    if not report.data_counts:
        return []
    parts = list(report.data_counts)
    names = list(report.class_names)
    for part_counts in report.data_counts.values():
        names += [c for c in part_counts if c not in names]
    lines = [
        "## Data",
        "",
        "Images per class in each part.",
        "",
        "| Class | " + " | ".join(parts) + " | total |",
        "|---|" + "---:|" * (len(parts) + 1),
    ]
    totals = [0] * len(parts)
    for name in names:
        row = [report.data_counts[p].get(name, 0) for p in parts]
        totals = [t + v for t, v in zip(totals, row, strict=True)]
        lines.append(f"| {name} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    lines.append(
        "| **total** | " + " | ".join(f"**{t}**" for t in totals) + f" | **{sum(totals)}** |"
    )
    lines += [
        "",
        f"Skipped inputs: {len(report.skipped)}"
        + (" (listed at the end)." if report.skipped else "."),
        "",
    ]
    return lines


def evaluation_section(report: Report) -> list[str]:
    ev = report.evaluation
    iv = report.intervals
    lines = ["## Evaluation", "", f"- Images evaluated: {report.metrics.n}."]
    if ev.get("balanced_test"):
        lines.append(
            f"- Balanced test: {ev.get('per_class')} random images per class drawn from the "
            f"test part (seed {ev.get('seed')}); classes with fewer images were drawn with "
            "replacement. Accuracy on a balanced test is close to balanced accuracy."
        )
    if iv is not None:
        unit = (
            f"{iv.n_groups} lesions (cluster bootstrap)" if iv.grouped else f"{iv.n_groups} images"
        )
        lines.append(
            f"- Confidence intervals: {round(iv.level * 100)}% percentile bootstrap, "
            f"{iv.n_boot} resamples of {unit}, seed {iv.seed}."
        )
    else:
        lines.append("- Confidence intervals: not computed.")
    lines += [
        "- Balanced accuracy averages recall over the classes present in the evaluated images.",
        "",
    ]
    return lines


def metrics_section(report: Report) -> list[str]:
    m = report.metrics
    iv = report.intervals
    lines = ["## Metrics", "", f"| Metric | Value | {_level(report)}% CI |", "|---|---:|---:|"]
    rows: list[tuple[str, float, Interval | None]] = [
        (
            "Balanced accuracy (mean recall)",
            m.balanced_accuracy,
            None if iv is None else iv.balanced_accuracy,
        ),
        ("Accuracy", m.accuracy, None if iv is None else iv.accuracy),
        ("Macro F1", m.macro_f1, None if iv is None else iv.macro_f1),
        ("Weighted F1", m.weighted_f1, None),
        ("Macro ROC AUC (one vs rest)", m.macro_auc, None),
        (f"Expected calibration error ({len(m.reliability.counts)} bins)", m.ece, None),
    ]
    for label, value, interval in rows:
        shown, ci = with_ci(value, interval)
        lines.append(f"| {label} | {shown} | {ci} |")
    lines.append("")
    return lines


def per_class_section(report: Report) -> list[str]:
    m = report.metrics
    iv = report.intervals
    level = _level(report)
    lines = [
        "## Per class",
        "",
        f"| Class | Support | Precision | Recall | Recall {level}% CI | F1 | ROC AUC |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c, name in enumerate(report.class_names):
        recall, ci = with_ci(m.recall[c], None if iv is None else iv.recall[c])
        lines.append(
            f"| {name} | {m.support[c]} | {fmt(m.precision[c])} | {recall} | {ci} | "
            f"{fmt(m.f1[c])} | {fmt(m.auc[c])} |"
        )
    lines += [
        "",
        "A dash marks a value that is undefined on this data "
        "(no images of the class, or the class never predicted).",
    ]
    if iv is not None and any(
        i.widened for i in (iv.accuracy, iv.balanced_accuracy, iv.macro_f1, *iv.recall)
    ):
        lines.append(
            "\\* The percentile interval did not contain the estimate (skewed resamples); "
            "it was widened to include it."
        )
    lines.append("")
    return lines


def operating_points_section(report: Report) -> list[str]:
    m = report.metrics
    name = report.positive_class
    if name is None or not m.operating_points:
        return []
    lines = [
        f"## Sensitivity for {name} at fixed specificity",
        "",
        "Best achievable operating point with at least the target specificity "
        f"(call {name} when its probability is at least the threshold).",
        "",
        "| Target specificity | Sensitivity | Achieved specificity | Threshold |",
        "|---:|---:|---:|---:|",
    ]
    for p in m.operating_points:
        lines.append(
            f"| {p.target_specificity:.2f} | {fmt(p.sensitivity)} | "
            f"{fmt(p.specificity)} | {fmt(p.threshold, '.4f')} |"
        )
    lines.append("")
    return lines


def confusion_section(report: Report) -> list[str]:
    names = report.class_names
    lines = [
        "## Confusion matrix",
        "",
        "Rows: true class; columns: predicted class.",
        "",
        "| true \\ predicted | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for name, row in zip(names, report.metrics.confusion_array(), strict=True):
        lines.append(f"| **{name}** | " + " | ".join(str(int(v)) for v in row) + " |")
    lines.append("")
    return lines


def figures_section(figures: Mapping[str, str]) -> list[str]:
    if not figures:
        return []  # and no matplotlib import
    from dermkit.evaluation.plots import PLOT_FILES

    present = [(key, figures[key]) for key in PLOT_FILES if key in figures]
    if not present:
        return []
    lines = ["## Figures", ""]
    for key, rel in present:
        caption = CAPTIONS.get(key, key)
        lines += [f"### {caption}", "", f"![{caption}]({rel})", ""]
    return lines


def skipped_section(report: Report) -> list[str]:
    if not report.skipped:
        return []
    lines = ["## Skipped inputs", "", f"{len(report.skipped)} input(s) could not be used:", ""]
    for problem in report.skipped[:MAX_SKIPPED_IN_MARKDOWN]:
        lines.append(
            f"- `{problem.source}`: {problem.reason}"
            + (f" ({problem.hint})" if problem.hint else "")
        )
    rest = len(report.skipped) - MAX_SKIPPED_IN_MARKDOWN
    if rest > 0:
        lines.append(f"- … and {rest} more (all are listed in report.json).")
    lines.append("")
    return lines
