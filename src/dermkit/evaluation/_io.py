"""Small file helpers shared by the evaluation modules.

Every artifact is written atomically (a temporary file in the same folder, then
``os.replace``), so a run killed mid-write leaves the previous file or none, never a
truncated one that a later ``--resume`` would trust.

JSON has no NaN or infinity. Undefined scores are common here (the recall of a class
absent from a small test set), so :func:`jsonable` writes NaN as ``null`` and
infinities as the strings ``"Infinity"`` / ``"-Infinity"``, and :func:`number` reads
them back; the files stay strict JSON that any reader accepts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from dermkit.atomic import atomic_path
from dermkit.atomic import write_text as atomic_write_text

__all__ = ["atomic_path", "atomic_write_text", "fmt", "jsonable", "number"]


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists, numpy scalars as Python ones, NaN/inf made strict."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def number(value: Any) -> float:
    """Inverse of :func:`jsonable` for one float: ``null`` is NaN, strings are parsed."""
    if value is None:
        return float("nan")
    return float(value)


def numbers(values: Any) -> tuple[float, ...]:
    return tuple(number(v) for v in values)


def fmt(value: float, spec: str = ".3f", missing: str = "–") -> str:
    """A number for a table cell; undefined values show as a dash."""
    return missing if value is None or math.isnan(value) else format(value, spec)
