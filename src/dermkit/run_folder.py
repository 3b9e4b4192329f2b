"""What a run folder records about how it was made: written and read back here.

A run folder is the run's single source of truth: ``config.json`` holds the recipe,
``classes.json``, ``problems.json`` and ``split.csv`` the inputs it was trained on.
:class:`~dermkit.experiment.Experiment` writes them through this module; resuming
(and ``dermkit refit``) reads them back here and refuses a recipe that differs from
the saved one, so a run folder never describes a run that did not happen. Kept apart
from the composition root because the folder format changes for other reasons than
the pipeline does.
(:mod:`dermkit.runs` loads a finished run's *model* for prediction.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dermkit import atomic
from dermkit.config import Difference, differences, path_bases, plain, resolve_saved_paths
from dermkit.core import LoadedDataset, Problem, Record, Split
from dermkit.errors import ConfigError, DataError
from dermkit.recipe_checks import check_recipe

CONFIG_FILE = "config.json"
FORMAT_VERSION = 2
"""2: paths are stored absolute. Version 1 stored them as given, usually relative to
the folder the run was started from; such runs are still read (see
:func:`dermkit.config.resolve_saved_paths`)."""

INPUT_FILES: tuple[str, ...] = ("classes.json", "problems.json", "split.csv")
"""What a run folder records about its data; a resumed run reads these, not the data."""

RESUME_MAY_CHANGE: Mapping[tuple[str, ...], str] = {
    ("training", "epochs"): "raise",
    ("training", "max_minutes"): "any",
    ("training", "verbose"): "any",
    ("cache_dir",): "any",
    ("format_version",): "any",
}
"""Settings a resumed run may change. Raising ``epochs`` trains on; the time budget
(``max_minutes``) applies to each call of fit; progress output and the location of
the decoded-image cache change nothing the model sees. Every other setting is the
recipe, and changing it mid-run would make the run folder describe a run that never
happened."""


def absolute_records(records: Sequence[Record]) -> tuple[Record, ...]:
    """``records`` with absolute paths, so the run's ``split.csv`` resolves from anywhere."""
    return tuple(
        record
        if os.path.isabs(record.path)
        else attrs.evolve(record, path=os.path.abspath(record.path))
        for record in records
    )


RESTORE_HINT = "restore the run folder from a copy, or start the run again in a new folder"


def read_json(path: Path, hint: str | None = RESTORE_HINT) -> Any:
    """One JSON file of a run folder; unreadable or broken is a one-line ConfigError.

    The one reader of run-folder JSON (resume, refit, loading a run for prediction),
    so a damaged file gets the same message whichever command meets it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name} is not UTF-8 text", where=str(path), hint=hint) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read {path.name}: {error.strerror or error}", where=str(path), hint=hint
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path.name} is not valid JSON: {error}", where=str(path), hint=hint
        ) from None


def read_saved_config(run_dir: str | Path) -> dict[str, Any]:
    """A run folder's ``config.json``, with its paths absolute (older runs included)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise ConfigError(
            "no config.json here", where=str(run_dir), hint="pass the folder of a dermkit run"
        )
    config = read_json(path)
    if not isinstance(config, dict):
        raise ConfigError("config.json does not hold a JSON object", where=str(path))
    check_recipe(config, str(path))
    return resolve_saved_paths(config, run_dir)


def refused_changes(saved: Mapping[str, Any], given: Mapping[str, Any]) -> list[Difference]:
    """The differences between two recipes that a resumed run may not make."""
    refused = []
    for difference in differences(plain(saved), plain(given)):
        rule = RESUME_MAY_CHANGE.get(difference.key)
        if rule == "any":
            continue
        if rule == "raise" and _is_raised(difference.saved, difference.given):
            continue
        refused.append(difference)
    return refused


def _is_raised(saved: Any, given: Any) -> bool:
    numbers = (int, float)
    return isinstance(saved, numbers) and isinstance(given, numbers) and given >= saved


def write_run_inputs(run_dir: Path, loaded: LoadedDataset, split: Split) -> None:
    """Write the files :func:`read_run_inputs` reads back (``INPUT_FILES``), atomically."""
    from dermkit.data.splits import write_split_manifest

    atomic.write_json(run_dir / "classes.json", list(loaded.classes.names))
    atomic.write_json(
        run_dir / "problems.json",
        {
            "source": loaded.source,
            "found": loaded.found,
            "used": len(loaded.records),
            "skipped": [p.to_json() for p in loaded.problems],
        },
    )
    write_split_manifest(split, loaded.classes, run_dir / "split.csv")


def read_run_inputs(run_dir: Path) -> tuple[LoadedDataset, Split] | None:
    """The class index, skipped inputs and split a run recorded; ``None`` if incomplete.

    A run stopped before it wrote all of them is started over from its data, which
    gives the same split (the recipe is the same and the split is seeded).
    """
    from dermkit.core import ClassIndex
    from dermkit.data.splits import read_split_manifest

    if not all((run_dir / name).is_file() for name in INPUT_FILES):
        return None
    names = read_json(run_dir / "classes.json")
    problems = read_json(run_dir / "problems.json")
    if not isinstance(names, list) or not isinstance(problems, dict):
        raise ConfigError(
            "classes.json or problems.json is not what dermkit writes",
            where=str(run_dir),
            hint="restore the run folder from a copy, or start the run again in a new folder",
        )
    classes = ClassIndex(tuple(str(n) for n in names))
    split = _resolve_split_paths(read_split_manifest(run_dir / "split.csv", classes), run_dir)
    skipped = tuple(
        Problem(str(p.get("source", "")), str(p.get("reason", "")), str(p.get("hint") or ""))
        for p in problems.get("skipped") or []
        if isinstance(p, dict)
    )
    loaded = LoadedDataset(
        records=tuple(r for part in split.parts().values() for r in part),
        classes=classes,
        problems=skipped,
        found=int(problems.get("found") or 0),
        source=str(problems.get("source") or ""),
    )
    return loaded, split


def _resolve_split_paths(split: Split, run_dir: Path) -> Split:
    """Make the split's image paths absolute, and check that every image is there.

    Runs written before format 2 stored paths relative to the folder they were started
    from; the first base under which the first relative path exists is used for all.
    """
    records = [r for part in split.parts().values() for r in part]
    relative = next((r for r in records if not os.path.isabs(r.path)), None)
    if relative is not None:
        base = next((b for b in path_bases(run_dir) if (b / relative.path).exists()), None)
        if base is None:
            raise DataError(
                f"split.csv names images relative to the folder the run was started from "
                f"(e.g. {str(relative.path)!r}), and they are not found from here",
                where=str(run_dir / "split.csv"),
                hint="run the command once from the folder the run was started in",
            )

        def fix(part: tuple[Record, ...]) -> tuple[Record, ...]:
            return tuple(
                r if os.path.isabs(r.path) else attrs.evolve(r, path=os.path.abspath(base / r.path))
                for r in part
            )

        split = Split(train=fix(split.train), val=fix(split.val), test=fix(split.test))
    missing = [str(r.path) for part in split.parts().values() for r in part if not r.path.exists()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        shown = ", ".join(missing[:3]) + more
        raise DataError(
            f"{len(missing)} image(s) of the run's split are missing: {shown}",
            where=str(run_dir / "split.csv"),
            hint="put the images back where the run found them (a resumed run reads "
            "exactly the images it was split into)",
        )
    return split
