"""The machine a benchmark ran on: CPU model and instruction sets, printed first.

Machines of the same kind differ several-fold in speed (AVX-512 or not), so no figure
is read without them; speed claims are ratios measured side by side in one run.
"""

from __future__ import annotations

import os
import platform


def describe_machine() -> str:
    model = platform.processor() or "unknown CPU"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name") and model in ("", "unknown CPU", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = sorted(f for f in flags if f.startswith(("avx", "fma", "f16c", "amx", "sse4")))
    return f"CPU: {model}, {os.cpu_count()} cores; instruction sets: {' '.join(wanted) or '?'}"
