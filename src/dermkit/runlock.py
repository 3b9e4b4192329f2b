"""One writer per run folder: a second run into the same ``--out`` is refused.

Two processes training into one folder would overwrite each other's checkpoints and
``state.json`` and leave a run folder that describes neither run. :func:`hold` takes
an exclusive ``flock`` on ``<run>/.dermkit-run.lock`` for as long as a run writes
there. The kernel drops the lock when its process dies, however it dies, so the lock
file of a ``kill -9``-ed run never blocks the run that resumes it; the file itself is
removed when a run ends normally. The file holds the owner's pid and host, for the
message a refused run shows.

On systems without ``fcntl`` (Windows) no lock is taken.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from dermkit import atomic
from dermkit.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".dermkit-run.lock"


class RunFolderBusy(ConfigError):
    """Another live process is writing the same run folder."""


@contextlib.contextmanager
def hold(run_dir: str | Path) -> Iterator[None]:
    """Hold the run folder's lock, creating the folder if needed; refuse a busy one.

    A folder this call created is removed again if nothing but the lock was put into
    it (a run that failed on its inputs leaves nothing behind).
    """
    folder = Path(run_dir)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise atomic.cannot_write(folder, error) from error
    path = folder / LOCK_FILE
    fd = _acquire(path) if fcntl is not None else None
    try:
        yield
    finally:
        if fd is not None:
            path.unlink(missing_ok=True)  # before unlocking: see _acquire
            os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


def _acquire(path: Path) -> int:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise atomic.cannot_write(path, error) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"another dermkit process ({owner}) is writing this run folder",
                where=str(path.parent),
                hint="wait for it to finish (or stop it), or choose another --out folder: "
                "two runs in one folder would overwrite each other's checkpoints",
            ) from None
        # A finishing owner unlinks the file before unlocking it; if we locked that
        # unlinked file, the lock guards nothing: open the path again.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    os.write(fd, (json.dumps(me) + "\n").encode())
    return fd


def _owner(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {data['pid']} on {data['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"
