"""Atomic file writes: a crash or ``kill -9`` mid-write never leaves a half-written artifact.

Every run artifact is written to a temporary file in the same folder and moved into
place with :func:`os.replace`, which is atomic on POSIX and Windows file systems. A
reader therefore sees either the old complete file or the new complete file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dermkit.errors import ConfigError, DermkitError, OutputError

TEMP_MARKER = ".dermkit-tmp-"
"""Part of every temporary file's name, so leftovers of a killed process can be found."""


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete temporary files that a killed writer left under ``folder``; return how many.

    Only call this when no other process writes into ``folder`` (e.g. on resume).
    """
    removed = 0
    for leftover in Path(folder).rglob(f".*{TEMP_MARKER}*"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it onto ``target`` on success.

    The temporary file keeps ``target``'s extension (or ``suffix``), since some writers
    pick the format from it (Keras wants ``.keras``, matplotlib ``.png``).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}{TEMP_MARKER}",
            suffix=suffix or target.suffix or ".tmp",
            dir=target.parent,
        )
    except OSError as error:
        raise cannot_write(target, error) from error
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; run artifacts are meant to be shared
        os.replace(tmp, target)
    except OSError as error:
        raise cannot_write(target, error) from error
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


FULL_DISK = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def cannot_write(target: str | Path, error: OSError) -> OutputError:
    """An :class:`OutputError` naming ``target`` and saying what to do about ``error``.

    The target keeps its previous complete content (or stays absent): the write went
    to a temporary file that was removed.
    """
    reason = error.strerror or str(error)
    if error.errno in FULL_DISK:
        hint = "the disk is full: free some space (or write to another disk) and try again"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "the folder is not writable: choose a folder you can write to"
    elif error.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = "a file stands where a folder is needed: choose another output folder"
    else:
        hint = "check the disk and the folder, then try again"
    return OutputError(
        f"cannot write {Path(target).name}: {reason} (what was written before is complete)",
        where=str(target),
        hint=hint,
    )


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_json(target: str | Path, data: Any) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_state(path: Path, *, hint: str, error: type[DermkitError] = ConfigError) -> Any:
    """A JSON state file written by :func:`write_json`, or ``None`` when there is none.

    An unreadable one is ``error`` naming the file, with ``hint`` saying what to do.
    """
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as problem:
        raise error(
            f"cannot read the training state: {problem}", where=str(path), hint=hint
        ) from None


def write_with(
    target: str | Path, writer: Callable[[Path], None], suffix: str | None = None
) -> None:
    """Let ``writer`` fill a temporary path, then move it onto ``target``."""
    with atomic_path(target, suffix=suffix) as tmp:
        writer(tmp)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
