"""How much each training augmentation changes a trained model's score on unaltered images.

An augmentation meant to be label-preserving should leave a good model's balanced
accuracy nearly where it is. One that drops it a lot changes what the model relies on:
for dermoscopy, colour jitter that turns a brown lesion red. This scores a finished run
on its own validation (or test) part, once as the images are and once with each of
``augment``'s random augmentations applied (the same augmenter training uses).

    python benchmarks/augment_effect.py --run runs/transfer-ft2/lite0-imagenet-ft

Prints the machine first (``_machine.py``), then one table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _entry import run
from _machine import print_machine

BATCH = 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished run folder")
    parser.add_argument("--part", choices=("val", "test"), default="val")
    parser.add_argument("--strength", type=float, default=1.0, help="Augment's strength")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print_machine()

    from dermkit.balancers.augment import build_augmenter
    from dermkit.data.images import load_image
    from dermkit.evaluation.metrics import balanced_accuracy
    from dermkit.export.calibration import run_part
    from dermkit.runs import load_run

    loaded = load_run(args.run)
    records = run_part(Path(args.run), args.part)
    labels = np.array([record.label for record in records])
    images = np.stack([load_image(record.path, loaded.settings) for record in records])
    images = images.astype(np.float32)
    print(f"{len(records)} {args.part} images of {args.run}, strength {args.strength:g}")
    print("| augmentation | balanced accuracy | change |")
    print("|---|---:|---:|")
    baseline = None
    for recipes in ((), ("zoom",), ("color",), ("flip", "rotate90", "zoom", "color")):
        batch = images
        if recipes:
            augment = build_augmenter(recipes, args.strength, args.seed)
            batch = np.concatenate(
                [np.asarray(augment(images[i : i + BATCH])) for i in range(0, len(images), BATCH)]
            )
        predicted = loaded.predict_images(batch, batch_size=BATCH).argmax(axis=1)
        score = balanced_accuracy(labels, predicted, len(loaded.classes))
        baseline = score if baseline is None else baseline
        name = ", ".join(recipes) or "none"
        print(f"| {name} | {score:.3f} | {score - baseline:+.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    run(main)
