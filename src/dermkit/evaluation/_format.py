"""Text formatting shared by the report's Markdown, its summary line and ``compare``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dermkit.evaluation._io import fmt, jsonable
from dermkit.evaluation.bootstrap import Interval


def with_ci(value: float, interval: Interval | None, spec: str = ".3f") -> tuple[str, str]:
    """``(value, "low – high")`` for a table; ``"–"`` when there is no interval.

    A widened interval (see :mod:`dermkit.evaluation.bootstrap`) is marked ``*``.
    """
    if interval is None or not interval.defined:
        return fmt(value, spec), "–"
    mark = "*" if interval.widened else ""
    return fmt(value, spec), f"{interval.low:{spec}} – {interval.high:{spec}}{mark}"


def value_with_ci(value: float, interval: Interval | None, spec: str = ".3f") -> str:
    """``"0.612 (0.580 – 0.640)"``, or the value alone without an interval."""
    shown, ci = with_ci(value, interval, spec)
    return shown if ci == "–" else f"{shown} ({ci.rstrip('*')})"


def flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` as ``[("a.b", 1)]``; empty mappings and lists stay values."""
    rows: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def cell(value: Any) -> str:
    """A value for a Markdown table cell: strings as they are, the rest as JSON."""
    text = json.dumps(jsonable(value), ensure_ascii=False) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")
