"""The report's figures, drawn with matplotlib's object API.

Figures are built as :class:`matplotlib.figure.Figure` objects and rendered by the Agg
canvas, never through ``pyplot``: pyplot keeps global figure state and may try to open
a GUI backend, neither of which belongs in a library that runs on headless servers and
inside notebooks that have their own backend. Style settings are applied with
``rc_context`` around each figure, so the user's matplotlib settings are untouched.

Each ``plot_*`` function takes plain data (so it can be reused outside a report) and
writes one PNG atomically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dermkit.evaluation._io import atomic_path
from dermkit.evaluation.metrics import OperatingPoint, ReliabilityBins, RocCurve, normalise_rows

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.evaluation.bootstrap import Interval
    from dermkit.evaluation.report import Report

DPI = 120

_STYLE: dict[str, Any] = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

PLOT_FILES: dict[str, str] = {
    "training_curves": "training_curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "roc_curves": "roc_curves.png",
    "reliability": "reliability.png",
    "per_class_recall": "per_class_recall.png",
}
"""File name of each figure inside a report folder."""


def _colours(n: int) -> list[Any]:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


# --------------------------------------------------------------------------- training


_ACCURACY_KEYS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")


def _accuracy_key(history: Mapping[str, Sequence[float]]) -> str | None:
    for key in _ACCURACY_KEYS:
        if key in history or f"val_{key}" in history:
            return key
    for key in history:
        if "acc" in key and not key.startswith("val_"):
            return key
    return None


_MONITOR_LABELS = {
    "val_balanced_accuracy": "best val. balanced acc.",
    "val_accuracy": "best val. accuracy",
    "val_loss": "best val. loss",
}


def _stage_starts(history: Mapping[str, Sequence[float]]) -> list[tuple[int, int]]:
    """``(stage number, first epoch)`` of every stage after the first (history's ``stage``)."""
    stages = [int(value) for value in history.get("stage", ())]
    return [
        (stage, index + 1)
        for index, stage in enumerate(stages)
        if index > 0 and stage != stages[index - 1]
    ]


def plot_training_curves(
    history: Mapping[str, Sequence[float]],
    path: Path,
    *,
    monitor: str = "val_balanced_accuracy",
) -> Path:
    """Loss and accuracy per epoch, training solid and validation dashed.

    ``history`` is Keras' ``History.history``: ``{"loss": [...], "val_loss": [...], ...}``.
    Epochs are numbered from 1, as in ``history.csv`` and ``state.json``. The epoch kept
    as the best model is marked, chosen by the trainer's own rule on ``monitor`` (the
    run's ``Training.monitor``; validation balanced accuracy by default), so the mark
    and ``state.json``'s ``best_epoch`` always agree.
    """
    from dermkit.training.epochs import best_epoch

    panels = [("loss", "Loss")]
    acc = _accuracy_key(history)
    if acc is not None:
        panels.append((acc, "Accuracy"))
    with matplotlib.rc_context(_STYLE):
        fig = _figure(5.2 * len(panels), 4.2)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        best = best_epoch(history, monitor)
        best_label = (
            _MONITOR_LABELS.get(monitor, f"best {monitor}")
            if history.get(monitor)
            else "kept: last epoch (no validation)"
        )
        for ax, (key, label) in zip(axes, panels, strict=True):
            lines = [
                (key, "-", "#1f77b4", "training"),
                (f"val_{key}", "--", "#d62728", "validation"),
            ]
            if key != "loss":
                lines.append(("val_balanced_accuracy", "-.", "#2ca02c", "validation, balanced"))
            for name, style, colour, part in lines:
                series = history.get(name)
                if not series:
                    continue
                epochs = np.arange(1, len(series) + 1)
                ax.plot(epochs, series, style, color=colour, marker="o", ms=3.5, lw=1.8, label=part)
            if best is not None:
                ax.axvline(best, color="0.5", ls=":", lw=1.2, label=f"{best_label} (epoch {best})")
            for number, first in _stage_starts(history):
                ax.axvline(first - 0.5, color="#9467bd", ls="-", lw=1.0)
                ax.annotate(
                    f"stage {number}",
                    (first - 0.5, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -12),
                    textcoords="offset points",
                    color="#9467bd",
                    fontsize=9,
                )
            ax.set_title(label)
            ax.set_xlabel("Epoch")
            ax.set_ylabel(label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(True)
            if key != "loss":
                ax.set_ylim(top=min(1.02, ax.get_ylim()[1]))
            ax.legend(loc="best", frameon=False)
        fig.suptitle("Training history", fontsize=14, fontweight="bold")
        return _save(fig, path)


# --------------------------------------------------------------------------- confusion


def _annotate(
    ax: Any, shares: npt.NDArray[np.float64], texts: list[list[str]], size: float
) -> None:
    for i in range(shares.shape[0]):
        for j in range(shares.shape[1]):
            share = shares[i, j]
            dark = not math.isnan(share) and share > 0.55
            ax.text(
                j,
                i,
                texts[i][j],
                ha="center",
                va="center",
                fontsize=size,
                color="white" if dark else "black",
            )


def plot_confusion_matrix(confusion: npt.ArrayLike, class_names: Sequence[str], path: Path) -> Path:
    """Counts (left) and row-normalised shares (right), both coloured by the row share.

    Colouring the counts by share keeps small classes readable next to ``nv``; each row
    of the right panel is where that true class went, its diagonal the class's recall.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    shares = normalise_rows(counts)
    k = len(class_names)
    cell = 0.62 if k <= 8 else 0.45
    size = 10 if k <= 8 else 8
    with matplotlib.rc_context(_STYLE):
        fig = _figure(2 * (cell * k + 1.6) + 1.2, cell * k + 1.9)
        axes = fig.subplots(1, 2)
        panels = (
            ("Counts", [[f"{int(v)}" for v in row] for row in counts]),
            (
                "Row-normalised (recall on diagonal)",
                [["–" if math.isnan(v) else f"{v:.2f}" for v in row] for row in shares],
            ),
        )
        image = None
        for ax, (title, texts) in zip(axes, panels, strict=True):
            image = ax.imshow(
                np.nan_to_num(shares), cmap="Blues", vmin=0.0, vmax=1.0, aspect="equal"
            )
            _annotate(ax, shares, texts, size)
            ax.set_title(title)
            ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right")
            ax.set_yticks(range(k), labels=class_names)
            ax.set_xlabel("Predicted class")
            ax.set_ylabel("True class")
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
        assert image is not None
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="Share of true class")
        fig.suptitle("Confusion matrix", fontsize=14, fontweight="bold")
        return _save(fig, path)


# --------------------------------------------------------------------------- ROC


def plot_roc_curves(
    curves: Sequence[RocCurve],
    auc: Sequence[float],
    class_names: Sequence[str],
    path: Path,
    *,
    positive_class: int | None = None,
    operating_points: Sequence[OperatingPoint] = (),
) -> Path:
    """One-vs-rest ROC curve of every class with its AUC in the legend.

    The positive class's curve is drawn thicker, with its fixed-specificity operating
    points marked, since those are the numbers a screening reader looks for.
    """
    colours = _colours(len(class_names))
    with matplotlib.rc_context(_STYLE):
        fig = _figure(6.6, 6.0)
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="chance")
        for c, (curve, name) in enumerate(zip(curves, class_names, strict=True)):
            value = auc[c]
            if math.isnan(value) or not curve.fpr:
                ax.plot([], [], color=colours[c], label=f"{name} (AUC n/a)")
                continue
            ax.plot(
                curve.fpr,
                curve.tpr,
                color=colours[c],
                lw=3.0 if c == positive_class else 1.6,
                label=f"{name} (AUC {value:.3f})",
            )
        points = [p for p in operating_points if not math.isnan(p.sensitivity)]
        if positive_class is not None and points:
            targets = ", ".join(f"{p.target_specificity:.2f}" for p in points)
            ax.plot(
                [1 - p.specificity for p in points],
                [p.sensitivity for p in points],
                marker="o",
                ms=7,
                mfc="white",
                mec=colours[positive_class],
                mew=2,
                ls="none",
                label=f"{class_names[positive_class]} at specificity ≥ {targets}",
            )
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.grid(True)
        ax.set_xlabel("False positive rate (1 − specificity)")
        ax.set_ylabel("True positive rate (sensitivity)")
        ax.set_title("ROC curves, one class vs rest")
        ax.legend(loc="lower right", frameon=True, framealpha=0.9)
        return _save(fig, path)


# --------------------------------------------------------------------------- calibration


def plot_reliability(bins: ReliabilityBins, ece: float, path: Path) -> Path:
    """Accuracy against confidence per bin (top), and how many predictions fall in each.

    Bars below the diagonal are over-confidence; the lower panel shows which bins have
    enough samples to matter.
    """
    edges = np.asarray(bins.edges)
    centres = (edges[:-1] + edges[1:]) / 2
    width = np.diff(edges)
    counts = np.asarray(bins.counts)
    accuracy = np.asarray(bins.accuracy)
    confidence = np.asarray(bins.confidence)
    filled = counts > 0
    with matplotlib.rc_context(_STYLE):
        fig = _figure(6.2, 6.4)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        top.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration")
        top.bar(
            centres[filled],
            accuracy[filled],
            width=width[filled] * 0.95,
            color="#1f77b4",
            edgecolor="white",
            label="accuracy",
        )
        top.vlines(
            centres[filled],
            accuracy[filled],
            confidence[filled],
            color="#d62728",
            lw=2.0,
        )
        top.plot(
            centres[filled],
            confidence[filled],
            ls="none",
            marker="_",
            ms=14,
            mew=2.5,
            color="#d62728",
            label="mean confidence (gap in red)",
        )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("Accuracy")
        shown = "n/a" if math.isnan(ece) else f"{ece:.3f}"
        top.set_title(f"Reliability diagram (ECE = {shown}, {len(centres)} bins)")
        top.grid(True)
        top.legend(loc="upper left", frameon=False)
        bottom.bar(centres, counts, width=width * 0.95, color="0.45")
        bottom.set_xlabel("Confidence (top-class probability)")
        bottom.set_ylabel("Count")
        bottom.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        return _save(fig, path)


# --------------------------------------------------------------------------- recall


def plot_recall_bars(
    recall: Sequence[float],
    class_names: Sequence[str],
    support: Sequence[int],
    path: Path,
    *,
    intervals: Sequence[Interval] | None = None,
    balanced_accuracy: float | None = None,
    level: float = 0.95,
) -> Path:
    """Recall (sensitivity) per class with bootstrap error bars; the mean is the BA line."""
    k = len(class_names)
    values = np.asarray(recall, dtype=float)
    colours = _colours(k)
    with matplotlib.rc_context(_STYLE):
        fig = _figure(max(6.0, 0.9 * k + 2.0), 4.6)
        ax = fig.subplots()
        x = np.arange(k)
        ax.bar(x, np.nan_to_num(values), color=colours, width=0.7, edgecolor="white")
        if intervals is not None:
            low = np.array([iv.low for iv in intervals])
            high = np.array([iv.high for iv in intervals])
            ok = ~(np.isnan(low) | np.isnan(values))
            ax.errorbar(
                x[ok],
                values[ok],
                yerr=[values[ok] - low[ok], high[ok] - values[ok]],
                fmt="none",
                ecolor="black",
                elinewidth=1.3,
                capsize=5,
                label=f"{int(level * 100)}% bootstrap CI",
            )
        for i, value in enumerate(values):
            text = "n/a" if math.isnan(value) else f"{value:.2f}"
            ax.text(
                i,
                0.02,
                text,
                ha="center",
                va="bottom",
                fontsize=9.5,
                color="white" if not math.isnan(value) and value > 0.12 else "black",
                fontweight="bold",
            )
        if balanced_accuracy is not None and not math.isnan(balanced_accuracy):
            ax.axhline(
                balanced_accuracy,
                color="0.25",
                ls="--",
                lw=1.2,
                label=f"balanced accuracy {balanced_accuracy:.3f}",
            )
        ax.set_xticks(
            x, labels=[f"{n}\n(n={s})" for n, s in zip(class_names, support, strict=True)]
        )
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("Recall (sensitivity)")
        ax.set_title("Per-class recall")
        ax.grid(True, axis="y")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        return _save(fig, path)


# --------------------------------------------------------------------------- all


def write_plots(report: Report, out_dir: Path) -> dict[str, Path]:
    """Every figure of ``report`` into ``out_dir``; returns name -> file written."""
    m = report.metrics
    names = list(report.class_names)
    written: dict[str, Path] = {}
    if report.history:
        training = report.config.get("training") or {}
        written["training_curves"] = plot_training_curves(
            report.history,
            out_dir / PLOT_FILES["training_curves"],
            monitor=str(training.get("monitor") or "val_balanced_accuracy"),
        )
    written["confusion_matrix"] = plot_confusion_matrix(
        m.confusion_array(), names, out_dir / PLOT_FILES["confusion_matrix"]
    )
    written["roc_curves"] = plot_roc_curves(
        m.roc,
        m.auc,
        names,
        out_dir / PLOT_FILES["roc_curves"],
        positive_class=m.positive_class,
        operating_points=m.operating_points,
    )
    written["reliability"] = plot_reliability(
        m.reliability, m.ece, out_dir / PLOT_FILES["reliability"]
    )
    intervals = report.intervals
    written["per_class_recall"] = plot_recall_bars(
        m.recall,
        names,
        m.support,
        out_dir / PLOT_FILES["per_class_recall"],
        intervals=None if intervals is None else intervals.recall,
        balanced_accuracy=m.balanced_accuracy,
        level=0.95 if intervals is None else intervals.level,
    )
    return written
