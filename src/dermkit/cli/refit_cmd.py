"""``dermkit refit RUN --out NEW``: the run's recipe trained on train + validation.

See :mod:`dermkit.refit`: the source's best number of epochs at its learning rates,
scored on the same test part. Stops cleanly on SIGTERM / Ctrl-C like ``dermkit train``;
``dermkit resume NEW`` continues.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "refit",
        help="train a finished run's recipe again on its training and validation images",
        description=(
            "Train the recipe of a finished run from scratch on its training and "
            "validation images together, for the run's best number of epochs at the "
            "learning rates those epochs had, and score it on the same test part. The "
            "choices were made on validation by the source run; the refit makes none."
        ),
    )
    parser.add_argument("run", metavar="RUN", help="finished run folder (one training stage)")
    parser.add_argument("--out", required=True, metavar="NEW", help="run folder to create")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        metavar="M",
        help="wall-clock budget (continue with `dermkit resume NEW`); default: no budget",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dermkit.cli import stopping

    out = Path(args.out)
    return stopping.run_stoppable(out, lambda: _refit(args, out))


def _refit(args: argparse.Namespace, out: Path) -> int:
    from dermkit.refit import refit

    result = refit(args.run, out, max_minutes=args.max_minutes)
    print(f"run folder: {result.run_dir}")
    return 0
