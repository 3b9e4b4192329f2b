"""How well the grouped split keeps class shares on HAM10000, per seed and per part.

Prints, for each seed, the largest gap (in percentage points) between a class's share of
images in a part and its share overall, and checks that no lesion is in two parts.

    DERMKIT_HAM10000=/path/to/ham10000 python benchmarks/split_quality.py --seeds 20
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _entry import run
from _machine import print_machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("DERMKIT_HAM10000"))
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1")
    parser.add_argument("--val", type=float, default=0.15)
    parser.add_argument("--test", type=float, default=0.15)
    args = parser.parse_args()
    if not args.data:
        print("set DERMKIT_HAM10000 or pass --data: the HAM10000 folder is needed", file=sys.stderr)
        return 2
    print_machine()

    from dermkit.data.ham10000 import HAM10000
    from dermkit.data.splits import GroupedStratifiedSplit, leaked_groups

    loaded = HAM10000(args.data, verify=False).load()
    total = loaded.counts()
    n = sum(total)
    print(
        f"{n:,} images, {len(loaded.classes)} classes; split {1 - args.val - args.test:.2f}"
        f"/{args.val:.2f}/{args.test:.2f}"
    )
    print("seed  train pp  val pp  test pp  leaked lesions")
    worst = 0.0
    for seed in range(args.seeds):
        split = GroupedStratifiedSplit(val=args.val, test=args.test, seed=seed).split(
            loaded.records, loaded.classes
        )
        gaps = []
        for records in (split.train, split.val, split.test):
            counts = [0] * len(loaded.classes)
            for record in records:
                counts[record.label] += 1
            size = max(1, len(records))
            gaps.append(
                max(abs(c / size - t / n) * 100 for c, t in zip(counts, total, strict=True))
            )
        worst = max(worst, *gaps)
        leaked = sum(len(v) for v in leaked_groups(split).values())
        print(f"{seed:>4}  {gaps[0]:>8.3f}  {gaps[1]:>6.3f}  {gaps[2]:>7.3f}  {leaked:>14}")
    print(f"largest gap over all seeds and parts: {worst:.3f} percentage points")
    return 0


if __name__ == "__main__":
    run(main)
