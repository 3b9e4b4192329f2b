"""The DermNet study's LFN attempt 1: base LFN (Flatten, Dense 512), Adam, batch 32, 25 epochs,
class weights with the majority class at 1.0.

    python examples/lfn_attempt1.py --data /path/to/ham10000     # or set DERMKIT_HAM10000
    python examples/lfn_attempt1.py --epochs 1 --limit 200

The second line is a smoke run. ``--help`` lists every option; study.py holds the settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import study


def main(argv: Sequence[str] | None = None) -> int:
    return study.run_attempt("lfn_attempt1", argv)


if __name__ == "__main__":
    sys.exit(main())
