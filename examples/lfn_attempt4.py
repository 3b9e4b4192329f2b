"""The DermNet study's LFN attempt 4: two Dense 512 layers with Dropout 0.5, Adamax, batch 16,
75 epochs, class weights (majority 1.0) and augmentation.

    python examples/lfn_attempt4.py --data /path/to/ham10000     # or set DERMKIT_HAM10000
    python examples/lfn_attempt4.py --epochs 1 --limit 200

The second line is a smoke run. ``--help`` lists every option; study.py holds the settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import study


def main(argv: Sequence[str] | None = None) -> int:
    return study.run_attempt("lfn_attempt4", argv)


if __name__ == "__main__":
    sys.exit(main())
