"""A report as a folder of files that stands on its own.

* ``report.json``: everything, strict JSON; :meth:`Report.read` restores the report.
* ``report.md``: the same for people (:mod:`~dermkit.evaluation.report_markdown`).
* the PNG figures of :mod:`dermkit.evaluation.plots`.

Figures first and the JSON last, each file atomically: a folder whose ``report.json``
exists is complete, and a run killed mid-write leaves no truncated file behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dermkit.evaluation._io import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.evaluation.report import Report

JSON_FILE = "report.json"
MARKDOWN_FILE = "report.md"


def write_report(report: Report, folder: Path, *, plots: bool = True) -> dict[str, Path]:
    """Write the report into ``folder``; returns name -> path of every file written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if plots:
        from dermkit.evaluation.plots import write_plots

        written.update(write_plots(report, folder))
    figures = {name: path.name for name, path in written.items()}
    atomic_write_text(folder / MARKDOWN_FILE, report.to_markdown(figures))
    written["markdown"] = folder / MARKDOWN_FILE
    atomic_write_text(folder / JSON_FILE, report.dumps())
    written["json"] = folder / JSON_FILE
    return written
