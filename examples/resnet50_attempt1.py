"""The DermNet study's ResNet50 attempt 1: ImageNet weights, last 4 layers trainable,
Flatten, Dense 256, Dropout 0.4, Adam, batch 32, 25 epochs, class weights (majority 1.0).

    python examples/resnet50_attempt1.py --data /path/to/ham10000     # or set DERMKIT_HAM10000
    python examples/resnet50_attempt1.py --epochs 1 --limit 200 --image-size 75 --weights none

The second line is a smoke run. ``--help`` lists every option; study.py holds the settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import study


def main(argv: Sequence[str] | None = None) -> int:
    return study.run_attempt("resnet50_attempt1", argv)


if __name__ == "__main__":
    sys.exit(main())
