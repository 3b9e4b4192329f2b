"""Helpers of the fault-injection suite: the CLI in a subprocess, time limits, run-folder
checks, and the tally of fuzz cases that ``conftest.py`` prints at the end of a run.

Everything trains a tiny LFN (64 px input, one 16-unit dense layer) on 28 synthetic images,
so a whole ``dermkit train`` run takes a few seconds after TensorFlow has started.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dermkit.errors import DermkitError

SRC = Path(__file__).resolve().parents[2] / "src"
TEMP_GLOB = ".*.dermkit-tmp-*"

TINY_TRAIN_FLAGS: tuple[str, ...] = (
    "--model", "lfn", "--model-option", "dense=16", "--image-size", "64",
    "--batch-size", "8", "--val", "0.25", "--test", "0.25", "--seed", "5",
    "--balancer", "class_weights", "--cache-dir", "", "--quiet",
)  # fmt: skip
"""No random augmentation: a resumed run then computes exactly what an uninterrupted one does."""

# ------------------------------------------------------------------ tally

TALLY: collections.Counter[str] = collections.Counter()
"""``fuzz cases``, ``fuzz crashes``, ``fuzz hangs``; printed by pytest_terminal_summary."""


class Hang(Exception):
    """A call ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` if the block runs longer than ``seconds`` (SIGALRM, main thread)."""

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def survives(call: Callable[[], Any], *, seconds: float = 10.0) -> Any:
    """Run one fuzz case: it may succeed or raise a :class:`DermkitError` with a message.

    Any other exception is a crash, running past ``seconds`` a hang; both are counted
    and fail the test. Returns the call's result, or the DermkitError it raised.
    """
    TALLY["fuzz cases"] += 1
    try:
        with time_limit(seconds):
            return call()
    except DermkitError as error:
        TALLY["fuzz refused with a DermkitError"] += 1
        assert error.render().strip(), "a DermkitError without a message"
        return error
    except Hang:
        TALLY["fuzz hangs"] += 1
        raise
    except BaseException:
        TALLY["fuzz crashes"] += 1
        raise


# ------------------------------------------------------------------ data and CLI


def cli_env() -> dict[str, str]:
    """This interpreter's environment with this checkout's ``src`` first on the path."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": str(SRC) + (os.pathsep + path if path else ""),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONUNBUFFERED": "1",
    }


def train_command(data: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "dermkit.cli.main", "train", "--data", str(data),
        *TINY_TRAIN_FLAGS, "--epochs", str(epochs), "--out", str(out), *extra,
    ]  # fmt: skip


def resume_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "dermkit.cli.main", "resume", str(out), "--quiet"]


def start(command: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")  # noqa: SIM115 - closed when the process is reaped
    process = subprocess.Popen(command, env=cli_env(), stdout=handle, stderr=subprocess.STDOUT)
    process.log = handle  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen[bytes], timeout: float = 180) -> int:
    try:
        code = process.wait(timeout=timeout)
    finally:
        process.log.close()  # type: ignore[attr-defined]
    return code


def run_cli(command: Sequence[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_for(
    condition: Callable[[], bool],
    process: subprocess.Popen[bytes] | None = None,
    *,
    timeout: float = 150,
    poll: float = 0.005,
) -> bool:
    """Poll ``condition`` until true; ``False`` if ``process`` ended or time ran out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process is not None and process.poll() is not None:
            return condition()
        time.sleep(poll)
    return False


def epochs_done(run: Path) -> int:
    try:
        return int(json.loads((run / "state.json").read_text())["epochs_done"])
    except (OSError, ValueError, KeyError):
        return 0


def assert_complete_history(run: Path, epochs: int) -> None:
    """history.json and history.csv hold epochs 1..N exactly once, state.json agrees."""
    history = json.loads((run / "history.json").read_text())
    assert history and all(len(values) == epochs for values in history.values()), {
        k: len(v) for k, v in history.items()
    }
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [str(i) for i in range(1, epochs + 1)]
    assert epochs_done(run) == epochs


def leftovers(run: Path) -> list[Path]:
    """Temporary files of interrupted writes, and staged checkpoints never committed."""
    return [*run.rglob(TEMP_GLOB), *run.glob("checkpoints/epoch-*.keras")]


def model_weights(path: Path) -> list[Any]:
    import dermkit.models
    from dermkit.models import load_model

    assert dermkit.models  # registration of the custom layers is the import
    return [w.numpy() for w in load_model(path, compile=False).weights]
