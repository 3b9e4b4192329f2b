"""The original "DermNet" student study's attempts, as data, and one way to run any of them.

Each ``<model>_attempt<N>.py`` script next to this file is a few lines that call
:func:`run_attempt` with its attempt's name; everything they share lives here, so the
table below is the single place that says what each attempt was. The settings are the
study's as far as it describes them; examples/README.md says which parts are documented
and which are reconstructed.

What dermkit does differently from the study, on purpose:

* the split is dermkit's lesion-grouped, stratified, seeded train/validation/test split
  (:class:`~dermkit.data.splits.GroupedStratifiedSplit`). The study used a fixed
  held-out test folder; the grouped test part plays that role here, and no lesion is
  on two sides of it;
* the saved model is the epoch with the best validation balanced accuracy (the study
  kept the last epoch), so the test figures belong to a model chosen without the test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from dermkit.balancers.augment import Augment
from dermkit.balancers.balanced_batches import BalancedBatches
from dermkit.balancers.class_weights import ClassWeights
from dermkit.core import Balancer, ModelFactory
from dermkit.errors import ConfigError, DermkitError
from dermkit.evaluation.evaluator import StandardEvaluator
from dermkit.models.applications import InceptionV3, ResNet50
from dermkit.models.lfn import LFN
from dermkit.training.config import Training

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.experiment import Experiment

DATA_ENV = "DERMKIT_HAM10000"
"""Environment variable naming the dataset folder when ``--data`` is not given."""

EXIT_BAD_INPUT = 2
"""Exit code for a missing dataset or an invalid option, as the ``dermkit`` command uses."""

SMOKE_HINT = "--epochs 1 --limit 200"
"""The smoke-run options README.md recommends (plus a small --image-size for backbones)."""

StudyModel = LFN | ResNet50 | InceptionV3
"""The networks the study tried."""


@attrs.frozen
class Attempt:
    """One attempt of the study: which network, how it was fitted, how imbalance was met.

    ``balanced_test`` scores the test part on equal random draws per class, as the
    study's generator did for its balanced test; the full, imbalanced test report is
    the other option (dermkit's default).
    """

    name: str
    model: StudyModel
    training: Training
    balancers: tuple[Balancer, ...]
    balanced_test: bool
    note: str

    @property
    def image_size(self) -> int:
        """The study's input size for this network (300 LFN, 224 ResNet50, 299 InceptionV3)."""
        return self.model.default_input_size

    def evaluator(self) -> StandardEvaluator:
        return StandardEvaluator(balanced_test=self.balanced_test)


# Shorthands for the table; fresh instances are cheap (attrs frozen value objects).
def _majority_weights() -> ClassWeights:
    return ClassWeights(mode="majority")


def _training(optimizer: Literal["adam", "adamax"], batch_size: int, epochs: int) -> Training:
    # The study trained for a fixed number of epochs: no early stopping, constant
    # learning rate at the optimizers' Keras default (1e-3; not stated in the study).
    return Training(optimizer=optimizer, batch_size=batch_size, epochs=epochs)


ATTEMPTS: dict[str, Attempt] = {
    attempt.name: attempt
    for attempt in (
        Attempt(
            name="lfn_attempt1",
            model=LFN(),
            training=_training("adam", 32, 25),
            balancers=(_majority_weights(),),
            balanced_test=False,
            note="base LFN (Flatten, Dense 512, Dense 7), Adam, batch 32, 25 epochs, "
            "class weights with the majority class at 1.0",
        ),
        Attempt(
            name="lfn_attempt2",
            model=LFN(),
            training=_training("adamax", 32, 50),
            balancers=(BalancedBatches(),),
            balanced_test=True,
            note="base LFN, Adamax, batch 32, 50 epochs, equal random draws per class "
            "in every batch, scored on a balanced test",
        ),
        Attempt(
            name="lfn_attempt3",
            model=LFN(extra_dropout=True),
            training=_training("adamax", 16, 50),
            balancers=(_majority_weights(), Augment()),
            balanced_test=False,
            note="LFN with an extra Dropout before the first Dense layer, Adamax, batch 16, "
            "50 epochs, class weights (majority 1.0) and augmentation",
        ),
        Attempt(
            name="lfn_attempt4",
            model=LFN(dense=(512, 512), dropout=0.5),
            training=_training("adamax", 16, 75),
            balancers=(_majority_weights(), Augment()),
            balanced_test=False,
            note="LFN with two Dense 512 layers and Dropout 0.5, Adamax, batch 16, 75 epochs, "
            "class weights (majority 1.0) and augmentation",
        ),
        Attempt(
            name="resnet50_attempt1",
            model=ResNet50(weights="imagenet", trainable_layers=4, dense=(256,), dropout=0.4),
            training=_training("adam", 32, 25),
            balancers=(_majority_weights(),),
            balanced_test=False,
            note="ResNet50 on ImageNet weights, last 4 layers trainable, Flatten, Dense 256, "
            "Dropout 0.4, Adam, batch 32, 25 epochs, class weights (majority 1.0)",
        ),
        Attempt(
            name="resnet50_attempt2",
            model=ResNet50(weights="imagenet", trainable_layers=10, dense=(128,), dropout=0.4),
            training=_training("adam", 32, 25),
            balancers=(_majority_weights(),),
            balanced_test=False,
            note="as ResNet50 attempt 1 with Dense 128 and the last 10 layers trainable",
        ),
        Attempt(
            name="inception_v3_attempt1",
            model=InceptionV3(weights="imagenet", trainable_layers=0, dense=(512,), dropout=0.35),
            training=_training("adam", 32, 25),
            balancers=(_majority_weights(),),
            balanced_test=False,
            note="InceptionV3 (GoogLeNet) on ImageNet weights, whole backbone frozen, "
            "Flatten, Dense 512, Dropout 0.35, Adam, batch 32, 25 epochs, "
            "class weights (majority 1.0)",
        ),
    )
}
"""The study's attempts, in the order it made them."""


# ---------------------------------------------------------------------- command line
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def build_parser(attempt: Attempt) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{attempt.name}.py",
        description=f"The study's {attempt.name}: {attempt.note}.",
        epilog=f"Smoke run: {SMOKE_HINT}"
        + ("" if isinstance(attempt.model, LFN) else " --image-size 75 --weights none")
        + ". Settings as far as the study describes them; see examples/README.md.",
    )
    parser.add_argument(
        "--data",
        default=None,
        help=f"HAM10000 folder (or any dataset dermkit reads); default: ${DATA_ENV}",
    )
    parser.add_argument(
        "--out", default=None, help=f"run folder to create (default: runs/{attempt.name})"
    )
    parser.add_argument(
        "--epochs", type=_positive_int, default=None, help=f"default {attempt.training.epochs}"
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help=f"default {attempt.training.batch_size}",
    )
    parser.add_argument(
        "--limit", type=_positive_int, default=None, help="use about N images (smoke runs)"
    )
    parser.add_argument(
        "--image-size",
        type=_positive_int,
        default=None,
        help=f"input size in pixels (default {attempt.image_size}, the study's)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="imagenet|none|PATH",
        help="backbone start: ImageNet (default for backbones), random, or a local "
        "*_notop weights file; LFN always trains from scratch",
    )
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--resume", action="store_true", help="continue a stopped run")
    parser.add_argument("--cache-dir", default=None, help="decoded-image cache ('' turns it off)")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch, no bars")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the run's configuration as JSON and stop (reads no images)",
    )
    return parser


def _model(attempt: Attempt, weights: str | None) -> StudyModel:
    if weights is None:
        return attempt.model
    if isinstance(attempt.model, LFN):
        if weights.lower() in ("none", "null"):
            return attempt.model
        raise ConfigError(
            f"LFN has no pretrained weights, got --weights {weights}",
            where="--weights",
            hint="LFN trains from scratch; drop --weights (it applies to the backbones)",
        )
    chosen = None if weights.lower() in ("none", "null") else weights
    return attrs.evolve(attempt.model, weights=chosen)


def experiment_for(attempt: Attempt, args: argparse.Namespace, data: str) -> Experiment:
    """The :class:`~dermkit.experiment.Experiment` for ``attempt`` with the command's overrides."""
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment

    overrides: dict[str, Any] = {"seed": args.seed, "verbose": 2 if args.quiet else 1}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    return Experiment(
        data=data,
        split=GroupedStratifiedSplit(val=0.15, test=0.15, seed=args.seed),
        model=_model(attempt, args.weights),
        balancer=list(attempt.balancers),
        training=attrs.evolve(attempt.training, **overrides),
        evaluator=attempt.evaluator(),
        image_size=args.image_size,
        limit=args.limit,
        cache_dir=args.cache_dir,
    )


def _check_weights(model: ModelFactory) -> None:
    """Fetch or find the backbone's weights before the run folder exists.

    Offline, the ImageNet download fails; failing here, rather than after the run
    folder was started, lets the same command succeed once ``--weights`` names a file.
    """
    weights = getattr(model, "weights", None)
    if weights is None:
        return
    from dermkit.models.weights import resolve_weights

    resolve_weights(model.name, weights)


def _figures(headline: Mapping[str, Any]) -> str:
    def number(key: str) -> str:
        value = headline.get(key)
        return "–" if not isinstance(value, float) or value != value else f"{value:.3f}"

    interval = ""
    if "balanced_accuracy_ci_low" in headline:
        interval = (
            f" [95% CI {number('balanced_accuracy_ci_low')}–{number('balanced_accuracy_ci_high')}]"
        )
    return (
        f"balanced accuracy {number('balanced_accuracy')}{interval}, "
        f"accuracy {number('accuracy')}, macro F1 {number('macro_f1')}, "
        f"macro AUC {number('macro_auc')} on {headline.get('n', '?')} images"
    )


def run_attempt(name: str, argv: Sequence[str] | None = None) -> int:
    """Run the study's attempt ``name`` with command-line options ``argv``; an exit code.

    Errors a user can cause (no dataset, a bad path, an occupied run folder) end in one
    line on stderr and exit code 2, as with the ``dermkit`` command.
    """
    attempt = ATTEMPTS[name]
    args = build_parser(attempt).parse_args(argv)
    data = args.data or os.environ.get(DATA_ENV)
    if not data:
        print(
            f"{name}: error: no dataset given. Pass --data PATH (a HAM10000 folder with "
            f"HAM10000_metadata.csv) or set {DATA_ENV}.",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("runs") / name
    try:
        experiment = experiment_for(attempt, args, data)
        if args.dry_run:
            print(json.dumps(experiment.to_config(), indent=2))
            return 0
        _check_weights(experiment.model)
        result = experiment.run(out, resume=args.resume)
    except DermkitError as error:
        print(f"{name}: error: {error.render()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"run folder: {result.run_dir}")
    for part in ("val", "test"):
        if part in result.metrics:
            label = f"{part} (balanced)" if attempt.balanced_test else part
            print(f"{label}: {_figures(result.metrics[part])}")
    return 0
