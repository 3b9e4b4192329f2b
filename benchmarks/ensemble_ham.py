"""Single runs against their ensemble, with and without TTA: chosen on validation, then test.

Averaging the probabilities of finished runs (``dermkit evaluate RUN RUN``) and of the
eight flips and quarter turns (``--tta``) are choices, so they are made the honest way:
every arm is scored on the runs' common validation part, the best one is chosen there,
and only then is the test part scored. The test table lists every arm for context, with
the chosen one marked; no figure in it was used for any choice.

    python benchmarks/ensemble_ham.py --runs runs/transfer-lite0/lite0-imagenet \\
        runs/transfer-lite2/lite2-imagenet --out runs/ensemble-ham

Each member predicts each part once per TTA setting (the costly part: a TTA pass is
eight forward passes); the probabilities are kept in ``--out`` so that a second run of
the script only reprints. The members must all have held out the same validation and
test images (one split). Prints the machine
first (``_machine.py``), then the two tables and the time used.

Runs made by ``dermkit refit`` have no validation part, so nothing can be chosen on
them: name the arm chosen on the source runs' validation with ``--chosen`` (e.g.
``--chosen "ensemble + TTA"``) and the script marks it in the test table.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from _entry import run
from _figures import report_figures
from _machine import print_machine

PARTS = ("val", "test")


@attrs.frozen
class Arm:
    """One scored model: a member (or the mean of all members), with or without TTA."""

    name: str
    members: tuple[int, ...]
    tta: bool


def member_names(run_dirs: Sequence[Path]) -> list[str]:
    """Each run's folder name, or ``parent/name`` where two runs share a folder name
    (``transfer_ham.py`` names every Lite0 run ``lite0-imagenet``)."""
    plain = [d.name for d in run_dirs]
    return [f"{d.parent.name}/{d.name}" if plain.count(d.name) > 1 else d.name for d in run_dirs]


def arms(names: Sequence[str]) -> list[Arm]:
    """Each member alone and all of them together, each with and without TTA."""
    out: list[Arm] = []
    groups = [((i,), name) for i, name in enumerate(names)]
    if len(names) > 1:
        groups.append((tuple(range(len(names))), "ensemble"))
    for members, name in groups:
        for tta in (False, True):
            out.append(Arm(name + (" + TTA" if tta else ""), members, tta))
    return out


def model_key(run_dir: Path) -> str:
    """Changes when the run's model file does: a stale probability file is not reused."""
    model = run_dir / "model.keras"
    stat = model.stat()
    text = f"{model.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def member_probabilities(
    loaded: Any, run_dir: Path, records: Sequence[Any], part: str, tta: bool, out: Path
) -> np.ndarray:
    """A member's probabilities on one part, read back from ``out`` when computed before."""
    path = out / f"{run_dir.name}-{model_key(run_dir)}-{part}{'-tta' if tta else ''}.npy"
    if path.is_file():
        try:
            cached = np.load(path)
        except (OSError, ValueError):  # a damaged file from an interrupted run: recompute
            cached = None
        if cached is not None and cached.shape == (len(records), len(loaded.classes)):
            return np.asarray(cached)
    started = time.perf_counter()
    batch = int((loaded.config.get("training") or {}).get("batch_size") or 32)
    probabilities = loaded.predict(records, tta=tta, batch_size=batch)
    seconds = time.perf_counter() - started
    print(
        f"  {run_dir.name} {part}{' TTA' if tta else ''}: {len(records)} images "
        f"in {seconds:.0f} s ({len(records) / seconds:.1f} images/s)",
        flush=True,
    )
    out.mkdir(parents=True, exist_ok=True)
    np.save(path, probabilities)
    return np.asarray(probabilities)


class Scorer:
    """Probabilities of finished runs on their parts, and the figures of their means.

    Each run's probabilities are kept beside it, in its parent folder's
    ``probabilities`` folder, so a later call (``cv_ham.py --combine``, a rerun of
    ``transfer_ham.py --arms lite-pair``) reads what an earlier one computed.

    Members averaged together must have held out the same images in the part scored
    (cross-validation folds: the test parts are one, fold i's validation part is only
    fold i's); :meth:`records` refuses others.
    """

    def __init__(self, loaded: dict[Path, Any]) -> None:
        from dermkit.evaluation.run_scoring import make_evaluator

        self.loaded = loaded
        self._parts: dict[tuple[Path, str], tuple[Any, ...]] = {}  # each split.csv read once
        first = next(iter(loaded.values()))
        self.classes: Any = first.classes  # a ClassIndex: names in label order
        self.evaluator = make_evaluator(first.config, balanced_test=False)

    def part(self, run_dir: Path, part: str) -> tuple[Any, ...]:
        from dermkit.export.calibration import run_part

        if (run_dir, part) not in self._parts:
            self._parts[(run_dir, part)] = run_part(run_dir, part)
        return self._parts[(run_dir, part)]

    def records(self, members: Sequence[Path], part: str) -> tuple[Any, ...]:
        from dermkit.errors import DataError

        records = self.part(members[0], part)
        for other in members[1:]:
            if [r.path for r in self.part(other, part)] != [r.path for r in records]:
                raise DataError(
                    f"its {part} part differs from {members[0]}'s",
                    where=str(other),
                    hint="average only runs that held out the same images: one split, or cv_ham.py "
                    "folds with the same --k and --data",
                )
        return records

    def test_size(self, members: Sequence[Path]) -> int:
        return len(self.records(members, "test"))

    def probabilities(
        self, members: Sequence[Path], records: Sequence[Any], part: str, tta: bool
    ) -> np.ndarray:
        return np.asarray(
            np.mean(
                [
                    member_probabilities(
                        self.loaded[d], d, records, part, tta, d.parent / "probabilities"
                    )
                    for d in members
                ],
                axis=0,
            )
        )

    def figures(self, members: Sequence[Path], part: str, tta: bool) -> dict[str, Any]:
        records = self.records(members, part)
        probabilities = self.probabilities(members, records, part, tta)
        return report_figures(self.evaluator.evaluate(probabilities, records, self.classes))

    def out_of_fold(self, folds: Sequence[Sequence[Path]], tta: bool) -> dict[str, Any]:
        """Every fold scored by the models that held it out, pooled into one figure."""
        parts = [self.records(fold, "val") for fold in folds]
        probabilities = np.concatenate(
            [
                self.probabilities(fold, part, "val", tta)
                for fold, part in zip(folds, parts, strict=True)
            ]
        )
        records = [r for part in parts for r in part]
        return report_figures(self.evaluator.evaluate(probabilities, records, self.classes))


def table(
    part: str,
    rows: list[tuple[Arm, dict[str, Any]]],
    chosen: Arm | None,
    classes: Sequence[str],
    mark: str = "chosen on val",
) -> None:
    print(f"\n{part} part, {rows[0][1]['n']} images:")
    recall = " / ".join(classes)
    print(f"| arm | balanced accuracy (95% CI) | mel sens @ spec 0.8 | recall {recall} |")
    print("|---|---|---:|---|")
    for arm, row in rows:
        ci = f" ({row['ci'][0]:.3f}–{row['ci'][1]:.3f})" if row["ci"] else ""
        mel = row["mel_sens_at_spec_0.8"]
        mel_text = f"{mel:.3f}" if mel is not None else "n/a"
        recall = " / ".join(f"{r:.2f}" for r in row["recall"].values())
        marked = f" **({mark})**" if arm == chosen else ""
        accuracy = f"{row['balanced_accuracy']:.3f}{ci}"
        print(f"| {arm.name}{marked} | {accuracy} | {mel_text} | {recall} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="finished run folders")
    parser.add_argument(
        "--out", default="runs/ensemble-ham", help="folder for the members' probabilities"
    )
    parser.add_argument("--no-tta", action="store_true", help="skip the TTA arms (8x cheaper)")
    parser.add_argument(
        "--chosen",
        metavar="ARM",
        help="for runs without a validation part (refits): the arm chosen beforehand",
    )
    args = parser.parse_args()
    if Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a file; name a folder for the probabilities")
    print_machine()

    from dermkit.ensemble import load_ensemble
    from dermkit.evaluation.run_scoring import make_evaluator
    from dermkit.export.calibration import run_part
    from dermkit.runs import load_run

    started = time.perf_counter()
    run_dirs = [Path(r) for r in args.runs]
    members = [load_run(r) for r in run_dirs]
    if len(members) > 1:
        for part in PARTS:  # refuses members that did not all hold a part out
            load_ensemble(run_dirs).part_records(part)
    names = member_names(run_dirs)
    scored_arms = [a for a in arms(names) if not (args.no_tta and a.tta)]
    classes = members[0].classes
    print(f"members: {', '.join(str(d) for d in run_dirs)}; classes {', '.join(classes)}")
    evaluator = make_evaluator(members[0].config, balanced_test=False)
    out = Path(args.out)
    chosen: Arm | None = None
    if args.chosen is not None:
        named = [a for a in scored_arms if a.name == args.chosen]
        if not named:
            parser.error(
                f"--chosen {args.chosen!r} is none of: {', '.join(a.name for a in scored_arms)}"
            )
        chosen = named[0]
    for part in PARTS:
        records = run_part(run_dirs[0], part)
        if not records:
            print(f"\n{part} part: no images (refit runs train on it); nothing chosen here")
            continue
        rows: list[tuple[Arm, dict[str, Any]]] = []
        for arm in scored_arms:
            probabilities = np.mean(
                [
                    member_probabilities(members[i], run_dirs[i], records, part, arm.tta, out)
                    for i in arm.members
                ],
                axis=0,
            )
            report = evaluator.evaluate(probabilities, records, classes)
            rows.append((arm, report_figures(report)))
        if part == "val" and args.chosen is None:
            chosen = max(rows, key=lambda row: row[1]["balanced_accuracy"])[0]
        table(part, rows, chosen, tuple(classes), "given" if args.chosen else "chosen on val")
    minutes = (time.perf_counter() - started) / 60
    how = "given (--chosen)" if args.chosen is not None else "chosen on validation"
    print(f"\n{how}: {chosen.name if chosen else 'none'}; {minutes:.1f} min used")
    return 0


if __name__ == "__main__":
    run(main)
