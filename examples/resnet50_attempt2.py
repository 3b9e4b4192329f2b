"""The DermNet study's ResNet50 attempt 2: as attempt 1 with Dense 128 and the last 10
layers trainable.

    python examples/resnet50_attempt2.py --data /path/to/ham10000     # or set DERMKIT_HAM10000
    python examples/resnet50_attempt2.py --epochs 1 --limit 200 --image-size 75 --weights none

The second line is a smoke run. ``--help`` lists every option; study.py holds the settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import study


def main(argv: Sequence[str] | None = None) -> int:
    return study.run_attempt("resnet50_attempt2", argv)


if __name__ == "__main__":
    sys.exit(main())
