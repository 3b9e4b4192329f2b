"""``dermkit demo``: the whole flow on a small synthetic dataset, no download needed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole flow on generated synthetic images (a few minutes on 2 CPU cores)",
        description=(
            "Generate a small SYNTHETIC dataset of lesion-like drawings (not medical images), "
            "then split, balance, train a small LFN and evaluate it."
        ),
    )
    parser.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dermkit.balancers.augment import Augment
    from dermkit.balancers.class_weights import ClassWeights
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.demo import make_demo_dataset
    from dermkit.experiment import Experiment
    from dermkit.models.lfn import LFN
    from dermkit.training.config import Training

    started = time.perf_counter()
    out = Path(args.out)
    if (out / "config.json").exists():  # never overwrite an earlier demo run
        out = out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    data_dir = Path(args.out).parent / "demo-synthetic-data"
    if not data_dir.exists():
        make_demo_dataset(data_dir, size=args.image_size, seed=args.seed)
    print(f"synthetic demo images (not medical data): {data_dir}")
    experiment = Experiment(
        data=ImageFolder(data_dir),
        split=GroupedStratifiedSplit(val=0.2, test=0.2, seed=args.seed),
        model=LFN(),
        balancer=[ClassWeights(), Augment(recipes=("flip", "rotate90"))],
        training=Training(
            optimizer="adam",
            learning_rate=1e-3,
            epochs=args.epochs,
            batch_size=16,
            seed=args.seed,
            verbose=2 if args.quiet else 1,
        ),
        image_size=args.image_size,
        cache_dir=str(Path(args.out).parent / "demo-cache"),
    )
    result = experiment.run(out)
    test = result.metrics.get("test", {})
    print(f"run folder: {result.run_dir}")
    if "balanced_accuracy" in test:
        print(f"test balanced accuracy (synthetic data): {test['balanced_accuracy']:.3f}")
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0
