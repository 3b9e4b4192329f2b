"""Several finished runs scored as one model: the mean of their class probabilities.

Models that err on different images make fewer errors together, and averaging the
probabilities of a few trained runs (other backbones, other seeds) costs nothing but
prediction time: no retraining, no new choices fitted to any data. The members must
name the same classes in the same order. Each member reads images as it was trained
to (its own size and preprocessing), so a Lite0 at 224 px and a Lite2 at 260 px can be
averaged. Scoring an ensemble on a run's own ``--part`` needs members that all held
that part's images out (one split, or cross-validation folds on their common test
part): otherwise one member's test images are another's training images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit.core import ClassIndex, Dataset, LoadedDataset, Record
from dermkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.evaluation.calibration import TemperatureScaling
    from dermkit.evaluation.report import Report
    from dermkit.runs import LoadedRun, PathOrRecord

SPLIT_FILE = "split.csv"


def _members(members: Sequence[LoadedRun]) -> tuple[LoadedRun, ...]:
    return tuple(members)


def _check_members(instance: Ensemble, attribute: Any, members: tuple[LoadedRun, ...]) -> None:
    """At least two members, all with the classes of the first, in the same order."""
    if len(members) < 2:
        raise ConfigError(
            f"an ensemble needs at least two runs, got {len(members)}",
            where="ensemble",
            hint="pass two or more run folders (or exported models)",
        )
    first = members[0]
    for member in members[1:]:
        if tuple(member.classes) != tuple(first.classes):
            raise ConfigError(
                f"{member.name} predicts classes ({', '.join(member.classes)}) other than "
                f"{first.name}'s ({', '.join(first.classes)})",
                where=str(member.run_dir),
                hint="average only runs trained on the same classes, in the same order",
            )


@attrs.frozen
class Ensemble:
    """Finished runs whose probabilities are averaged: what :func:`load_ensemble` returns.

    It predicts and evaluates like a :class:`~dermkit.runs.LoadedRun`, so
    ``dermkit evaluate RUN RUN...`` and :func:`~dermkit.evaluation.run_scoring.score_run`
    accept it. ``calibrated`` applies each member's own temperature before averaging.
    """

    members: tuple[LoadedRun, ...] = attrs.field(converter=_members, validator=_check_members)

    @property
    def classes(self) -> ClassIndex:
        return self.members[0].classes

    @property
    def run_dir(self) -> Path:
        """Where the ensemble's reports go by default: beside its first member."""
        first = self.members[0]
        folder = first.exported.parent if first.exported is not None else first.run_dir.parent
        return folder / ("ensemble-" + "+".join(m.name for m in self.members))

    @property
    def run_dirs(self) -> tuple[Path, ...]:
        """Every member's run folder, e.g. to check which images any member trained on."""
        return tuple(dict.fromkeys(d for m in self.members for d in m.run_dirs))

    @property
    def name(self) -> str:
        return "ensemble of " + ", ".join(m.name for m in self.members)

    @property
    def exported(self) -> Path | None:
        return None

    @property
    def temperature(self) -> TemperatureScaling | None:
        """No single temperature: each member applies its own."""
        return None

    @property
    def config(self) -> Mapping[str, Any]:
        """What the report shows: how predictions are combined, then each member's config.

        The evaluator settings are the first member's, as for a single run.
        """
        config: dict[str, Any] = {
            "ensemble": {
                "combine": "mean of the members' class probabilities",
                "members": [str(m.model_path) for m in self.members],
            }
        }
        evaluator = self.members[0].config.get("evaluator")
        if evaluator is not None:
            config["evaluator"] = evaluator
        config["members"] = {m.name: dict(m.config) for m in self.members}
        return config

    def scaler(self) -> None:
        """Fails, naming the member, when any member has no fitted temperature."""
        for member in self.members:
            member.scaler()

    def part_records(self, part: str) -> tuple[Record, ...]:
        """The images of ``part`` (``val`` or ``test``) that every member held out.

        Every member's ``split.csv`` must list the same images (path and class) in that
        part; since a manifest never puts one lesion in two parts, no member then trained
        on any of them. So members of one split qualify, and so do cross-validation folds
        scored on their common test part (their training and validation parts differ,
        but none trained on a test image); their validation parts differ, and are
        refused. A :class:`ConfigError` names the two manifests and says what differs.
        """
        from dermkit.data.splits import read_split_manifest

        manifests = [d / SPLIT_FILE for d in self.run_dirs]
        missing = [str(m) for m in manifests if not m.is_file()]
        if missing:
            raise ConfigError(
                f"--part {part} needs every member's split.csv, and some are not there",
                where=", ".join(missing),
                hint="score the ensemble with --data instead",
            )
        splits = [read_split_manifest(m, self.classes) for m in manifests]
        records: tuple[Record, ...] = getattr(splits[0], part)
        wanted = {(str(r.path), r.label) for r in records}
        for manifest, split in zip(manifests[1:], splits[1:], strict=True):
            theirs = {(str(r.path), r.label) for r in getattr(split, part)}
            if theirs != wanted:
                raise ConfigError(
                    f"the members' {part} parts differ ({len(wanted ^ theirs)} images in "
                    f"one but not the other): one member's {part} images may be another's "
                    "training images",
                    where=f"{manifests[0]} and {manifest}",
                    hint="ensemble runs trained with the same split settings and data (or "
                    "cross-validation folds on their common test part), or score the "
                    "ensemble with --data on images none of them trained on",
                )
        return records

    def predict(
        self,
        items: Sequence[PathOrRecord],
        *,
        tta: bool | str = False,
        calibrated: bool = False,
        batch_size: int = 32,
    ) -> np.ndarray:
        """The mean of the members' :meth:`~dermkit.runs.LoadedRun.predict` outputs."""
        if calibrated:
            self.scaler()  # fail before any member predicts
        total = np.zeros((len(items), len(self.classes)), dtype=np.float64)
        for member in self.members:
            total += member.predict(items, tta=tta, calibrated=calibrated, batch_size=batch_size)
        return total / len(self.members)

    def evaluate(
        self,
        dataset: Dataset | LoadedDataset | str | os.PathLike[str],
        *,
        tta: bool = False,
        calibrated: bool = False,
        balanced_test: bool = False,
        batch_size: int | None = None,
    ) -> Report:
        """The ensemble scored on a labelled set, as :meth:`LoadedRun.evaluate` scores a run."""
        from dermkit.evaluation.run_scoring import evaluate_and_warn

        return evaluate_and_warn(
            self,
            dataset,
            tta=tta,
            calibrated=calibrated,
            balanced_test=balanced_test,
            batch_size=batch_size,
        )


def load_ensemble(paths: Sequence[str | os.PathLike[str]], *, trust_code: bool = False) -> Ensemble:
    """Read two or more run folders (or exported models) as one averaged model.

    Each path is read by :func:`~dermkit.runs.load_run`; a :class:`ConfigError` names a
    member whose classes differ from the first's.
    """
    from dermkit.runs import load_run

    return Ensemble(tuple(load_run(p, trust_code=trust_code) for p in paths))
