"""Decode every image once, in parallel, to find the corrupt ones before training does.

A model that meets a truncated JPEG in epoch 12 either crashes hours into a run or,
worse, trains on a half-grey picture. Verifying at load time turns each such file
into one line of the skipped-file report instead. OpenCV releases the GIL while it
decodes, so a thread pool uses every core without the cost of processes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from dermkit.data.images import DEFAULT_MAX_PIXELS, read_image
from dermkit.errors import DataError


def default_workers() -> int:
    """Threads for decoding: twice the usable cores (file reads overlap decodes), at most 16."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(16, 2 * cores))


class Progress:
    """A progress counter with rate and time left, for slow jobs only.

    On a terminal's stderr it is one ``\\r`` line redrawn in place, once the job has
    run for ``delay`` seconds. Anywhere else (a log file, ``nohup``, CI) it writes a
    full line every ``log_every`` seconds instead, so a background job that computes
    features for half an hour says how far it is without flooding its log; jobs
    shorter than that write nothing. ``enabled=False`` silences it, ``True`` forces
    the terminal form.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        enabled: bool | None = None,
        delay: float = 1.0,
        log_every: float = 60.0,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.log_every = log_every
        self.logging = False
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
            self.logging = not enabled
        self.enabled = enabled
        self.label = label
        self.total = total
        self.done = 0
        self.delay = delay
        self._start = time.monotonic()
        self._last = self._start
        self._shown = False

    def _status(self, now: float) -> str:
        """``label: done/total (rate/s, m:ss left)``; the rate is over the whole job."""
        line = f"{self.label}: {self.done:,}/{self.total:,}"
        elapsed = now - self._start
        if self.done and elapsed > 0 and self.done < self.total:
            rate = self.done / elapsed
            left = int((self.total - self.done) / rate)
            line += f" ({rate:.1f}/s, {left // 60}:{left % 60:02d} left)"
        return line

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.logging:
            if now - self._last >= self.log_every and self.done < self.total:
                self._last = now
                self._shown = True
                self.stream.write(self._status(now) + "\n")
                self.stream.flush()
            return
        if not self.enabled:
            return
        if now - self._start < self.delay or (now - self._last < 0.1 and self.done < self.total):
            return
        self._last = now
        self._shown = True
        self.stream.write(f"\r{self._status(now)}")
        self.stream.flush()

    def close(self) -> None:
        if not self._shown:
            return
        start = "" if self.logging else "\r"
        self.stream.write(f"{start}{self.label}: {self.done:,}/{self.total:,} done\n")
        self.stream.flush()


def _check(path: Path, max_pixels: int) -> DataError | None:
    try:
        read_image(path, max_pixels)
    except DataError as error:
        return error
    return None


def verify_images(
    paths: Sequence[Path],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    progress: bool | None = None,
    stop_at_first: bool = False,
) -> list[tuple[int, DataError]]:
    """Fully decode each image; return ``(position, error)`` for each one that fails.

    Results come in the order of ``paths``. With ``stop_at_first`` the first failure
    (in that order) ends the work early, for ``strict`` loading.
    """
    failures: list[tuple[int, DataError]] = []
    if not paths:
        return failures
    meter = Progress("verifying images", len(paths), enabled=progress)
    pool = ThreadPoolExecutor(max_workers=workers or default_workers())
    try:
        for position, error in enumerate(pool.map(lambda p: _check(p, max_pixels), paths)):
            meter.update()
            if error is not None:
                failures.append((position, error))
                if stop_at_first:
                    break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        meter.close()
    return failures
