"""Save and restore every variable of a GAN run: networks, moving average, optimizers.

One ``.npz`` archive holds each variable under ``<owner>/<index>`` plus, under
``__names__``, the variable paths in the same order, which are checked on load, so a
checkpoint of a different architecture is refused with a clear error instead of being
loaded into the wrong tensors. The archive is written atomically
(:mod:`dermkit.atomic`): a run killed mid-write keeps its previous checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dermkit import atomic
from dermkit.errors import DataError
from dermkit.gan.step import GanModels

NAMES = "__names__"


def _entries(models: GanModels) -> list[tuple[str, str, Any]]:
    """``(archive key, checked name, variable)`` of every checkpointed variable.

    The checked name is the owner and the variable path without its first component
    for optimizer variables, because Keras numbers optimizers by creation order
    (``adam/...``, ``adam_1/...``), which differs between processes.
    """
    out = []
    for owner, variables in models.checkpointed().items():
        for index, variable in enumerate(variables):
            path = str(variable.path)
            if owner.startswith("opt_"):
                path = path.split("/", 1)[-1]
            out.append((f"{owner}/{index}", f"{owner}:{path}", variable))
    return out


def save_checkpoint(path: Path, models: GanModels) -> None:
    entries = _entries(models)
    arrays: dict[str, Any] = {key: np.asarray(variable.numpy()) for key, _, variable in entries}
    arrays[NAMES] = np.asarray([name for _, name, _ in entries])

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic.write_with(path, write, suffix=".npz")


def load_checkpoint(path: Path, models: GanModels) -> None:
    """Assign every saved variable; a :class:`DataError` if the archive does not fit."""
    entries = _entries(models)
    hint = "delete the run folder's checkpoints/ and state.json to start over"
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = [str(n) for n in archive[NAMES]]
            expected = [name for _, name, _ in entries]
            if names != expected:
                raise DataError(
                    "the checkpoint holds other variables than this GAN "
                    f"({len(names)} saved, {len(expected)} expected)",
                    where=str(path),
                    hint="resume with the same options the run was started with; " + hint,
                )
            values = {key: archive[key] for key, _, _ in entries}
    except DataError:
        raise
    except (OSError, ValueError, KeyError) as error:
        raise DataError(
            f"cannot read the checkpoint: {error}", where=str(path), hint=hint
        ) from None
    for key, name, variable in entries:
        value = values[key]
        shape = tuple(variable.shape)
        if tuple(value.shape) != shape:
            raise DataError(
                f"variable {name} has shape {value.shape} in the checkpoint, {shape} here",
                where=str(path),
                hint=hint,
            )
        variable.assign(value)
