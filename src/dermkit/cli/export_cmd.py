"""``dermkit export``: a finished run's model as TFLite, SavedModel or ONNX.

The export carries the run's class names and image settings, so ``dermkit predict``
and ``dermkit evaluate`` take it in place of the run folder. After writing, the export
is loaded back and compared with the Keras model on some of the run's validation
images, and the agreement is printed: a quantised model that disagrees is seen at once.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dermkit.errors import ConfigError


def register(subparsers: Any) -> None:
    from dermkit.export.calibration import DEFAULT_COUNT
    from dermkit.export.exporter import DEFAULT_CHECK_IMAGES
    from dermkit.export.info import FORMATS, QUANTIZATIONS

    parser = subparsers.add_parser(
        "export",
        help="export a finished run's model to TFLite, SavedModel or ONNX",
        description=(
            "Write the best model of a run folder in a deployable format, with its class "
            "names and image settings inside and in a <name>.dermkit.json file beside it."
        ),
    )
    parser.add_argument("run", metavar="RUN", help="run folder written by `dermkit train`")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default=None,
        help="(tflite) float16 weights, or int8 calibrated on the run's training images",
    )
    parser.add_argument(
        "--out",
        help="file (or SavedModel folder) to write (default: RUN/export/model[-QUANTIZE].FORMAT)",
    )
    parser.add_argument(
        "--calibration-images",
        type=int,
        default=DEFAULT_COUNT,
        metavar="N",
        help=f"(int8) training images to calibrate on (default {DEFAULT_COUNT})",
    )
    parser.add_argument(
        "--activation-percentile",
        type=float,
        default=None,
        metavar="P",
        help="(int8) each activation's range covers this percentile of its calibration "
        "values at either end (e.g. 99.99) instead of their min and max",
    )
    parser.add_argument(
        "--int8-classifier",
        action="store_true",
        help="(int8) quantise the final dense layer and softmax too; by default they stay "
        "float, since int8 probabilities within 1/256 of each other tie",
    )
    parser.add_argument(
        "--check-images",
        type=int,
        default=DEFAULT_CHECK_IMAGES,
        metavar="N",
        help=f"validation images to compare with the Keras model (default "
        f"{DEFAULT_CHECK_IMAGES}; 0 skips the check)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dermkit.export.exporter import export_run
    from dermkit.export.info import sidecar_path

    if args.check_images < 0:
        raise ConfigError(f"--check-images must be 0 or more, got {args.check_images}")
    result = export_run(
        args.run,
        args.format,
        quantize=args.quantize,
        out=args.out,
        calibration_images=args.calibration_images,
        check_images=args.check_images,
        activation_percentile=args.activation_percentile,
        float_classifier=not args.int8_classifier,
    )
    print(f"dermkit: wrote {result.path}")
    print(f"dermkit: wrote {sidecar_path(result.path)}")
    if result.calibration_images:
        print(
            f"dermkit: int8 ranges calibrated on {result.calibration_images} training image(s); "
            f"{result.corrected_layers} layer(s) rounded to minimise their output error, "
            "with bias correction"
            + (
                f"; activation ranges at the {args.activation_percentile:g}th percentile"
                if args.activation_percentile is not None
                else ""
            )
            + (
                ""
                if args.int8_classifier
                else "; the final dense layer and softmax (if the model ends in them) kept float"
            )
        )
    if result.check is not None:
        print(f"dermkit: {result.check.line()}")
    elif args.check_images:
        print(
            "dermkit: not compared with the Keras model: the run's images are not readable here",
            file=sys.stderr,
        )
    return 0
