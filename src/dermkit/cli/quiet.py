"""Keep TensorFlow's start-up noise off the terminal (``--debug`` shows it again).

Importing TensorFlow on a machine without a GPU prints a dozen lines about CUDA
drivers, cuInit, CPU instruction sets and absl's log initialisation. None of them is
about the user's run, and they bury dermkit's own messages. Some come from TF's C++
logging (silenced by ``TF_CPP_MIN_LOG_LEVEL``), others from absl's C++ logging before it
is initialised, which no setting reaches. So the first ``import tensorflow`` (whenever
a command gets to it; commands that never need TensorFlow never pay for it) runs with
the process's stderr file descriptor captured, the devices are initialised inside the
same capture (that is where the cuInit error comes from), and every captured line that
is not known noise is written back to stderr, so a real error is never swallowed.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

NOISE: tuple[re.Pattern[str], ...] = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "),  # C++ info and warnings
    re.compile(
        r"^E\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*"
        r"(cuInit|CUDA|cuda|cuDNN|cuFFT|cuBLAS|TensorRT|Unable to register)"
    ),
    re.compile(r"^To enable the following instructions: .* rebuild TensorFlow"),
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] tensorflow/"),  # older TF format
)
"""Lines that TensorFlow prints at start-up and that say nothing about a dermkit run."""

TF_LOG_LEVEL = "2"
"""``TF_CPP_MIN_LOG_LEVEL``: hide C++ info and warnings, keep errors."""


def is_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in NOISE)


def without_noise(lines: Sequence[str]) -> list[str]:
    return [line for line in lines if line.strip() and not is_noise(line)]


@contextlib.contextmanager
def captured_stderr_fd() -> Iterator[list[str]]:
    """Capture everything written to file descriptor 2; the lines are in the list after."""
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep quiet
        yield lines
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", "replace").splitlines())


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader with stderr captured, then replays the real lines."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        lines: list[str] = []
        try:
            with captured_stderr_fd() as lines:
                self.inner.exec_module(module)
                with contextlib.suppress(Exception):  # the CUDA probe; failures are the noise
                    module.config.list_physical_devices()
        finally:  # also when the import fails: its own messages must be seen
            for line in without_noise(lines):
                print(line, file=sys.stderr)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` like the rest of ``sys.meta_path``, with a quiet loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        remove_finder(self)  # once is enough, and find_spec below must not come back here
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def remove_finder(finder: object) -> None:
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(finder)  # type: ignore[arg-type]


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Within this block, TensorFlow starts without its noise (if it is imported here)."""
    previous = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    try:
        from absl import logging as absl_logging  # comes with TensorFlow

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl-py is a TensorFlow dependency
        pass
    finder = _QuietImport() if "tensorflow" not in sys.modules else None
    if finder is not None:
        sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if finder is not None:
            remove_finder(finder)
        if previous is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = previous
