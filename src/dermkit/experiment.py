"""The composition root: data → split → balance → build → fit → evaluate → run folder.

``Experiment`` is what users touch first::

    from dermkit import Experiment, HAM10000, ClassWeights, Augment, Training

    Experiment(
        data=HAM10000("data/ham10000"),
        model="lfn",
        balancer=[ClassWeights(), Augment()],
        training=Training(epochs=25, batch_size=32, optimizer="adamax"),
    ).run("runs/lfn")

Its whole configuration round-trips through JSON (``config.json`` in the run folder),
so ``Experiment.from_run("runs/lfn").run("runs/lfn-again")`` re-creates the run, and
``Experiment.resume("runs/lfn")`` continues a stopped one with nothing but the folder.
The run folder holds everything needed to audit it: which image went to which part
(``split.csv``), what was skipped and why (``problems.json``), the class index, the
training plan, the history, the best model and the evaluation report.

Resuming trusts the run folder, never the caller: the recipe, class index, split and
skipped inputs are read back from it, and a resumed experiment whose settings differ
from the saved recipe is refused (only ``epochs`` may be raised and the time budget
changed). Paths are stored absolute (see :mod:`dermkit.config`), so a run resumes
from any working directory.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit import atomic
from dermkit.config import (
    absolute_paths,
    build_component,
    component_config,
)
from dermkit.core import (
    BalanceContext,
    Balancer,
    ClassIndex,
    Dataset,
    Evaluator,
    LoadedDataset,
    ModelFactory,
    Record,
    Split,
    Splitter,
    TrainingPlan,
)
from dermkit.errors import ConfigError
from dermkit.recipe_checks import check_recipe, validator
from dermkit.run_folder import (
    CONFIG_FILE,
    FORMAT_VERSION,
    absolute_records,
    read_run_inputs,
    read_saved_config,
    refused_changes,
    write_run_inputs,
)
from dermkit.training.config import Training

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.training import distribute


def _as_dataset(value: Dataset | str | Path) -> Dataset:
    if isinstance(value, (str, Path)):
        from dermkit.data.open import open_dataset

        dataset: Dataset = open_dataset(value)
        return dataset
    return value


def _as_balancers(value: Balancer | Sequence[Balancer] | None) -> tuple[Balancer, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(build_component("balancers", v) if isinstance(v, str) else v for v in value)
    if isinstance(value, str):
        return (build_component("balancers", value),)
    single: Balancer = value  # type: ignore[assignment]
    return (single,)


def _as_model(value: ModelFactory | str) -> ModelFactory:
    if isinstance(value, str):
        factory: ModelFactory = build_component("models", value)
        return factory
    return value


def _as_evaluator(value: Evaluator | str) -> Evaluator:
    if isinstance(value, str):
        evaluator: Evaluator = build_component("evaluators", value)
        return evaluator
    return value


def _as_splitter(value: Splitter | str | None) -> Splitter:
    if value is None:
        from dermkit.data.splits import GroupedStratifiedSplit

        return GroupedStratifiedSplit()
    if isinstance(value, str):
        splitter: Splitter = build_component("splitters", value)
        return splitter
    return value


MIN_GROUPS_PER_CLASS = 3
"""Groups per class a limited subsample keeps (where available): one per split part."""


def limit_records(records: Sequence[Record], limit: int | None, seed: int) -> tuple[Record, ...]:
    """A seeded subsample of about ``limit`` records that keeps whole groups and every class.

    Used for smoke runs (``--limit 200``): groups are drawn class by class in proportion
    to class size, with at least three groups per class where available, so the split
    can still stratify.
    """
    if limit is None or limit >= len(records):
        return tuple(records)
    rng = np.random.default_rng(seed)
    groups_by_label: dict[int, dict[str, list[Record]]] = {}
    for record in records:
        groups_by_label.setdefault(record.label, {}).setdefault(record.group, []).append(record)
    kept: list[Record] = []
    for label in sorted(groups_by_label):
        groups = groups_by_label[label]
        names = sorted(groups)
        share = sum(len(g) for g in groups.values()) / len(records)
        target = max(MIN_GROUPS_PER_CLASS, round(limit * share))
        taken = 0
        for count, index in enumerate(rng.permutation(len(names))):
            # Count groups as well as images: lesions with several images could
            # otherwise reach the image target with fewer groups than the split needs.
            if taken >= target and count >= MIN_GROUPS_PER_CLASS:
                break
            members = groups[names[index]]
            kept.extend(members)
            taken += len(members)
    return tuple(kept)


@attrs.frozen
class RunResult:
    """What :meth:`Experiment.run` produced, and where."""

    run_dir: Path
    history: dict[str, list[float]]
    metrics: dict[str, Any]
    """Headline figures per part, e.g. ``metrics["val"]["balanced_accuracy"]``."""


@attrs.define
class Experiment:
    """One training run, fully described by its components.

    ``data`` is a :class:`~dermkit.core.Dataset` or a path (format auto-detected).
    ``model`` a :class:`~dermkit.core.ModelFactory` or a registered name. ``balancer``
    one balancer, a list applied in order, or ``None``. ``image_size`` overrides the
    model's default input size. ``limit`` keeps a seeded subsample for smoke runs.
    ``cache_dir`` is the decoded-image cache (``None``: default location; ``""``: off).
    """

    data: Dataset = attrs.field(converter=_as_dataset)
    split: Splitter = attrs.field(default=None, converter=_as_splitter)
    model: ModelFactory = attrs.field(factory=lambda: _as_model("lfn"), converter=_as_model)
    balancer: tuple[Balancer, ...] = attrs.field(default=None, converter=_as_balancers)
    training: Training = attrs.field(factory=Training)
    evaluator: Evaluator = attrs.field(
        factory=lambda: _as_evaluator("standard"), converter=_as_evaluator
    )
    image_size: int | None = attrs.field(default=None, validator=validator("image_size"))
    resize_mode: str = "squash"
    interpolation: str = "lanczos4"
    limit: int | None = attrs.field(default=None, validator=validator("limit"))
    strict: bool = attrs.field(default=False, validator=validator("strict"))
    cache_dir: str | None = attrs.field(default=None, validator=validator("cache_dir"))

    # ----------------------------------------------------------------- config
    @property
    def balancers(self) -> tuple[Balancer, ...]:
        return self.balancer

    def to_config(self) -> dict[str, Any]:
        """The whole recipe as JSON types, with every stored path absolute."""
        return absolute_paths(self._config())

    def _config(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "data": component_config(self.data),
            "split": component_config(self.split),
            "model": component_config(self.model),
            "balancers": [component_config(b) for b in self.balancers],
            "training": self.training.to_config(),
            "evaluator": component_config(self.evaluator),
            "image": {
                "size": self.image_size,
                "resize_mode": self.resize_mode,
                "interpolation": self.interpolation,
            },
            "limit": self.limit,
            "strict": self.strict,
            "cache_dir": self.cache_dir,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Experiment:
        """Re-create an experiment from :meth:`to_config` output (e.g. a run's ``config.json``)."""
        check_recipe(config)
        try:
            image = config.get("image") or {}
            return cls(
                data=build_component("datasets", config["data"]),
                split=build_component("splitters", config["split"]),
                model=build_component("models", config["model"]),
                balancer=[build_component("balancers", b) for b in config.get("balancers", [])],
                training=Training.from_config(dict(config.get("training") or {})),
                evaluator=build_component("evaluators", config.get("evaluator") or "standard"),
                image_size=image.get("size"),
                resize_mode=image.get("resize_mode", "squash"),
                interpolation=image.get("interpolation", "lanczos4"),
                limit=config.get("limit"),
                strict=config.get("strict", False),
                cache_dir=config.get("cache_dir"),
            )
        except KeyError as error:
            raise ConfigError(f"the configuration lacks the key {error}") from None

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Experiment:
        """The experiment a run folder's ``config.json`` describes (from any directory)."""
        return cls.from_config(read_saved_config(run_dir))

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        *,
        epochs: int | None = None,
        max_minutes: float | None = None,
    ) -> RunResult:
        """Continue a stopped run from its folder alone; ``epochs`` may only be raised.

        Everything else (data, split, model, balancers, training settings) comes from
        the run folder, exactly as ``dermkit resume RUN`` does.
        """
        experiment = cls.from_run(run_dir)
        changes: dict[str, Any] = {}
        if epochs is not None:
            changes["epochs"] = epochs
        if max_minutes is not None:
            changes["max_minutes"] = max_minutes
        if changes:
            experiment.training = Training.from_config(
                {**experiment.training.to_config(), **changes}
            )
        return experiment.run(run_dir, resume=True)

    def check_resumable(self, saved: Mapping[str, Any], *, where: str) -> None:
        """Raise :class:`ConfigError` unless this is the saved recipe (``RESUME_MAY_CHANGE``)."""
        refused = refused_changes(saved, self.to_config())
        if refused:
            raise ConfigError(
                "a resumed run must keep the recipe it was started with, but "
                + "; ".join(d.render() for d in refused),
                where=where,
                hint="resume with Experiment.resume(run_dir) (only epochs may be raised and "
                "max_minutes changed), or run the changed recipe into a new folder",
            )

    # ----------------------------------------------------------------- pieces
    @property
    def input_size(self) -> int:
        return self.image_size or self.model.default_input_size

    def image_loader(self) -> Any:
        from dermkit.data.cache import ImageCache
        from dermkit.data.images import ImageSettings
        from dermkit.data.pipeline import ImageLoader

        settings = ImageSettings(
            size=self.input_size,
            resize_mode=self.resize_mode,  # type: ignore[arg-type]  # validated by ImageSettings
            interpolation=self.interpolation,  # type: ignore[arg-type]
        )
        cache = None if self.cache_dir == "" else ImageCache(self.cache_dir)
        return ImageLoader(settings, cache)

    def load_data(self) -> LoadedDataset:
        """Load the dataset, refuse one that cannot be trained on, and say what to know.

        Skipped and ignored inputs are shown grouped (every one is in
        ``problems.json``); then no usable image, or a class without one, is a
        ``DataError``, before a run folder exists; then the dataset's warnings, such as
        a split that cannot be grouped by lesion.
        """
        from dermkit.data.checks import problem_lines, usability_errors

        loaded = self.data.load(strict=self.strict)
        errors = usability_errors(loaded)
        # a refused dataset gets no run folder, so no problems.json to point to
        listing = "`dermkit data inspect --json`" if errors else "problems.json"
        for ignored, label in ((False, "skipped"), (True, "ignored")):
            lines = problem_lines(loaded.problems, ignored=ignored, listed_in=listing)
            for line in lines[:10]:
                _say(f"dermkit: {label}: {line}")
            if len(lines) > 10:
                _say(f"dermkit: {label}: {len(lines) - 10} more kinds; see {listing}")
        if errors:
            raise errors[0]
        for warning in loaded.warnings:
            _say(f"dermkit: warning: {warning}")
        return loaded

    def make_split(self, records: Sequence[Record], classes: ClassIndex) -> Split:
        return self.split.split(records, classes)

    def make_plan(
        self, train: Sequence[Record], classes: ClassIndex, *, batch_size: int | None = None
    ) -> TrainingPlan:
        """The balanced training plan; ``batch_size`` is the global batch of a step
        (default: ``training.batch_size``, the batch of one device)."""
        plan = TrainingPlan(records=tuple(train))
        context = BalanceContext(
            classes=classes,
            batch_size=batch_size or self.training.batch_size,
            seed=self.training.seed,
        )
        for balancer in self.balancers:
            plan = balancer.apply(plan, context)
        return plan

    # ----------------------------------------------------------------- run
    def run(self, out_dir: str | Path, *, resume: bool = False) -> RunResult:
        """Run the whole flow and write the run folder; ``resume`` continues a stopped run.

        With ``resume`` and a run in ``out_dir``, this experiment must be the saved
        recipe (``epochs`` may be raised); the class index, split and skipped inputs are
        read from the folder, not from the data. Without a run there, it starts one.
        Only one process at a time may write a run folder (see :mod:`dermkit.runlock`).
        """
        from dermkit import runlock
        from dermkit.training import distribute

        # first: a multi-worker strategy must exist before TensorFlow runs anything;
        # only the chief writes (and locks) the run folder
        placement = distribute.make_placement(self.training.distribute)
        lock = runlock.hold(out_dir) if placement.chief else contextlib.nullcontext()
        with lock:
            return self._run_locked(out_dir, resume=resume, placement=placement)

    def _run_locked(
        self, out_dir: str | Path, *, resume: bool, placement: distribute.Placement
    ) -> RunResult:
        from dermkit.training import distribute, trainer
        from dermkit.training.reload_check import check_model_reloads

        fitting = distribute.fit_settings(self.training, placement)
        run_dir = Path(out_dir)
        existing = run_dir / CONFIG_FILE
        started_training = (run_dir / trainer.STATE).exists()
        if existing.exists() and started_training and not resume:
            raise ConfigError(
                "this folder already holds a dermkit run",
                where=str(run_dir),
                hint="pass --resume to continue it, or choose another --out folder",
            )
        if resume and existing.exists():
            self.check_resumable(read_saved_config(run_dir), where=str(existing))
        if self.limit is not None and getattr(self.split, "name", None) == "file":
            raise ConfigError(
                "a limit cannot be combined with a split file: the file names the images",
                where="limit",
                hint="drop --limit, or write a smaller split file",
            )

        # Everything that can fail on bad input or options happens before the run
        # folder is written, so a failed start leaves nothing half-made behind.
        saved_inputs = read_run_inputs(run_dir) if resume and existing.exists() else None
        if saved_inputs is None:
            loaded = self.load_data()
            records = limit_records(
                absolute_records(loaded.records), self.limit, self.training.seed
            )
            split = self.make_split(records, loaded.classes)
        else:
            loaded, split = saved_inputs
        classes = loaded.classes
        plan = self.make_plan(split.train, classes, batch_size=fitting.batch_size)
        loader = self.image_loader()
        resuming = resume and (run_dir / trainer.LAST_CHECKPOINT).exists()
        policy = _set_precision(self.training.mixed_precision)
        placed = contextlib.ExitStack()
        try:
            # a non-chief worker writes to a temporary folder, never into the run folder
            out = placed.enter_context(distribute.worker_folder(run_dir, placement))
            placed.enter_context(distribute.scope(placement))
            import keras

            keras.utils.set_random_seed(self.training.seed)
            model = None
            if not resuming:
                model = self.model.build(len(classes), self.input_size)
                check_model_reloads(model, model_name=plugins_name(self.model))
                self._check_fit_settings(model, plan)

            out.mkdir(parents=True, exist_ok=True)
            atomic.write_json(out / CONFIG_FILE, self.to_config())
            _say(f"dermkit: run folder {run_dir}" + ("" if placement.chief else " (the chief's)"))
            if placement.strategy is not None:
                _say(placement.describe(self.training.batch_size))
            if saved_inputs is None:
                self._write_inputs(out, loaded, split, plan)
            else:
                _say(
                    f"dermkit: resuming with the run's own split ({len(split.train)} train / "
                    f"{len(split.val)} val / {len(split.test)} test images)"
                )
                atomic.write_json(out / "plan.json", _plan_summary(plan, classes))
            result = trainer.fit(
                model,
                lambda: self.model.build(len(classes), self.input_size),
                plan,
                split.val,
                loader,
                fitting,
                out,
                resume=resume,
                extra_callbacks=distribute.stop_agreement(placement),
                frozen_prefix_end=getattr(self.model, "frozen_prefix_end", None),
                set_trainable_layers=getattr(self.model, "set_trainable_layers", None),
            )
        finally:
            placed.close()
            _restore_precision(policy)
        if not placement.chief:  # the chief evaluates and writes the report
            return RunResult(run_dir=run_dir, history=result.history, metrics={})
        metrics = self.evaluate_run(run_dir, split, classes, loader, loaded, plan, result.history)
        return RunResult(run_dir=run_dir, history=result.history, metrics=metrics)

    def _check_fit_settings(self, model: Any, plan: TrainingPlan) -> None:
        """Refuse what the model cannot honour before the run folder is written (the
        trainer decides the same again when it fits): a feature-cache setting, in the
        first stage or a later one, and a re-freezing asked of a model whose factory
        cannot re-freeze or that has too few layers."""
        from dermkit.features.training import choose

        setter = getattr(self.model, "set_trainable_layers", None)
        prefix_end = getattr(self.model, "frozen_prefix_end", None)

        def check_cache(mode: str) -> None:
            cut = prefix_end(model) if prefix_end is not None else None
            choose(mode, self.training.cache_views, plan, cut, model.name)

        check_cache(self.training.feature_cache)
        if not self.training.stages:
            return
        flags = [(layer, layer.trainable) for layer in model.layers]
        try:
            for number, stage in enumerate(self.training.stages, start=2):
                if stage.trainable_layers is not None:
                    if setter is None:
                        raise ConfigError(
                            f"training stage {number} sets trainable_layers, but model "
                            f"{plugins_name(self.model)} cannot be re-frozen",
                            where="training options: stages",
                            hint="leave trainable_layers out of the stage, or use a backbone "
                            "model (resnet50, inception_v3, efficientnet_lite*)",
                        )
                    setter(model, stage.trainable_layers)
                check_cache(stage.feature_cache)
        finally:
            for layer, flag in flags:
                layer.trainable = flag

    def _write_inputs(
        self,
        run_dir: Path,
        loaded: LoadedDataset,
        split: Split,
        plan: TrainingPlan,
    ) -> None:
        """Record what the run is made of: classes, skipped inputs, split and plan."""
        from dermkit.data.checks import is_ignored

        classes = loaded.classes
        write_run_inputs(run_dir, loaded, split)
        skipped = [p for p in loaded.problems if not is_ignored(p)]
        if skipped:
            _say(f"dermkit: skipped {len(skipped)} input(s); see problems.json")
        _say(
            f"dermkit: {len(split.train)} train / {len(split.val)} val / "
            f"{len(split.test)} test images"
        )
        atomic.write_json(run_dir / "plan.json", _plan_summary(plan, classes))
        for note in plan.notes:
            _say(f"dermkit: {note}")

    def evaluate_run(
        self,
        run_dir: Path,
        split: Split,
        classes: ClassIndex,
        loader: Any,
        loaded: LoadedDataset,
        plan: TrainingPlan,
        history: dict[str, list[float]],
    ) -> dict[str, Any]:
        """Score the best model on validation and test; write the report folder."""
        from dermkit.evaluation.report import RunContext
        from dermkit.models import load_model
        from dermkit.training.trainer import BEST_MODEL, predict_probabilities

        # Inference only: no optimizer state (which also differs under mixed precision).
        model = load_model(run_dir / BEST_MODEL, compile=False)
        metrics: dict[str, Any] = {}
        started = time.perf_counter()
        for part, records in (("val", split.val), ("test", split.test)):
            if not records:
                continue
            probabilities = predict_probabilities(model, records, loader, self.training.batch_size)
            _save_array(run_dir / f"probabilities_{part}.npy", probabilities)
            if part == "val":
                # Fitted on validation only; `evaluate`/`predict --calibrated` apply it.
                from dermkit.evaluation.calibration import TemperatureScaling

                labels = np.asarray([r.label for r in records])
                TemperatureScaling.fit(probabilities, labels).save(run_dir / "temperature.json")
            report = self.evaluator.evaluate(probabilities, records, classes)
            context = RunContext(
                config=self.to_config(),
                part=part,
                counts={
                    name: [sum(1 for r in recs if r.label == i) for i in range(len(classes))]
                    for name, recs in split.parts().items()
                },
                skipped=[p.to_json() for p in loaded.problems],
                history=history,
                notes=list(plan.notes),
            )
            report.write(run_dir / f"report_{part}", context=context)
            metrics[part] = report.headline()
            _say(f"dermkit: {part}: {report.summary_line()}")
        from dermkit.training.epochs import best_epoch

        epoch_seconds = history.get("epoch_seconds", [])
        summary = {
            "epochs": len(epoch_seconds),
            "best_epoch": best_epoch(history, self.training.monitor),
            "seconds_per_epoch": float(np.mean(epoch_seconds)) if epoch_seconds else None,
            "evaluation_seconds": time.perf_counter() - started,
            **metrics,
        }
        atomic.write_json(run_dir / "summary.json", summary)
        return summary


def _save_array(target: Path, values: np.ndarray) -> None:
    """``np.save`` through :mod:`dermkit.atomic`: a killed run leaves no cut-off array."""

    def write(tmp: Path) -> None:
        np.save(tmp, values)

    atomic.write_with(target, write)


def plugins_name(component: object) -> str:
    """A component's registry name, for messages."""
    return str(getattr(component, "name", type(component).__name__))


def _plan_summary(plan: TrainingPlan, classes: ClassIndex) -> dict[str, Any]:
    return {
        "images_per_class": dict(zip(classes.names, plan.counts(len(classes)), strict=True)),
        "synthetic": len(plan.synthetic_records),
        "sampling": plan.sampling,
        "steps_per_epoch": plan.steps_per_epoch,
        "class_weight": (
            {classes.name(int(k)): v for k, v in plan.class_weight.items()}
            if plan.class_weight
            else None
        ),
        "augmentations": list(plan.augmentations),
        "logit_offsets": (
            dict(zip(classes.names, plan.logit_offsets, strict=True))
            if plan.logit_offsets is not None
            else None
        ),
        "notes": list(plan.notes),
    }


def _set_precision(mixed: bool) -> Any:
    if not mixed:
        return None
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    return previous


def _restore_precision(previous: Any) -> None:
    if previous is not None:
        import keras

        keras.mixed_precision.set_global_policy(previous)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
