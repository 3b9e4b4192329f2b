"""Which epoch is "best", and how epochs are numbered wherever a person reads them.

Epochs are numbered from 1 everywhere a person reads them: Keras' progress lines
("Epoch 1/25"), ``history.csv``, the training-curve plot, ``state.json`` and
``summary.json``. Only the trainer's loop counts from 0 internally (Keras' callback
argument), and converts at the boundary. The best epoch is chosen by one rule,
:func:`improved`, used both while training (to save ``model.keras``) and afterwards by
:func:`best_epoch` (to mark it in plots), so the two can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

STATE_FORMAT = 2
"""``state.json`` format: 2 counts ``best_epoch`` from 1; files without the key, from 0."""


def improved(monitor: str, value: float, best: float) -> bool:
    """Whether ``value`` of ``monitor`` beats ``best`` (NaN never wins; NaN best always loses)."""
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value < best if monitor == "val_loss" else value > best


def best_epoch(history: Mapping[str, Sequence[Any]], monitor: str) -> int | None:
    """The 1-based epoch the trainer kept as ``model.keras``, from the history alone.

    Mirrors the trainer: the first epoch is kept until an epoch improves on it, and
    ties keep the earlier one; without validation figures (no validation part) the
    latest epoch is kept. ``None`` for an empty history.
    """
    values = history.get(monitor)
    if not values:
        epochs = max((len(series) for series in history.values()), default=0)
        return epochs or None
    best_index, best_value = 0, math.nan
    for index, raw in enumerate(values):
        value = float(raw) if raw is not None else math.nan
        if improved(monitor, value, best_value):
            best_index, best_value = index, value
    return best_index + 1


def best_epoch_from_state(state: Mapping[str, Any]) -> int:
    """``state.json``'s best epoch, 1-based, also for files written before format 2."""
    epoch = int(state["best_epoch"])
    return epoch if int(state.get("format_version", 1)) >= STATE_FORMAT else epoch + 1
