"""Fixtures of the fault-injection suite, and its tally printed after the test summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .faults import TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY:
        return
    terminalreporter.write_sep("-", "dermkit reliability tally")
    for key in ("fuzz cases", "fuzz refused with a DermkitError", "fuzz crashes", "fuzz hangs"):
        terminalreporter.write_line(f"{key}: {TALLY.get(key, 0)}")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """28 synthetic 32-px PNGs in four class folders."""
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("reliability-data"), size=32, scale=0.12)


@pytest.fixture(scope="session")
def finished_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished two-epoch run, trained once for every test that damages a copy."""
    from dermkit.cli.main import main

    from .faults import train_command

    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(train_command(tiny_data, run, 2)[3:]) == 0
    return run
