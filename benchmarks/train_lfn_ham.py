"""Real training run: LFN with class weights and augmentation at 128×128 on HAM10000.

``--balancers none`` trains the unbalanced baseline with everything else the same;
``--stem resnet`` (or ``strided``) trains the faster trunk of the same parameter count.

Trains for up to ``--minutes`` of wall-clock time (default 60) on the shared HAM10000
working set, with a lesion-grouped 70/15/15 split, and prints the validation and test
figures and the seconds per epoch. The model is selected on the validation split only;
the test figures are reported, never tuned on.

    DERMKIT_HAM10000=/path/to/ham10000 python benchmarks/train_lfn_ham.py --out runs/bench-lfn128
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _entry import run
from _machine import print_machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("DERMKIT_HAM10000"))
    parser.add_argument("--out", default="runs/bench-lfn128")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", default="adamax")
    parser.add_argument(
        "--stem",
        default="full",
        choices=("full", "strided", "resnet"),
        help="LFN trunk (same parameter counts; see docs/performance.md)",
    )
    parser.add_argument(
        "--balancers",
        default="class_weights,augment",
        help="comma-separated balancer names, or 'none' for the unbalanced baseline",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue a run, or reprint a finished one's figures"
    )
    args = parser.parse_args()
    if not args.data:
        print("set DERMKIT_HAM10000 or pass --data: the HAM10000 folder is needed", file=sys.stderr)
        return 2
    print_machine()

    from dermkit import HAM10000, Experiment, Training
    from dermkit.config import build_component
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.models.lfn import LFN

    experiment = Experiment(
        data=HAM10000(args.data),
        split=GroupedStratifiedSplit(val=0.15, test=0.15, seed=0),
        model=LFN(stem=args.stem),
        balancer=[
            build_component("balancers", name.strip())
            for name in args.balancers.split(",")
            if name.strip() and name.strip() != "none"
        ],
        training=Training(
            optimizer=args.optimizer,
            learning_rate=args.lr,
            schedule="plateau",
            epochs=args.epochs,
            batch_size=args.batch_size,
            early_stopping=8,
            max_minutes=args.minutes,
            verbose=2,
        ),
        image_size=args.image_size,
    )
    started = time.perf_counter()
    result = experiment.run(args.out, resume=args.resume)
    summary = json.loads((Path(args.out) / "summary.json").read_text())
    print()
    print(
        f"LFN {args.image_size}x{args.image_size} (stem {args.stem}), "
        f"balancers: {args.balancers}, HAM10000"
    )
    print(f"epochs trained:          {summary['epochs']}")
    print(f"seconds per epoch:       {summary['seconds_per_epoch']:.1f} (mean)")
    seconds = sorted(result.history.get("epoch_seconds", []))
    if seconds:
        print(f"                         {seconds[len(seconds) // 2]:.1f} (median)")
    print(f"wall-clock total:        {time.perf_counter() - started:.0f} s")
    for part in ("val", "test"):
        figures = result.metrics.get(part, {})
        shown = "  ".join(f"{k}={v:.3f}" for k, v in figures.items() if isinstance(v, float))
        print(f"{part:<5} {shown}")
    return 0


if __name__ == "__main__":
    run(main)
