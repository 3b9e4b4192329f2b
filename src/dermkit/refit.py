"""Refit a finished run on its training and validation images together.

A run's validation part is what chooses: the best epoch, the learning-rate halvings of
a ``"plateau"`` schedule, and (across runs) the recipe. Once those choices are made,
the validation images have done their job, and holding them out of the final model
wastes 15 % of the labelled lesions, most dearly in the rarest classes. A refit trains
the same recipe again, from scratch, on train + validation for exactly the source run's
best number of epochs, at the learning rate each of those epochs had (replayed through
``Training.learning_rates``, since a plateau schedule cannot be re-made without a
validation part), and scores it on the *same* test part. Nothing in a refit is chosen
by its own scores: it has no validation part, keeps its last epoch, and its test
figures can be compared with the source run's.

The refit run folder is an ordinary run folder (``dermkit resume``, ``evaluate``,
``predict`` and ``export`` work on it). It holds the split it was given as
``refit_split.csv`` (the source's ``split.csv`` with every validation row marked
``train``) and ``refit.json``, which names the source run and what was replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from dermkit import atomic
from dermkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.core import ClassIndex, Split
    from dermkit.experiment import RunResult

SPLIT_FILE = "refit_split.csv"
RECORD_FILE = "refit.json"


@attrs.frozen
class RefitPlan:
    """What a refit will train: the recipe, its split rows, and where they came from."""

    source: Path
    config: dict[str, Any]
    split: Split
    """The source's split with its validation part moved into the training part."""
    classes: ClassIndex
    epochs: int
    learning_rates: tuple[float, ...]
    moved: int
    """Validation images that join the training part."""

    def record(self) -> dict[str, Any]:
        return {
            "source_run": str(self.source),
            "epochs": self.epochs,
            "learning_rates": list(self.learning_rates),
            "validation_images_moved_to_train": self.moved,
        }


def plan_refit(
    run_dir: str | Path, out_dir: str | Path, *, max_minutes: float | None = None
) -> RefitPlan:
    """Read a finished run and make the recipe of its refit into ``out_dir``.

    Refuses runs that have not finished a single epoch, runs without a validation part
    (nothing to add), and runs with training stages (their stage boundaries were
    chosen on validation too; refit the stages by hand if needed).
    """
    from dermkit.core import Split
    from dermkit.run_folder import read_run_inputs, read_saved_config
    from dermkit.training.epochs import best_epoch_from_state
    from dermkit.training.trainer import STATE, read_state

    source = Path(run_dir).resolve()
    config = read_saved_config(source)
    state = read_state(source)
    if state is None or int(state.get("epochs_done", 0)) < 1:
        raise ConfigError(
            "this run has not finished an epoch, so it has no best epoch to refit",
            where=str(source / STATE),
            hint="train or resume the run first (`dermkit resume RUN`)",
        )
    training = dict(config.get("training") or {})
    if training.get("stages"):
        raise ConfigError(
            "refit does not handle runs with training stages",
            where=str(source),
            hint="refit a one-stage run, or train the staged recipe on a split file that "
            "marks the validation images 'train' (`dermkit train --split-file`)",
        )
    epochs = best_epoch_from_state(state)
    rates = _epoch_rates(state, training, epochs)
    inputs = read_run_inputs(source)
    if inputs is None:
        raise ConfigError(
            "the run folder lacks classes.json, problems.json or split.csv",
            where=str(source),
            hint="refit needs the folder a finished `dermkit train` wrote",
        )
    loaded, split = inputs
    if not split.val:
        raise ConfigError(
            "this run has no validation part, so a refit would train the same images again",
            where=str(source / "split.csv"),
        )
    merged = Split(train=split.train + split.val, val=(), test=split.test)
    training.update(
        epochs=epochs,
        learning_rates=list(rates),
        schedule="constant",
        early_stopping=None,
        max_minutes=max_minutes,
    )
    refit_config = {
        **config,
        "split": {"name": "file", "path": str(Path(out_dir).resolve() / SPLIT_FILE)},
        "training": training,
        "limit": None,
    }
    return RefitPlan(
        source, refit_config, merged, loaded.classes, epochs, rates, moved=len(split.val)
    )


def _epoch_rates(
    state: Mapping[str, Any], training: Mapping[str, Any], epochs: int
) -> tuple[float, ...]:
    """The learning rate each of the first ``epochs`` epochs trained at (from the history)."""
    recorded = [float(r) for r in (state.get("history") or {}).get("learning_rate", [])]
    if len(recorded) >= epochs:
        return tuple(recorded[:epochs])
    # a history without rates (older runs): the schedule's starting rate throughout
    return (float(training.get("learning_rate", 1e-3)),) * epochs


def refit(
    run_dir: str | Path, out_dir: str | Path, *, max_minutes: float | None = None
) -> RunResult:
    """Train ``run_dir``'s recipe on its train + validation images into ``out_dir``.

    ``max_minutes`` bounds the wall-clock time (``dermkit resume OUT`` continues); by
    default the refit trains all of the source's best number of epochs.
    """
    from dermkit.data.splits import write_split_manifest
    from dermkit.experiment import Experiment
    from dermkit.run_folder import CONFIG_FILE

    out = Path(out_dir)
    if (out / CONFIG_FILE).exists():
        raise ConfigError(
            "this folder already holds a run",
            where=str(out),
            hint=f"continue it with `dermkit resume {out}`, or choose another folder",
        )
    plan = plan_refit(run_dir, out, max_minutes=max_minutes)
    experiment = Experiment.from_config(plan.config)  # checks the recipe before writing
    write_split_manifest(plan.split, plan.classes, out / SPLIT_FILE)
    atomic.write_json(out / RECORD_FILE, plan.record())
    print(
        f"dermkit: refit of {plan.source}: {plan.moved} validation images join the "
        f"training part; {plan.epochs} epochs at the source's learning rates",
        flush=True,
    )
    return experiment.run(out)
