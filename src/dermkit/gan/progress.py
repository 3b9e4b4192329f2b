"""A progress line with rate and ETA that behaves in a terminal and in a log file.

On a terminal the line redraws in place (``\\r``); anywhere else (a log file, CI, a
``nohup`` run) it prints one full line every ``every`` steps, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """``update(step, values)`` after each step; ``close()`` at the end.

    The rate is measured over the steps of this process only (a resumed run does not
    count the steps it inherited), and the ETA is the remaining steps at that rate.
    """

    def __init__(
        self,
        total: int,
        start: int = 0,
        *,
        every: int = 50,
        stream: TextIO | None = None,
        enabled: bool = True,
        width: int = 24,
    ) -> None:
        self.total = total
        self.start = start
        self.every = max(1, every)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.started = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self._drawn = False

    def rate(self, step: int) -> float:
        elapsed = time.perf_counter() - self.started
        done = step - self.start
        return done / elapsed if elapsed > 0 and done > 0 else 0.0

    def line(self, step: int, values: Mapping[str, float]) -> str:
        rate = self.rate(step)
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        shown = " ".join(f"{k} {v:.3f}" for k, v in values.items())
        filled = int(self.width * step / max(1, self.total))
        bar = "#" * filled + "." * (self.width - filled)
        eta_text = format_seconds(eta) if eta == eta else "--:--"
        return (
            f"step {step}/{self.total} [{bar}] {rate:.2f} steps/s ETA {eta_text}  {shown}".rstrip()
        )

    def update(self, step: int, values: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        if self.interactive:
            self.stream.write("\r" + self.line(step, values) + "\x1b[K")
            self._drawn = True
        elif step % self.every == 0 or step == self.total:
            self.stream.write(self.line(step, values) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line without garbling the progress line."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
