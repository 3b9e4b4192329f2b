"""Per-epoch checkpoints that always agree with ``state.json``, whenever the process dies.

Each file is written atomically (:mod:`dermkit.atomic`), but an epoch's end writes
several: the checkpoint, the history, ``state.json``. Had the checkpoint been moved
onto ``checkpoints/last.keras`` before ``state.json`` was written, a ``kill -9`` in
between would leave a checkpoint one epoch ahead of the state, and the resumed run
would train that epoch twice. So an epoch's checkpoint is first *staged* as
``checkpoints/epoch-NNNN.keras``; ``state.json`` is written; only then is the staged
file *committed* (moved onto ``last.keras``, and linked as ``model.keras`` when the
epoch is the best so far). :func:`recover` finishes or discards a staged file on
resume, by the epoch count in ``state.json``:

- staged epoch == ``epochs_done``: the state was written, the commit was not: commit;
- staged epoch > ``epochs_done``: the state was not written: the file is discarded.

:func:`load_checkpoint` then loads ``last.keras`` and refuses one with non-finite
weights, so a resumed run never continues from a broken state.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dermkit import atomic
from dermkit.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import keras

CHECKPOINTS = Path("checkpoints")
LAST = CHECKPOINTS / "last.keras"
BEST = Path("model.keras")
_STAGED = re.compile(r"epoch-(\d+)\.keras")

START_OVER = (
    "delete the run's checkpoints/ folder and state.json to train it again from the start, "
    "or start a new run in another folder"
)


def staged_path(run_dir: Path, epochs_done: int) -> Path:
    return run_dir / CHECKPOINTS / f"epoch-{epochs_done:04d}.keras"


def stage(run_dir: Path, model: keras.Model, epochs_done: int) -> Path:
    """Save ``model`` (with its optimizer) as the staged checkpoint of ``epochs_done``."""
    path = staged_path(run_dir, epochs_done)
    atomic.write_with(path, model.save, suffix=".keras")
    return path


def commit(run_dir: Path, staged: Path, *, best: bool) -> None:
    """Make ``staged`` the run's ``last.keras`` (and ``model.keras`` when ``best``).

    Call after ``state.json`` records the staged epoch. ``model.keras`` is a hard link
    to the same bytes (a copy where the file system has no links), replaced atomically.
    """
    if best:
        atomic.write_with(run_dir / BEST, lambda tmp: _link_or_copy(staged, tmp), suffix=".keras")
    try:
        os.replace(staged, run_dir / LAST)
    except OSError as error:
        raise atomic.cannot_write(run_dir / LAST, error) from error


def recover(run_dir: Path, state: dict[str, Any] | None) -> None:
    """Commit the staged checkpoint ``state`` points at; discard any staged beyond it."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return
    done = int(state["epochs_done"]) if state is not None else 0
    best = int(state.get("best_epoch", -1)) if state is not None else -1
    for path in sorted(folder.iterdir()):
        match = _STAGED.fullmatch(path.name)
        if match is None:
            continue
        epoch = int(match.group(1))
        if epoch == done and state is not None:
            commit(run_dir, path, best=epoch == best)
        else:
            path.unlink(missing_ok=True)
    if state is not None and done > 0 and not (run_dir / LAST).is_file():
        raise DataError(
            f"state.json records {done} finished epoch(s) but there is no checkpoint of them",
            where=str(run_dir / LAST),
            hint=START_OVER,
        )


def check_state(state: Any, path: Path) -> dict[str, Any] | None:
    """``state`` if it has what a resume needs, else a :class:`DataError` naming ``path``.

    A ``state.json`` that parses but is not dermkit's (emptied, edited, another
    program's) would otherwise fail deep inside the trainer with a ``KeyError``.
    """
    if state is None:
        return None
    problem = None
    if not isinstance(state, dict):
        problem = "it does not hold a JSON object"
    else:
        needed = ("epochs_done", "best_epoch", "best_value", "history")
        missing = [k for k in needed if k not in state]
        if missing:
            problem = f"it lacks {', '.join(missing)}"
        elif not isinstance(state["epochs_done"], int) or state["epochs_done"] < 0:
            problem = "epochs_done is not a count of epochs"
        elif not isinstance(state["history"], dict) or not all(
            isinstance(v, list) and len(v) <= state["epochs_done"]
            for v in state["history"].values()
        ):
            problem = "its history has more values than finished epochs"
        elif any(
            key in state and (not isinstance(state[key], int) or state[key] < 1)
            for key in ("stage", "stage_first_epoch")
        ):
            problem = "stage or stage_first_epoch is not a number counted from 1"
    if problem is not None:
        raise DataError(
            f"state.json is not a dermkit training state: {problem}",
            where=str(path),
            hint=START_OVER,
        )
    checked: dict[str, Any] = state
    return checked


def load_checkpoint(path: Path) -> keras.Model:
    """The checkpoint at ``path``, compiled; a damaged or non-finite one is a DataError."""
    from dermkit.models import load_model

    try:
        model = load_model(path)
    except DataError as error:
        raise DataError(
            f"the run's last checkpoint cannot be loaded ({error.message})",
            where=str(path),
            hint=START_OVER,
        ) from None
    broken = non_finite_weights(model)
    if broken:
        raise DataError(
            f"the checkpoint holds weights that are not finite numbers ({broken}), so "
            "training cannot continue from it",
            where=str(path),
            hint=START_OVER,
        )
    return model


def non_finite_weights(model: keras.Model) -> str | None:
    """The name of the first weight with a NaN or infinity in it, else ``None``."""
    import keras
    import numpy as np

    for weight in model.weights:
        values = keras.ops.convert_to_numpy(weight)
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            return str(weight.path)
    return None


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # file systems without hard links
        shutil.copyfile(source, target)
