"""Command-line options that several commands share, defined once so they read alike."""

from __future__ import annotations

import argparse


def add_prediction_options(parser: argparse.ArgumentParser) -> None:
    """``--tta`` and ``--calibrated``, as ``evaluate`` and ``predict`` both offer them."""
    parser.add_argument(
        "--tta", action="store_true", help="average predictions over flips and quarter turns"
    )
    parser.add_argument(
        "--calibrated",
        action="store_true",
        help="apply the temperature fitted on the run's validation part",
    )
