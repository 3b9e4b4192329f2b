"""Does the discriminator stay ahead? GAN training settings side by side on the same images.

A GAN only learns while its discriminator tells real from generated images: with the
hinge loss, a discriminator at chance scores everything alike and its loss sits at 2.0.
This script trains each setting (discriminator steps per generator step, learning rates)
from the same initial weights, on the same real batches and latents, for ``--steps``
steps, and prints per setting the mean over the last ``--window`` steps of the
discriminator loss and of its mean real and fake scores, and the gap between them (the
margin by which the discriminator separates them). It is how the defaults of
``dermkit.gan`` (two discriminator steps, learning rates 4e-4 / 1e-4) were chosen.

    DERMKIT_HAM10000=/path/to/ham10000 python benchmarks/gan_dynamics.py --steps 200

It trains on the training part of the default lesion-grouped split (seed 0), the
classes df, vasc and akiec at 64×64, as ``dermkit gan train`` does. ``--smoke`` runs on
generated toy images in seconds (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _entry import run
from _machine import print_machine

SETTINGS: dict[str, dict[str, float | int]] = {
    "1 D step, lr 2e-4/2e-4": {"d_steps": 1, "lr_d": 2e-4, "lr_g": 2e-4},
    "1 D step, lr D 4e-4 / G 1e-4": {"d_steps": 1, "lr_d": 4e-4, "lr_g": 1e-4},
    "2 D steps, lr 2e-4/2e-4": {"d_steps": 2, "lr_d": 2e-4, "lr_g": 2e-4},
    "2 D steps, lr D 4e-4 / G 1e-4": {"d_steps": 2, "lr_d": 4e-4, "lr_g": 1e-4},
}


def real_images(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    if args.smoke:
        rng = np.random.default_rng(0)
        labels = np.arange(24) % 2
        base = np.where(labels[:, None, None, None] == 0, [200, 90, 90], [90, 90, 200])
        noise = rng.integers(-30, 30, size=(24, 16, 16, 3))
        return (
            np.clip(base + noise, 0, 255).astype(np.uint8),
            labels.astype(np.int32),
            (
                "df",
                "vasc",
            ),
        )
    from dermkit.data.open import open_dataset
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.gan.data import prepare

    if not args.data:
        raise SystemExit("set DERMKIT_HAM10000 or pass --data (or use --smoke)")
    classes = ("df", "vasc", "akiec")
    loaded = open_dataset(args.data).load()
    split = GroupedStratifiedSplit(val=0.15, test=0.15, seed=0).split(
        loaded.records, loaded.classes
    )
    prepared = prepare(loaded, split, classes, 64, args.cache_dir)
    return prepared.images, prepared.labels, classes


def run_setting(
    images: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...],
    options: dict[str, float | int],
    args: argparse.Namespace,
) -> dict[str, float]:
    from dermkit.gan.config import GanConfig
    from dermkit.gan.step import GanStep, build_models, step_inputs

    size = int(images.shape[1])
    width = 4 if args.smoke else 16
    config = GanConfig(
        image_size=size,
        classes=classes,
        g_width=width,
        d_width=width,
        batch_size=4 if args.smoke else 16,
        z_dim=8 if args.smoke else 128,
        **options,  # type: ignore[arg-type]
    )
    step = GanStep(build_models(config), config)
    rows = [step(step_inputs(images, labels, config, 0))]  # traces the step: not timed
    started = time.perf_counter()
    for index in range(1, args.steps):
        rows.append(step(step_inputs(images, labels, config, index)))
    seconds = time.perf_counter() - started
    last = rows[-args.window :]
    result = {key: float(np.mean([row[key] for row in last])) for key in last[0]}
    result["seconds_per_step"] = seconds / max(args.steps - 1, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("DERMKIT_HAM10000"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--window", type=int, default=50, help="steps averaged at the end")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--smoke", action="store_true", help="toy images, 4 steps")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.window = 4, 2
    if not 1 <= args.window <= args.steps:
        parser.error("--window must be between 1 and --steps")

    print_machine()
    images, labels, classes = real_images(args)
    counts = ", ".join(f"{n} {int((labels == i).sum())}" for i, n in enumerate(classes))
    print(f"training images: {counts}; {args.steps} steps per setting, "
          f"means over the last {args.window}\n")  # fmt: skip
    print("| setting | D loss | real score | fake score | gap | s/step |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, options in SETTINGS.items():
        r = run_setting(images, labels, classes, options, args)
        print(
            f"| {name} | {r['d_loss']:.2f} | {r['d_real']:.2f} | {r['d_fake']:.2f} "
            f"| {r['d_real'] - r['d_fake']:.2f} | {r['seconds_per_step']:.2f} |",
            flush=True,
        )
    print("\nA discriminator at chance has loss 2.0 and gap 0.")
    return 0


if __name__ == "__main__":
    run(main)
