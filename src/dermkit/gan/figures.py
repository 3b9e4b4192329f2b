"""The GAN run's pictures: per-class sample grids and the loss and KID curves.

Drawn like the evaluation report's figures (:mod:`dermkit.evaluation.plots`): through
matplotlib's object API and the Agg canvas, never ``pyplot``, and written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dermkit import atomic

DPI = 100
GAP = 4
"""Pixels of white between tiles; three times as much between real and generated."""


def tile_row(images: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    """Images side by side on white, ``gap`` pixels apart."""
    if not images:
        raise ValueError("nothing to tile")
    height = images[0].shape[0]
    parts: list[np.ndarray] = []
    for index, image in enumerate(images):
        if index:
            parts.append(np.full((height, gap, 3), 255, dtype=np.uint8))
        parts.append(image)
    return np.concatenate(parts, axis=1)


def sample_grid(real: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray]) -> np.ndarray:
    """One row per class: its real images, a wider gap, then its generated images."""
    rows = []
    for name, fakes in generated.items():
        reals = real.get(name)
        row = tile_row(list(fakes))
        if reals is not None and len(reals):
            spacer = np.full((row.shape[0], 3 * GAP, 3), 255, dtype=np.uint8)
            row = np.concatenate([tile_row(list(reals)), spacer, row], axis=1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    padded = [
        np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows
    ]
    spaced: list[np.ndarray] = []
    for index, row in enumerate(padded):
        if index:
            spaced.append(np.full((GAP, width, 3), 255, dtype=np.uint8))
        spaced.append(row)
    return np.concatenate(spaced, axis=0)


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    atomic.write_with(path, lambda tmp: figure.savefig(tmp, dpi=DPI), suffix=".png")


def save_sample_grid(
    path: Path,
    real: Mapping[str, np.ndarray],
    generated: Mapping[str, np.ndarray],
    title: str,
) -> None:
    """Write the grid with class names on the left and "real | generated" on top."""
    grid = sample_grid(real, generated)
    names = list(generated)
    height, width = grid.shape[:2]
    scale = 2.0 if height < 400 else 1.0  # small grids are enlarged, pixel for pixel
    image_w, image_h = width * scale / DPI, height * scale / DPI
    left, top, bottom = 0.8, 0.4, 0.05  # inches for class names and the title
    figure = Figure(figsize=(image_w + left + 0.1, image_h + top + bottom))
    fig_w, fig_h = figure.get_size_inches()
    axes = figure.add_axes((left / fig_w, bottom / fig_h, image_w / fig_w, image_h / fig_h))
    axes.imshow(grid, interpolation="nearest")
    row_height = (height + GAP) / max(1, len(names))
    axes.set_yticks([row_height * (i + 0.5) for i in range(len(names))], names)
    axes.set_xticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    figure.suptitle(title, fontsize=9, x=0.5, y=1.0 - 0.08 / fig_h, va="top")
    _save(figure, path)


def save_curves(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    title: str,
    ylabel: str,
    log_scale: bool = False,
) -> None:
    """Plot ``keys`` of ``rows`` (dicts with a ``step``) against the step."""
    figure = Figure(figsize=(7.0, 4.0))
    axes = figure.add_subplot(1, 1, 1)
    steps = [row["step"] for row in rows]
    for key in keys:
        values = [row.get(key) for row in rows]
        points = [(s, v) for s, v in zip(steps, values, strict=True) if v is not None]
        if points:
            axes.plot(
                *zip(*points, strict=True), label=key, marker="." if len(points) < 30 else None
            )
    if log_scale:
        axes.set_yscale("symlog", linthresh=1e-4)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    _save(figure, path)
