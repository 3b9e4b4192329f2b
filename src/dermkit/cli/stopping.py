"""A training command that stops cleanly on SIGTERM, Ctrl-C or a full disk.

Preemptible cloud machines send SIGTERM shortly before they are taken away; a person
presses Ctrl-C. Either way :func:`stop_on_signals` turns the signal into a
:class:`Stopped` exception (a ``KeyboardInterrupt``, so nothing swallows it as an
ordinary error): at the next batch edge while Keras trains (see
:mod:`dermkit.training.stop_requests`), else at the next Python instruction. The epoch
in progress is abandoned, every atomic write in flight leaves its target untouched,
and the run folder keeps the last complete epoch. :func:`stopped_message` then says how
much was kept and how to continue.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from dermkit.training.stop_requests import Stopped, defer

__all__ = ["STOP_SIGNALS", "Stopped", "run_stoppable", "stop_on_signals", "stopped_message"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Raise :class:`Stopped` on SIGTERM or SIGINT while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        # Ignore further signals while the stack unwinds: a second SIGTERM from a
        # supervisor must not interrupt the clean-up of the first.
        for other in STOP_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        if defer(signum):  # Keras is training: raised at the next batch edge
            return
        raise Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def saved_epochs(run_dir: Path) -> tuple[int, int | None]:
    """(epochs kept in ``state.json``, epochs asked for in ``config.json``)."""
    done, wanted = 0, None
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        state: Any = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
        done = int(state["epochs_done"])
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        config: Any = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        wanted = int(config["training"]["epochs"])
    return done, wanted


def kept_message(run_dir: Path) -> str:
    """What the run folder keeps and how to continue it, in one sentence."""
    done, wanted = saved_epochs(run_dir)
    if not (run_dir / "config.json").is_file():
        return f"nothing was written to {run_dir} yet; start the run again"
    of = f" of {wanted}" if wanted is not None else ""
    if done == 0:
        kept = f"{run_dir} keeps its recipe and split but no finished epoch"
    elif wanted is not None and done >= wanted:
        kept = f"{run_dir} keeps all {done} epochs; the evaluation did not finish"
    else:
        kept = f"{run_dir} keeps {done}{of} epoch(s)"
    return f"{kept}; continue with `dermkit resume {run_dir}`"


def tidy(run_dir: Path) -> None:
    """Commit or discard a checkpoint staged when the stop came (as a resume would)."""
    from dermkit.errors import DermkitError
    from dermkit.training import checkpoints, trainer

    with contextlib.suppress(DermkitError, OSError):
        if (run_dir / trainer.STATE).is_file():
            checkpoints.recover(run_dir, trainer.read_state(run_dir))


def stopped_message(stop: KeyboardInterrupt, run_dir: Path) -> str:
    name = stop.name if isinstance(stop, Stopped) else "SIGINT"
    return f"dermkit: stopped by {name}: {kept_message(run_dir)}"


def run_stoppable(run_dir: Path, work: Callable[[], int]) -> int:
    """Run a training command's ``work``; on a stop or a full disk, say what was kept.

    SIGTERM / Ctrl-C: the staged checkpoint is committed or discarded (:func:`tidy`),
    the message says how many epochs the folder keeps and how to continue, and the exit
    code is ``128 + signal``. An :class:`~dermkit.errors.OutputError` (disk full) after
    the run folder was started gets the same "what was kept" hint.
    """
    import sys

    from dermkit.errors import OutputError

    try:
        with stop_on_signals():
            return work()
    except KeyboardInterrupt as stop:
        tidy(run_dir)
        print(stopped_message(stop, run_dir), file=sys.stderr, flush=True)
        return stop.exit_code if isinstance(stop, Stopped) else 130
    except OutputError as error:
        if not (run_dir / "config.json").is_file():
            raise
        raise OutputError(
            error.message, where=error.where, hint=f"{error.hint}; {kept_message(run_dir)}"
        ) from None
