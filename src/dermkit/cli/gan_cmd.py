"""``dermkit gan``: train a class-conditional GAN, sample it, measure its quality.

::

    dermkit gan train --data PATH --image-size 64 --steps 10000 --out gans/rare \\
        --classes df vasc akiec                  # add --resume to continue
    dermkit gan sample gans/rare --class df --n 500 --out synthetic/df
    dermkit gan evaluate gans/rare               # KID/FID/C2ST per class, with floors

``train`` splits by lesion exactly as ``dermkit train`` does (same ``--val``,
``--test``, ``--seed``), records the split (``split.csv``) and trains on the training
part of the chosen classes only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dermkit.errors import ConfigError
from dermkit.gan.config import GanConfig

DEFAULTS = GanConfig()
"""Every option's default comes from the recipe itself (TensorFlow-free to import)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gan", help="train, sample and evaluate a class-conditional GAN for rare classes"
    )
    commands = parser.add_subparsers(dest="gan_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: _help(parser))
    _register_train(commands)
    _register_sample(commands)
    _register_evaluate(commands)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _features_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    from dermkit.gan.quality import FEATURE_CHOICES

    parser.add_argument(
        "--features",
        default=default,
        choices=FEATURE_CHOICES,
        help="feature network for KID/FID: EfficientNet-Lite0 ImageNet (lite0), a classifier "
        f"run's penultimate layer (classifier), auto (lite0, else --classifier), none "
        f"(default {default})",
    )
    parser.add_argument(
        "--classifier",
        metavar="RUN",
        help="a dermkit classifier run trained on the same data (its features are the fallback)",
    )


def _register_train(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a GAN on the training part of a lesion-grouped split",
        description="Train a class-conditional GAN (SNGAN-style, hinge loss, DiffAugment, "
        "EMA) on the training part of a lesion-grouped split. Checkpoints, sample grids, "
        "losses and KID go into the --out folder; Ctrl-C stops cleanly.",
    )
    train.add_argument("--data", required=True, help="dataset folder or CSV")
    train.add_argument(
        "--format",
        default="auto",
        choices=("auto", "folder", "ham10000", "csv", "isic-gt"),
        help="dataset layout (default: detect)",
    )
    train.add_argument("--out", required=True, help="generator run folder (e.g. gans/rare)")
    train.add_argument(
        "--classes", nargs="+", metavar="CLASS", help="classes to generate (default: all)"
    )
    train.add_argument(
        "--image-size", type=int, default=DEFAULTS.image_size, help="16-256, a power of two"
    )
    train.add_argument(
        "--steps", type=int, default=None, help=f"training steps (default {DEFAULTS.steps})"
    )
    train.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop cleanly after this many minutes (resumable); the run's steps still cap it",
    )
    train.add_argument("--val", type=float, default=0.15, help="validation fraction")
    train.add_argument("--test", type=float, default=0.15, help="test fraction")
    train.add_argument("--seed", type=int, default=DEFAULTS.seed, help="split and training seed")
    train.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    train.add_argument(
        "--g-width", type=int, default=DEFAULTS.g_width, help="generator channels at full size"
    )
    train.add_argument(
        "--d-width", type=int, default=DEFAULTS.d_width, help="discriminator channels, ditto"
    )
    train.add_argument("--z-dim", type=int, default=DEFAULTS.z_dim)
    train.add_argument(
        "--d-steps",
        type=int,
        default=DEFAULTS.d_steps,
        help="discriminator updates per generator update",
    )
    train.add_argument("--lr-g", type=float, default=DEFAULTS.lr_g)
    train.add_argument("--lr-d", type=float, default=DEFAULTS.lr_d)
    train.add_argument("--ema-decay", type=float, default=DEFAULTS.ema_decay)
    train.add_argument(
        "--augment", default=",".join(DEFAULTS.augment), help="DiffAugment policy, or none"
    )
    train.add_argument(
        "--no-dihedral", action="store_true", help="do not flip/turn real images at random"
    )
    train.add_argument("--log-every", type=int, default=DEFAULTS.log_every)
    train.add_argument("--sample-every", type=int, default=DEFAULTS.sample_every)
    train.add_argument("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every)
    train.add_argument(
        "--kid-every", type=int, default=DEFAULTS.kid_every, help="0: no KID during training"
    )
    train.add_argument("--kid-samples", type=int, default=DEFAULTS.kid_samples, help="per class")
    _features_arguments(train, "auto")
    train.add_argument("--cache-dir", default=None, help="decoded-image cache ('' disables)")
    train.add_argument("--strict", action="store_true", help="stop at the first bad input")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(handler=run_train)


def _register_sample(commands: Any) -> None:
    sample = commands.add_parser(
        "sample",
        help="write generated images (PNG) and a manifest marking them synthetic",
        description="Write N generated images of a class as PNGs, with manifest.csv naming "
        "the generator run. Image i of a seed is always the same image.",
    )
    sample.add_argument("run", metavar="GAN_RUN", help="generator run folder")
    sample.add_argument(
        "--class",
        dest="classes",
        action="append",
        required=True,
        metavar="CLASS",
        help="class to generate (repeatable)",
    )
    sample.add_argument("--n", type=int, default=100, help="images per class")
    sample.add_argument("--out", required=True, help="output folder")
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(handler=run_sample)


def _register_evaluate(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="KID, FID and a two-sample test per class, with real-vs-real floors",
        description="Compare generated with real training images per class: KID, FID and a "
        "classifier two-sample test, next to the real-vs-real floor and blur/noise ceilings.",
    )
    evaluate.add_argument("run", metavar="GAN_RUN", help="generator run folder")
    evaluate.add_argument(
        "--n",
        type=int,
        default=None,
        help="generated images per class (default: as many as real ones)",
    )
    evaluate.add_argument("--seed", type=int, default=1)
    evaluate.add_argument("--cache-dir", default=None, help="decoded-image cache ('' disables)")
    _features_arguments(evaluate, "auto")
    evaluate.set_defaults(handler=run_evaluate)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- train


def _config_from_args(args: argparse.Namespace) -> GanConfig:
    return GanConfig(
        image_size=args.image_size,
        classes=tuple(args.classes or ()),
        z_dim=args.z_dim,
        g_width=args.g_width,
        d_width=args.d_width,
        batch_size=args.batch_size,
        d_steps=args.d_steps,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        ema_decay=args.ema_decay,
        augment=args.augment,
        dihedral=not args.no_dihedral,
        seed=args.seed,
        log_every=args.log_every,
        sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every,
        kid_every=args.kid_every,
        kid_samples=args.kid_samples,
    )


def run_train(args: argparse.Namespace) -> int:
    from dermkit.gan.api import train_gan

    result = train_gan(
        args.data,
        args.out,
        _config_from_args(args),  # ignored when resuming: gan.json has the options
        format=args.format,
        val=args.val,
        test=args.test,
        cache_dir=args.cache_dir,
        strict=args.strict,
        features=args.features,
        classifier=args.classifier,
        resume=args.resume,
        steps=args.steps,
        max_minutes=args.max_minutes,
        quiet=args.quiet,
        say=_say,
    )
    _say(
        f"dermkit: {result.steps_done} steps done, {result.steps_per_second:.2f} steps/s this "
        f"session; generator: {Path(args.out) / 'generator.keras'}"
    )
    return 130 if result.interrupted else 0


# ----------------------------------------------------------------------------- sample


def run_sample(args: argparse.Namespace) -> int:
    from dermkit.gan.sample import MANIFEST, open_generator, write_samples

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}", where="--n")
    generator = open_generator(args.run)
    for name in args.classes:
        generator.label(name)  # refuse an unknown class before writing anything
    for name in args.classes:
        write_samples(generator, name, args.n, args.out, seed=args.seed)
        _say(f"dermkit: {args.n} synthetic {name} images in {args.out}")
    print(
        f"{Path(args.out) / MANIFEST}: synthetic images from generator run "
        f"{generator.run.source} (step {generator.step})"
    )
    return 0


# ----------------------------------------------------------------------------- evaluate


def run_evaluate(args: argparse.Namespace) -> int:
    from dermkit.gan.assess import assess_generator

    report = assess_generator(
        args.run,
        features=args.features,
        classifier=args.classifier,
        count=args.n,
        seed=args.seed,
        cache_dir=args.cache_dir,
        say=_say,
    )
    print(report.table, end="")
    return 0
