"""The DermNet study's LFN attempt 3: LFN with an extra Dropout layer, Adamax, batch 16,
50 epochs, class weights (majority 1.0) and augmentation.

    python examples/lfn_attempt3.py --data /path/to/ham10000     # or set DERMKIT_HAM10000
    python examples/lfn_attempt3.py --epochs 1 --limit 200

The second line is a smoke run. ``--help`` lists every option; study.py holds the settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import study


def main(argv: Sequence[str] | None = None) -> int:
    return study.run_attempt("lfn_attempt3", argv)


if __name__ == "__main__":
    sys.exit(main())
