"""Test-time augmentation from stored frozen-prefix activations against the whole model.

    python benchmarks/tta_speed.py --run RUN [--part val] [--images 512] [--rounds 2]

``RUN`` is a run trained on cached activations (e.g. a fold of ``cv_ham.py``), so its
training stored eight views of the images it trained on; with ``--part`` naming a part
whose views are stored too (in ``cv_ham.py``, a fold's ``val`` images are other folds'
training images), the tail alone scores them. Two arms, alternated for ``--rounds``
rounds on the same images so other jobs on the machine slow both alike:

- ``pixels``: ``LoadedRun.predict(..., tta=True, feature_cache=False)``, eight passes of
  the whole network per image (what every release before this one did);
- ``stored views``: ``LoadedRun.predict(..., tta=True)``, the tail on the stored views
  where they exist, the pixel path for the rest.

Prints the machine, the number of images found in the cache, seconds and images/s of
each arm (median over rounds), the speed ratio, the largest probability difference and
top-1 agreement between the arms.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _entry import run
from _machine import print_machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a run folder trained on cached features")
    parser.add_argument("--part", default="val", help="part of the run's split.csv to score")
    parser.add_argument("--images", type=int, default=512, help="first N images of the part")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print_machine()

    from dermkit.errors import DataError
    from dermkit.evaluation.tta import PRESETS
    from dermkit.features.predict import predict_cached, stored_tail
    from dermkit.runs import load_run

    loaded = load_run(args.run)
    split = Path(args.run) / "split.csv"
    if not split.exists():
        raise DataError("no split.csv in the run folder", where=str(split))
    with open(split, newline="", encoding="utf-8") as handle:
        paths = [row["path"] for row in csv.DictReader(handle) if row["part"] == args.part]
    paths = paths[: args.images]
    if not paths:
        raise DataError(f"no {args.part!r} images in the split", where=str(split))
    tail = stored_tail(loaded.model, loaded.loader())
    found = None if tail is None else predict_cached(tail, paths, PRESETS["dihedral"])
    stored = 0 if found is None else int(found.found.sum())
    print(f"{len(paths)} {args.part} images of {loaded.name}; all 8 views stored for {stored}")

    seconds: dict[str, list[float]] = {"pixels": [], "stored views": []}
    outputs: dict[str, np.ndarray] = {}
    for round_ in range(args.rounds):
        order = list(seconds) if round_ % 2 == 0 else list(reversed(seconds))
        for arm in order:
            started = time.perf_counter()
            outputs[arm] = loaded.predict(
                paths, tta=True, progress=False, feature_cache=arm == "stored views"
            )
            seconds[arm].append(time.perf_counter() - started)
    print("\n| arm | seconds (median) | images/s |")
    print("|---|---:|---:|")
    for arm, times in seconds.items():
        median = statistics.median(times)
        print(f"| {arm} | {median:.1f} | {len(paths) / median:.1f} |")
    ratio = statistics.median(seconds["pixels"]) / statistics.median(seconds["stored views"])
    difference = float(np.abs(outputs["pixels"] - outputs["stored views"]).max())
    agree = float(np.mean(outputs["pixels"].argmax(1) == outputs["stored views"].argmax(1)))
    print(
        f"\nspeed-up {ratio:.1f}x; largest probability difference {difference:.1e}; "
        f"top-1 agreement {agree:.4f}"
    )
    return 0


if __name__ == "__main__":
    run(main)
