"""Int8 export: top-1 agreement with the Keras model, min/max against percentile ranges.

Exports a finished run to int8 TFLite once per setting (the converter's min/max
ranges with the classifier quantised too, as before; min/max with the final dense
layer and softmax kept float, the default; then each ``--percentile``, classifier
float), all calibrated on the same training images, and prints for each the top-1
agreement with the run's Keras model and the largest probability difference on the
run's validation part and on its test part, and how many images have their two largest
exported probabilities tied (and how many of those disagree). Choose the setting on validation; the
test column is for reporting only.

    python benchmarks/int8_ranges.py --run runs/transfer-lite0/lite0-imagenet \\
        --percentile 99.99 --percentile 99.999

Prints the machine first (``_machine.py``), then one table. The export includes
dermkit's weight rounding and bias correction in every row, so the rows differ only
in the activation ranges and in whether the classifier is int8.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _entry import run
from _machine import print_machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished run folder")
    parser.add_argument(
        "--percentile", type=float, action="append", default=[], metavar="P", help="repeatable"
    )
    parser.add_argument("--calibration-images", type=int, default=200)
    parser.add_argument("--images", type=int, default=None, help="at most this many per part")
    args = parser.parse_args()
    print_machine()

    from dermkit.export import export_run, open_exported
    from dermkit.export.calibration import run_part
    from dermkit.runs import load_run

    loaded = load_run(args.run)
    parts = {}
    expected = {}
    for part in ("val", "test"):
        records = list(run_part(Path(args.run), part))[: args.images]
        parts[part] = loaded.images([r.path for r in records]).astype(np.float32)
        expected[part] = np.asarray(loaded.model.predict(parts[part], batch_size=32, verbose=0))
    sizes = ", ".join(f"{len(images)} {part}" for part, images in parts.items())
    print(f"# run: {args.run}, {loaded.settings.size} px, {sizes} images")
    print(
        "| activation ranges | export s | val top-1 agreement | val max abs diff "
        "| val top ties (disagreeing) | test top-1 agreement | test max abs diff "
        "| test top ties (disagreeing) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    workdir = Path(tempfile.mkdtemp(prefix="dermkit-int8-ranges-"))
    try:
        settings = [(None, False), (None, True)] + [(p, True) for p in args.percentile]
        for percentile, float_classifier in settings:
            name = "min/max (converter)" if percentile is None else f"percentile {percentile:g}"
            name += ", float classifier" if float_classifier else ", classifier int8 too"
            out = workdir / f"model-{percentile or 'minmax'}-{float_classifier}.tflite"
            started = time.perf_counter()
            export_run(
                loaded,
                "tflite",
                quantize="int8",
                out=out,
                calibration_images=args.calibration_images,
                check_images=0,
                activation_percentile=percentile,
                float_classifier=float_classifier,
            )
            seconds = time.perf_counter() - started
            exported = open_exported(out)
            cells = []
            for part, images in parts.items():
                got = exported.predict(images, batch_size=32)
                agrees = got.argmax(axis=1) == expected[part].argmax(axis=1)
                same = int(np.sum(agrees))
                share = f"{100 * same / len(images):.2f}% ({same}/{len(images)})"
                # images whose two largest exported probabilities are equal: argmax
                # then takes the lower class index, whatever the float model says
                top2 = np.sort(got, axis=1)[:, -2:]
                tied = top2[:, 0] == top2[:, 1]
                ties = f"{int(tied.sum())} ({int((tied & ~agrees).sum())})"
                cells += [share, f"{np.max(np.abs(got - expected[part])):.3f}", ties]
            print(f"| {name} | {seconds:.0f} | " + " | ".join(cells) + " |", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    run(main)
