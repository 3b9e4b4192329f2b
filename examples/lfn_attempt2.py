"""The DermNet study's LFN attempt 2: base LFN, Adamax, batch 32, 50 epochs, equal random
draws per class in every batch, scored on a balanced test.

    python examples/lfn_attempt2.py --data /path/to/ham10000     # or set DERMKIT_HAM10000
    python examples/lfn_attempt2.py --epochs 1 --limit 200

The second line is a smoke run. ``--help`` lists every option; study.py holds the settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import study


def main(argv: Sequence[str] | None = None) -> int:
    return study.run_attempt("lfn_attempt2", argv)


if __name__ == "__main__":
    sys.exit(main())
