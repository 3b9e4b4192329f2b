"""Train a GAN from a dataset path in one call: what ``dermkit gan train`` runs.

::

    from dermkit.gan import GanConfig
    from dermkit.gan.api import train_gan

    train_gan("data/ham10000", "gans/rare", GanConfig(classes=("df", "vasc", "akiec")))

The dataset is split by lesion with :class:`~dermkit.data.splits.GroupedStratifiedSplit`
(``val``, ``test`` and ``config.seed``: the options of ``dermkit train``), the split is
recorded, and the GAN trains on the training part of ``config.classes`` only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import attrs

from dermkit import atomic
from dermkit.core import LoadedDataset, Split
from dermkit.data.images import ImageSettings
from dermkit.data.open import open_dataset
from dermkit.data.splits import (
    GroupedStratifiedSplit,
    read_split_manifest,
    write_split_manifest,
)
from dermkit.errors import ConfigError
from dermkit.gan.config import GanConfig
from dermkit.gan.data import GanData, prepare, split_options
from dermkit.gan.run import GAN_FILE, SPLIT_FILE, STATE, GanRun, write_training_images
from dermkit.gan.train import GanTrainer, TrainResult


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def train_gan(
    data: str | Path,
    out: str | Path,
    config: GanConfig | None = None,
    *,
    format: str = "auto",
    val: float = 0.15,
    test: float = 0.15,
    cache_dir: str | None = None,
    strict: bool = False,
    features: str = "auto",
    classifier: str | Path | None = None,
    resume: bool = False,
    steps: int | None = None,
    max_minutes: float | None = None,
    quiet: bool = False,
    say: Callable[[str], None] = _say,
) -> TrainResult:
    """Start (or with ``resume`` continue) a generator run in ``out``.

    On resume every option comes from the run's ``gan.json`` except ``steps``, which
    may raise the step count to train on, and ``max_minutes``, this session's wall-clock
    budget (see :meth:`GanTrainer.fit`). ``features``/``classifier`` choose the
    network for the KID logged during training (see
    :func:`dermkit.gan.quality.resolve_extractor`).
    """
    from dermkit import runlock
    from dermkit.gan.train import check_budget

    check_budget(max_minutes)
    folder = Path(out)
    with runlock.hold(folder):  # one writer per run folder, as for `dermkit train`
        if (folder / STATE).exists() and not resume:
            raise ConfigError(
                "this folder already holds a GAN run",
                where=str(folder),
                hint="pass --resume to continue it, or choose another --out folder",
            )
        if resume and (folder / GAN_FILE).exists():
            run, loaded, split = _reopen(folder, steps=steps, strict=strict)
            say(f"dermkit: resuming {folder} (options from gan.json; {run.config.steps} steps)")
            prepared = prepare(loaded, split, run.config.classes, run.config.image_size, cache_dir)
            _check_same_images(run, prepared)
        else:
            config = config if config is not None else GanConfig()
            if steps is not None:
                config = attrs.evolve(config, steps=steps)
            run, loaded, split = _start(folder, data, config, format, val, test, strict)
            prepared = prepare(loaded, split, run.config.classes, run.config.image_size, cache_dir)
            _record_start(run, loaded, split, prepared)
        config = run.config
        counts = ", ".join(
            f"{name} {int((prepared.labels == i).sum())}" for i, name in enumerate(config.classes)
        )
        say(f"dermkit: GAN training images (training part only): {counts}")
        extractor = None
        if config.kid_every:
            from dermkit.gan.quality import resolve_extractor

            extractor, described = resolve_extractor(features, classifier)
            say(f"dermkit: KID features: {described}")
        trainer = GanTrainer(
            config, prepared.images, prepared.labels, folder, extractor=extractor, quiet=quiet
        )
        return trainer.fit(resume=resume, max_minutes=max_minutes)


def _reopen(
    folder: Path, *, steps: int | None, strict: bool
) -> tuple[GanRun, LoadedDataset, Split]:
    """The run in ``folder`` with its own data and split; only the step count may rise."""
    run = GanRun.open(folder)
    if steps is not None:
        run = attrs.evolve(run, config=attrs.evolve(run.config, steps=steps))
    loaded = open_dataset(run.data["path"], format=run.data.get("format", "auto")).load(
        strict=strict
    )
    return run, loaded, read_split_manifest(folder / SPLIT_FILE, loaded.classes)


def _start(
    folder: Path,
    data: str | Path,
    config: GanConfig,
    format: str,
    val: float,
    test: float,
    strict: bool,
) -> tuple[GanRun, LoadedDataset, Split]:
    """A new run: the dataset split by lesion as ``dermkit train`` splits it."""
    loaded = open_dataset(data, format=format).load(strict=strict)
    if not config.classes:
        config = attrs.evolve(config, classes=loaded.classes.names)
    split = GroupedStratifiedSplit(val=val, test=test, seed=config.seed).split(
        loaded.records, loaded.classes
    )
    run = GanRun(
        folder=folder,
        config=config,
        data={"path": str(Path(data).resolve()), "format": format},
        split=split_options(val, test, config.seed),
        image=ImageSettings(size=config.image_size).to_config(),
    )
    return run, loaded, split


def _record_start(run: GanRun, loaded: LoadedDataset, split: Split, prepared: GanData) -> None:
    """Write what a resume and the balancer's split check read: options, split, images."""
    run.folder.mkdir(parents=True, exist_ok=True)
    run.write()
    write_split_manifest(split, loaded.classes, run.folder / SPLIT_FILE)
    write_training_images(run.folder, prepared.training)
    atomic.write_json(
        run.folder / "problems.json",
        {
            "source": loaded.source,
            "found": loaded.found,
            "used": len(loaded.records),
            "skipped": [p.to_json() for p in loaded.problems],
        },
    )


def _check_same_images(run: GanRun, prepared: GanData) -> None:
    known = {image.path for image in run.training_images()}
    if known != {image.path for image in prepared.training}:
        raise ConfigError(
            "the dataset no longer gives the training images this GAN started with",
            where=str(run.folder),
            hint="resume with the same data, or start a new run in another folder",
        )
