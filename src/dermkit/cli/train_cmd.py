"""``dermkit train``: one training run from the command line, written to a run folder."""

from __future__ import annotations

import argparse
from typing import Any

from dermkit.config import build_component
from dermkit.errors import ConfigError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model and write a run folder",
        description="Train a classifier: split by lesion, balance, fit, evaluate.",
    )
    add_training_arguments(parser)
    parser.add_argument("--data", required=True, help="dataset folder or CSV")
    parser.add_argument(
        "--format",
        default="auto",
        choices=("auto", "folder", "ham10000", "csv", "isic-gt"),
        help="dataset layout (default: detect)",
    )
    parser.add_argument("--out", required=True, help="run folder to create (or resume)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.set_defaults(handler=run)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="lfn", help="model name (see `dermkit plugins`)")
    parser.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. trainable_layers=4, dense=512,512, weights=none (repeatable)",
    )
    parser.add_argument(
        "--balancer",
        action="append",
        default=[],
        help="balancer name, repeatable and applied in order (e.g. class_weights, augment)",
    )
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--optimizer", default="adam", choices=("adam", "adamax", "sgd", "adamw"))
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    parser.add_argument("--schedule", default="constant", choices=("constant", "cosine", "plateau"))
    parser.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE")
    parser.add_argument("--image-size", type=int, default=None, help="default: the model's")
    parser.add_argument("--val", type=float, default=0.15, help="validation fraction")
    parser.add_argument("--test", type=float, default=0.15, help="test fraction")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use about N images (smoke runs)")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input")
    parser.add_argument("--cache-dir", default=None, help="decoded-image cache ('' disables)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def parse_option_value(text: str) -> Any:
    """Parse a command-line option value.

    ``512`` -> 512, ``0.5`` -> 0.5, ``512,512`` -> (512, 512), ``none`` -> None,
    ``true`` -> True; anything else stays a string.
    """
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return tuple(parse_option_value(part) for part in text.split(",") if part.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(
                f"model option {pair!r} is not KEY=VALUE", hint="e.g. --model-option dropout=0.5"
            )
        key, value = pair.split("=", 1)
        options[key.strip().replace("-", "_")] = parse_option_value(value)
    return options


def experiment_from_args(args: argparse.Namespace, data: Any) -> Any:
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment
    from dermkit.training.config import Training

    try:
        training = Training(
            optimizer=args.optimizer,
            learning_rate=args.lr,
            schedule=args.schedule,
            epochs=args.epochs,
            batch_size=args.batch_size,
            early_stopping=args.early_stopping,
            seed=args.seed,
            mixed_precision=args.mixed_precision,
            verbose=2 if args.quiet else 1,
        )
        split = GroupedStratifiedSplit(val=args.val, test=args.test, seed=args.seed)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None
    model = build_component("models", {"name": args.model, **parse_options(args.model_option)})
    return Experiment(
        data=data,
        split=split,
        model=model,
        balancer=[build_component("balancers", name) for name in args.balancer],
        training=training,
        image_size=args.image_size,
        limit=args.limit,
        strict=args.strict,
        cache_dir=args.cache_dir,
    )


def run(args: argparse.Namespace) -> int:
    from dermkit.data.open import open_dataset

    data = open_dataset(args.data, format=args.format)
    experiment = experiment_from_args(args, data)
    result = experiment.run(args.out, resume=args.resume)
    print(f"run folder: {result.run_dir}")
    return 0
