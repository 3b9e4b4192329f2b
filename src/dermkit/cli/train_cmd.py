"""``dermkit train`` and ``dermkit resume``: one training run, written to a run folder.

Three ways in, one recipe out (the run's ``config.json``):

- ``train --data PATH [flags] --out RUN``: the defaults, overridden by the flags;
- ``train --config OLD/config.json [flags] --out RUN``: an earlier run's recipe, with
  the flags given overriding it (and recorded in the new run);
- ``train --resume --out RUN`` or ``resume RUN``: the run folder's own recipe, nothing
  else needed. A flag that would change it is refused by name; only ``--epochs`` may
  be raised and the time budget (``--max-minutes``) changed.

Which setting each flag sets is one table, :data:`dermkit.cli.recipe.FLAGS`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dermkit.cli.options import add_dataset_options
from dermkit.cli.recipe import (
    apply_flags,
    describe_defaults,
    explicit_values,
    read_recipe,
    refuse_changes,
)
from dermkit.errors import ConfigError
from dermkit.training.config import DISTRIBUTE_MODES

OPTIMIZERS = ("adam", "adamax", "sgd", "adamw")
SCHEDULES = ("constant", "cosine", "plateau")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model and write a run folder",
        description=(
            "Train a classifier: split by lesion, balance, fit, evaluate. Start from "
            "--data (and the defaults shown), from an earlier run's recipe (--config), "
            "or continue a stopped run (--resume --out RUN, the same as `dermkit resume RUN`)."
        ),
    )
    add_dataset_options(parser, format_default=None)
    add_training_arguments(parser)
    where = parser.add_argument_group("run folder")
    where.add_argument("--out", required=True, metavar="RUN", help="run folder to create or resume")
    where.add_argument(
        "--config",
        metavar="RECIPE",
        help="start from an earlier run's config.json (or its folder); flags given override it",
    )
    where.add_argument(
        "--resume",
        action="store_true",
        help="continue the stopped run in --out with its saved settings (nothing else needed)",
    )
    parser.set_defaults(handler=run)

    resume = subparsers.add_parser(
        "resume",
        help="continue a stopped run from its folder",
        description=(
            "Continue a stopped run with the settings saved in RUN/config.json, from any "
            "directory. --epochs may raise the number of epochs and --max-minutes set a time "
            "budget for this session; any other training flag is refused if it differs from "
            "the saved value."
        ),
    )
    resume.add_argument("run", metavar="RUN", help="the run folder `dermkit train --out` wrote")
    add_dataset_options(resume, format_default=None, hidden=True)
    add_training_arguments(resume, hidden_except=("epochs", "max_minutes", "quiet", "cache_dir"))
    resume.set_defaults(handler=run_resume, config=None, resume=True)


def _help(dest: str, text: str, hidden: bool, *, resuming: bool) -> str:
    if hidden:
        return argparse.SUPPRESS
    default = "the run's saved value" if resuming else describe_defaults().get(dest)
    return f"{text} (default: {default})" if default is not None else text


def add_training_arguments(
    parser: argparse.ArgumentParser, *, hidden_except: tuple[str, ...] | None = None
) -> None:
    """The recipe flags of ``train``; all default to ``None`` (see :mod:`.recipe`).

    ``hidden_except`` hides every flag's help but those named (``resume`` accepts the
    same flags as ``train``, so that a changed setting is refused by name).
    """

    def hide(dest: str) -> bool:
        return hidden_except is not None and dest not in hidden_except

    def h(dest: str, text: str) -> str:
        return _help(dest, text, hide(dest), resuming=hidden_except is not None)

    split = parser.add_argument_group("split")
    split.add_argument("--val", type=float, help=h("val", "validation fraction of all images"))
    split.add_argument("--test", type=float, help=h("test", "test fraction of all images"))
    split.add_argument(
        "--seed", type=int, help=h("seed", "seed of the split, weights, data order, augmentation")
    )
    split.add_argument(
        "--kfold",
        type=int,
        metavar="K",
        help=h("kfold", "k-fold cross-validation by lesion: the test part is fold --fold"),
    )
    split.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help=h(
            "cv",
            "cross-validation inside the grouped split: its test part is kept, fold --fold "
            "of its train + validation is the validation part",
        ),
    )
    split.add_argument(
        "--fold",
        type=int,
        metavar="I",
        help=h("fold", "which fold (0..K-1) is the test part (--kfold) or validation part (--cv)"),
    )
    split.add_argument(
        "--split-file",
        metavar="CSV",
        help=h(
            "split_file",
            "your own split: columns path,label,class,group,part as in a run's split.csv "
            "(checked for leakage and unknown images)",
        ),
    )

    model = parser.add_argument_group("model")
    model.add_argument("--model", help=h("model", "model name, as `dermkit plugins` lists them"))
    model.add_argument(
        "--model-option",
        action="append",
        metavar="KEY=VALUE",
        help=h(
            "model_option",
            "model option, repeatable: e.g. trainable_layers=4, dense=512,512, weights=none",
        ),
    )
    model.add_argument(
        "--image-size", type=int, metavar="PX", help=h("image_size", "input size in pixels")
    )

    fitting = parser.add_argument_group("balancing and fitting")
    fitting.add_argument(
        "--balancer",
        action="append",
        metavar="NAME",
        help=h(
            "balancer",
            "balancer, repeatable and applied in order: class_weights, logit_adjustment, "
            "oversample, balanced_batches, augment, gan_oversampling (`dermkit plugins` "
            "lists those plugins add); 'none' for none",
        ),
    )
    fitting.add_argument(
        "--balancer-option",
        action="append",
        metavar="NAME.KEY=VALUE",
        help=h(
            "balancer_option",
            "an option of one of the balancers, repeatable, e.g. "
            "gan_oversampling.generator=gans/rare, augment.strength=2 or "
            "logit_adjustment.tau=0.5",
        ),
    )
    fitting.add_argument(
        "--epochs", type=int, metavar="N", help=h("epochs", "epochs to train (resume: raise only)")
    )
    fitting.add_argument(
        "--batch-size", type=int, metavar="N", help=h("batch_size", "images per batch")
    )
    fitting.add_argument("--optimizer", choices=OPTIMIZERS, help=h("optimizer", "optimizer"))
    fitting.add_argument("--lr", type=float, help=h("lr", "learning rate"))
    fitting.add_argument(
        "--schedule", choices=SCHEDULES, help=h("schedule", "learning-rate schedule")
    )
    fitting.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help=h("early_stopping", "stop after this many epochs without improvement"),
    )
    fitting.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        help=h("mixed_precision", "float16 compute (for GPUs that support it)"),
    )
    fitting.add_argument(
        "--max-minutes",
        type=float,
        metavar="MIN",
        help=h(
            "max_minutes",
            "time budget of this session: no epoch starts that would end after it "
            "(continue later with `dermkit resume`)",
        ),
    )

    fitting.add_argument(
        "--feature-cache",
        choices=("auto", "on", "off"),
        help=h(
            "feature_cache",
            "train only the layers after a frozen backbone prefix, on its activations "
            "computed once per image: auto (when no random augmentation is lost), on, off",
        ),
    )
    fitting.add_argument(
        "--cache-views",
        type=int,
        metavar="N",
        help=h(
            "cache_views",
            "flips/right-angle turns (1-8) cached per training image with --feature-cache; "
            "8 when augmenting with flips or turns, else 1",
        ),
    )
    fitting.add_argument(
        "--mixup",
        type=float,
        metavar="ALPHA",
        help=h(
            "mixup",
            "mix each training example with another of its batch (inputs and labels) by a "
            "weight from Beta(ALPHA, ALPHA); on cached features it mixes the activations; "
            "0 is off",
        ),
    )
    fitting.add_argument(
        "--fine-tune",
        type=int,
        metavar="N",
        help=h(
            "fine_tune",
            "after the first stage, train the last N backbone layers (-1: all) from the best "
            "model, at a lower learning rate, on pixels with every augmentation",
        ),
    )
    fitting.add_argument(
        "--fine-tune-epochs",
        type=int,
        metavar="N",
        help=h("fine_tune_epochs", "epochs of the --fine-tune stage"),
    )
    fitting.add_argument(
        "--fine-tune-lr",
        type=float,
        metavar="LR",
        help=h("fine_tune_lr", "learning rate of the --fine-tune stage"),
    )

    running = parser.add_argument_group("running")
    running.add_argument(
        "--distribute",
        choices=DISTRIBUTE_MODES,
        help=h(
            "distribute",
            "train on several devices: mirrored (this machine's GPUs, else CPUs) or "
            "multi_worker (the machines TF_CONFIG names); --batch-size is per device",
        ),
    )
    running.add_argument(
        "--limit", type=int, metavar="N", help=h("limit", "use about N images (smoke runs)")
    )
    running.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        help=h("strict", "stop at the first bad input"),
    )
    running.add_argument(
        "--cache-dir", metavar="DIR", help=h("cache_dir", "decoded-image cache ('' disables it)")
    )
    running.add_argument(
        "--quiet",
        action="store_true",
        default=None,
        help=h(
            "quiet",
            "one line per epoch instead of a progress bar (automatic when the output is "
            "not a terminal)",
        ),
    )


def run(args: argparse.Namespace) -> int:
    """Train or resume; on SIGTERM/Ctrl-C or a full disk, say what was kept and how to go on."""
    from dermkit.cli import stopping

    return stopping.run_stoppable(Path(args.out), lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    from dermkit.experiment import Experiment
    from dermkit.run_folder import read_saved_config

    values = explicit_values(args)
    if args.resume:
        if args.config is not None:
            raise ConfigError(
                "--config and --resume do not go together",
                where="--config",
                hint="a resumed run uses its own config.json; --config starts a new run",
            )
        run_dir = Path(args.out)
        if not (run_dir / "config.json").is_file():
            raise ConfigError(
                "there is no run to resume here (no config.json)",
                where=str(run_dir),
                hint="start the run without --resume: `dermkit train --data PATH ... --out RUN`",
            )
        saved = read_saved_config(run_dir)
        config = apply_flags(saved, values)
        refuse_changes(saved, config, values, str(run_dir))
        result = Experiment.from_config(config).run(run_dir, resume=True)
    else:
        base = read_recipe(args.config) if args.config is not None else None
        config = apply_flags(base, values)
        result = Experiment.from_config(config).run(args.out)
    print(f"run folder: {result.run_dir}")
    return 0


def run_resume(args: argparse.Namespace) -> int:
    args.out = args.run
    return run(args)
