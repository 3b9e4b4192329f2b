"""Does GAN oversampling help? The same classifier, three ways, on the same split.

Arms (each trained with ``--seeds``, at least three; the split is the generator's, so
its leakage check passes and every arm sees the same training, validation and test
images):

- ``augment``: augmentation only (no oversampling),
- ``oversample``: plain oversampling of the GAN's classes to the same target, plus
  augmentation,
- ``gan``: GAN oversampling (``gan_oversampling``) to the same target, plus augmentation.

Printed per arm: test balanced accuracy and the test recall of each GAN class, as the
mean over seeds with a 95% t-interval, and the paired difference to ``augment`` (same
seed, same split) with its interval. The CPU model and its instruction sets come first,
so figures from different machines are not compared by mistake.

    DERMKIT_HAM10000=/path/to/ham10000 python benchmarks/gan_benefit.py \\
        --generator gans/rare --out runs/gan-benefit --seeds 0 1 2 --epochs 20

``--smoke`` runs the whole path in a few minutes on a generated toy dataset and a tiny
GAN (its numbers mean nothing); it is what CI and reviewers run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from dermkit.core import BalanceContext, ClassIndex, Record, TrainingPlan

sys.path.insert(0, str(Path(__file__).parent))
from _entry import run
from _machine import print_machine

ARMS: tuple[str, ...] = ("augment", "oversample", "gan")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228}  # fmt: skip
"""Two-sided 95% quantiles of Student's t by degrees of freedom (1.96 beyond 10)."""


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (``nan`` half-width for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    t = T_975.get(len(values) - 1, 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def scores(run_dir: Path, classes: Any, rare: Sequence[str]) -> dict[str, float]:
    """Test balanced accuracy and per-class recall, from the run's saved predictions."""
    import numpy as np

    from dermkit.data.splits import read_split_manifest

    split = read_split_manifest(run_dir / "split.csv")
    labels = np.asarray([r.label for r in split.test])
    predicted = np.load(run_dir / "probabilities_test.npy").argmax(axis=1)
    recalls = {
        classes.name(c): float(np.mean(predicted[labels == c] == c))
        for c in sorted(set(labels.tolist()))
    }
    out = {"balanced_accuracy": float(np.mean(list(recalls.values())))}
    out.update({f"recall_{name}": recalls[name] for name in rare if name in recalls})
    return out


def balancers(arm: str, generator: Path, target: float, rare: Sequence[str]) -> list[Any]:
    from dermkit.balancers.augment import Augment
    from dermkit.balancers.gan_oversampling import GanOversampling

    if arm == "augment":
        return [Augment()]
    if arm == "oversample":
        return [RareOversample(ratio=target, classes=tuple(rare)), Augment()]
    return [
        GanOversampling(generator=str(generator), target=target, classes=tuple(rare)),
        Augment(),
    ]


@attrs.frozen
class RareOversample:
    """Plain oversampling of the GAN's classes only, to the GAN arm's target counts.

    Like :class:`dermkit.balancers.oversample.Oversample` (seeded repeats, every record
    used ``m`` or ``m + 1`` times), but limited to ``classes``, so that the two arms
    differ only in where the extra images come from.
    """

    name: ClassVar[str] = "oversample_rare"
    ratio: float
    classes: tuple[str, ...]

    def apply(self, plan: TrainingPlan, context: BalanceContext) -> TrainingPlan:
        import numpy as np

        rng = np.random.default_rng(context.seed)
        counts = Counter(r.label for r in plan.records)
        target = round(max(counts.values()) * self.ratio)
        added: list[Record] = []
        changes = []
        for name in self.classes:
            label = context.classes.index(name)
            members = [r for r in plan.records if r.label == label]
            missing = target - len(members)
            if missing <= 0 or not members:
                continue
            full, rest = divmod(missing, len(members))
            added += members * full + [members[i] for i in rng.permutation(len(members))[:rest]]
            changes.append(f"{name} +{missing}")
        note = f"oversample_rare (ratio {self.ratio}): {', '.join(changes) or 'no change'}"
        return attrs.evolve(plan, records=(*plan.records, *added), notes=(*plan.notes, note))


def run_arm(arm: str, seed: int, args: argparse.Namespace, gan: Any, out: Path) -> dict[str, float]:
    from dermkit.data.open import open_dataset
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment
    from dermkit.models.lfn import LFN
    from dermkit.training.config import Training

    run_dir = out / f"{arm}-seed{seed}"
    rare = gan.config.classes
    experiment = Experiment(
        data=open_dataset(args.data),
        split=GroupedStratifiedSplit(
            val=gan.split["val"], test=gan.split["test"], seed=gan.split["seed"]
        ),
        model=LFN(dense=(args.dense,), pooling="avg", stem=args.stem),
        balancer=balancers(arm, gan.folder, args.target, rare),
        training=Training(
            optimizer="adamax",
            learning_rate=1e-3,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=seed,
            verbose=0,
            max_minutes=args.minutes,
        ),
        image_size=args.image_size,
        cache_dir=args.cache_dir,
    )
    if not (run_dir / "summary.json").exists():
        experiment.run(run_dir, resume=(run_dir / "config.json").exists())
    classes = ClassIndex(json.loads((run_dir / "classes.json").read_text(encoding="utf-8")))
    return scores(run_dir, classes, rare)


def smoke_setup(base: Path) -> tuple[Path, Path]:
    """A toy HAM10000-shaped dataset and a tiny generator trained on it (four steps)."""
    import csv

    import cv2
    import numpy as np

    from dermkit.gan.api import train_gan
    from dermkit.gan.config import GanConfig

    data = base / "data"
    (data / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    # every HAM10000 class must have images (a class with none is refused), nv the most
    colours = {
        "akiec": (170, 120, 100), "bcc": (190, 150, 150), "bkl": (140, 110, 90),
        "df": (120, 90, 120), "mel": (80, 60, 60), "nv": (150, 100, 80), "vasc": (170, 60, 70),
    }  # fmt: skip
    lesions = {"akiec": 4, "bcc": 4, "bkl": 4, "df": 6, "mel": 4, "nv": 16, "vasc": 6}
    with open(data / "HAM10000_metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lesion_id", "image_id", "dx"])
        for dx, count in lesions.items():
            for lesion in range(count):
                for view in range(2):
                    image_id = f"ISIC_{dx}_{lesion:02d}_{view}"
                    writer.writerow([f"HAM_{dx}_{lesion:02d}", image_id, dx])
                    image = np.clip(
                        np.array(colours[dx]) + rng.normal(0, 25, (32, 32, 3)), 0, 255
                    ).astype(np.uint8)
                    cv2.imwrite(str(data / "images" / f"{image_id}.jpg"), image[..., ::-1])
    generator = base / "gan"
    config = GanConfig(
        image_size=16, classes=("df", "vasc"), z_dim=8, g_width=4, d_width=4, batch_size=4,
        steps=4, kid_every=0, sample_every=4, checkpoint_every=4,
    )  # fmt: skip
    if not (generator / "generator.json").exists():
        train_gan(data, generator, config, cache_dir="", quiet=True)
    return data, generator


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("DERMKIT_HAM10000"))
    parser.add_argument("--generator", help="generator run folder (dermkit gan train --out)")
    parser.add_argument("--out", default="runs/gan-benefit")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--target", type=float, default=0.5, help="ratio of the largest class")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=None, help="budget per training run")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dense", type=int, default=128, help="LFN head width")
    parser.add_argument(
        "--stem",
        default="full",
        choices=("full", "strided", "resnet"),
        help="LFN trunk (docs/performance.md): resnet trains about 5x faster on a CPU",
    )
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--smoke", action="store_true", help="toy data, tiny GAN, 1 epoch")
    args = parser.parse_args(argv)

    print_machine()
    if args.smoke:
        base = Path(tempfile.mkdtemp(prefix="gan-benefit-smoke-"))
        data, generator = smoke_setup(base)
        args.data, args.generator, args.out = str(data), str(generator), str(base / "runs")
        args.epochs, args.cache_dir, args.seeds = 1, "", args.seeds[:2]
        print(f"smoke run in {base}: toy data and a 4-step GAN; the numbers mean nothing")
    elif len(args.seeds) < 3:
        print("use at least three seeds (--seeds 0 1 2)", file=sys.stderr)
        return 2
    if not args.data or not args.generator:
        print("pass --data (or set DERMKIT_HAM10000) and --generator", file=sys.stderr)
        return 2

    from dermkit.gan.run import GanRun

    gan = GanRun.open(args.generator)
    out = Path(args.out)
    print(
        f"generator {gan.folder} ({', '.join(gan.config.classes)}; split val {gan.split['val']} "
        f"test {gan.split['test']} seed {gan.split['seed']}); LFN {args.image_size}px, "
        f"stem {args.stem}, {args.epochs} epochs, target {args.target} of the largest class, "
        f"seeds {args.seeds}"
    )
    started = time.perf_counter()
    results: dict[str, dict[int, dict[str, float]]] = {}
    for arm in args.arms:
        for seed in args.seeds:
            results.setdefault(arm, {})[seed] = run_arm(arm, seed, args, gan, out)
            figures = results[arm][seed]
            shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
            print(f"  {arm:<10} seed {seed}: {shown}", flush=True)
    print()
    print(report(results, args.seeds))
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


def report(results: dict[str, dict[int, dict[str, float]]], seeds: Sequence[int]) -> str:
    """A Markdown table: mean ± 95% half-width per arm and metric, paired differences."""
    arms = list(results)
    metrics = list(next(iter(results[arms[0]].values())))
    lines = [
        "| arm | " + " | ".join(metrics) + " |",
        "|---|" + "---:|" * len(metrics),
    ]
    for arm in arms:
        cells = []
        for metric in metrics:
            mean, half = interval([results[arm][s][metric] for s in seeds])
            cells.append(f"{mean:.3f} ± {half:.3f}")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    base = "augment" if "augment" in results else None
    if base is not None:
        for arm in arms:
            if arm == base:
                continue
            cells = []
            for metric in metrics:
                differences = [results[arm][s][metric] - results[base][s][metric] for s in seeds]
                mean, half = interval(differences)
                cells.append(f"{mean:+.3f} ± {half:.3f}")
            lines.append(f"| {arm} − {base} (paired) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    run(main)
