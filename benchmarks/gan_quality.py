"""How good is a trained generator? KID, FID and C2ST per class, next to their references.

For each generator run given, the averaged generator draws as many images per class as
the class has real training images; their ImageNet features (EfficientNet-Lite0, from
``DERMKIT_WEIGHTS``) are compared with those of the real images. Every figure is
printed next to its references computed in the same run on the same images: the
real-vs-real floor (two disjoint halves of the real images), a blur ceiling (the real
images blurred) and a noise ceiling (uniform noise). The summary prints KID as a
fraction of each ceiling, the ratios that can be compared across machines and runs.
Several runs side by side (e.g. a baseline recipe and a new one) use the same real
images, features and seed.

    DERMKIT_WEIGHTS=/path/to/weights python benchmarks/gan_quality.py gans/rare gans/rare2

The table is also written to each run's quality.md / quality.json (as
``dermkit gan evaluate`` does: both call :func:`dermkit.gan.assess.assess_generator`).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _entry import run
from _machine import print_machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="generator run folders (dermkit gan train --out)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--features", default="auto", help="auto, lite0 or classifier")
    parser.add_argument("--classifier", default=None, help="classifier run for its features")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)

    from dermkit.gan.assess import assess_generator

    print_machine()
    summary: list[str] = []
    for folder in args.runs:
        report = assess_generator(
            folder,
            features=args.features,
            classifier=args.classifier,
            seed=args.seed,
            cache_dir=args.cache_dir,
            say=lambda message: print(message, file=sys.stderr),
        )
        print(
            f"\n## {folder} (generator of step {report.generator_step}; {report.seconds:.0f} s)\n"
        )
        print(report.table, end="")
        for row in report.rows:
            summary.append(
                f"| {folder} | {report.generator_step} | {row.name} | {row.kid * 1e3:.1f} "
                f"| {row.kid_floor * 1e3:.1f} ± {row.kid_floor_std * 1e3:.1f} "
                f"| {_ratio(row.kid, row.kid_blur)} | {_ratio(row.kid, row.kid_noise)} "
                f"| {row.c2st:.2f} |"
            )
    print("\nKID ×10³ against its references (same real images, features and seed):\n")
    print("| run | step | class | KID | floor ± std | KID / blur | KID / noise | C2ST |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    print("\n".join(summary))
    return 0


def _ratio(value: float, reference: float) -> str:
    return "n/a" if not reference or math.isnan(reference) else f"{value / reference:.2f}"


if __name__ == "__main__":
    run(main)
