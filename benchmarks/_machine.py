"""The machine a benchmark ran on: CPU model and instruction sets, printed first.

Machines of the same kind differ several-fold in speed (AVX-512 or not), so no figure
is read without them; speed claims are ratios measured side by side in one run.
Every script in ``benchmarks/`` starts its output with :func:`print_machine`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

ISA_PREFIXES = ("sse4_2", "avx", "fma", "f16c", "amx")
"""The instruction-set flags that change how fast TensorFlow's kernels run."""


def describe_machine() -> list[str]:
    """CPU model, instruction sets, library versions and threading, one fact per line."""
    model, flags = platform.processor() or "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    isa = sorted(f for f in flags if f.startswith(ISA_PREFIXES))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import keras
    import tensorflow as tf

    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1 (default)")
    lines = [
        f"CPU: {model}, {cores} core(s) usable",
        f"instruction sets: {' '.join(isa) or 'unknown'}",
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"Python {platform.python_version()}",
        f"oneDNN: TF_ENABLE_ONEDNN_OPTS={onednn}; ONEDNN_MAX_CPU_ISA="
        f"{os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')}",
        "threads: intra-op "
        f"{os.environ.get('TF_NUM_INTRAOP_THREADS', 'default')}, inter-op "
        f"{os.environ.get('TF_NUM_INTEROP_THREADS', 'default')}",
    ]
    try:
        load = os.getloadavg()
        lines.append(f"load average at start: {load[0]:.1f} (other jobs share this machine)")
    except OSError:
        pass
    return lines


def print_machine() -> None:
    """The facts as '# ' lines, so that a table pasted from the output keeps them apart."""
    for line in describe_machine():
        print(f"# {line}")
    print()
