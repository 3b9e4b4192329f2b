"""Command-line options that several commands share, defined once so they read alike."""

from __future__ import annotations

import argparse
from typing import Any

DATASET_FORMAT_HELP = (
    "dataset layout: auto (detect), folder, ham10000, csv, isic-gt, or a plugin's dataset name"
)

DATASET_OPTION_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("classes", "--classes", "comma-separated class names, fixing their order (the label numbers)"),
    ("image_column", "--image-column", "(csv) column holding the image path or id"),
    ("label_column", "--label-column", "(csv) column holding the class name"),
    ("group_column", "--group-column", "(csv) column holding the lesion (group) id"),
    (
        "image_root",
        "--image-root",
        "(csv) folder the image paths are relative to (default: the CSV's folder)",
    ),
    (
        "image_dir",
        "--image-dir",
        "(isic-gt) folder of the ground-truth CSV's images (default: found beside it)",
    ),
    (
        "group_pattern",
        "--group-pattern",
        "(folder) regex whose first group, found in a file name, is its lesion id",
    ),
)
"""``(argparse dest = the dataset option it sets, flag, help)`` for every reader option
that the commands reading a dataset (``data inspect``, ``train``, ``evaluate``) offer."""


def add_dataset_options(
    parser: argparse.ArgumentParser,
    *,
    data_flag: bool = True,
    required: bool = False,
    format_default: str | None = "auto",
    hidden: bool = False,
) -> None:
    """``--data`` (optional), ``--format`` and the reader options, as one argument group.

    ``format_default=None`` lets a command tell an explicit ``--format`` from none
    (``train`` needs that to refuse changes on resume); ``hidden`` accepts the flags
    without listing them in ``--help``.
    """

    def shown(text: str) -> str:
        return argparse.SUPPRESS if hidden else text

    group = parser.add_argument_group("dataset")
    if data_flag:
        group.add_argument(
            "--data", required=required, metavar="PATH", help=shown("dataset folder or CSV file")
        )
    default_text = "auto" if format_default is None else format_default
    group.add_argument(
        "--format",
        default=format_default,
        help=shown(f"{DATASET_FORMAT_HELP} (default: {default_text})"),
    )
    for dest, flag, text in DATASET_OPTION_FLAGS:
        group.add_argument(flag, dest=dest, default=None, help=shown(text))


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """The reader options given on the command line, as keyword arguments."""
    return {
        dest: getattr(args, dest)
        for dest, _, _ in DATASET_OPTION_FLAGS
        if getattr(args, dest, None) is not None
    }


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


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """``--trust-model-code``: the explicit opt-in to load a model file that runs code."""
    parser.add_argument(
        "--trust-model-code",
        action="store_true",
        help="load a model.keras whose Lambda layers hold Python code (refused by default: "
        "only for files you made or trust)",
    )
