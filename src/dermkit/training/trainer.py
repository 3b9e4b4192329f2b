"""Fit a model with per-epoch checkpoints that survive ``kill -9``, and resume from them.

After every epoch the trainer writes, each atomically: the epoch's checkpoint (the
model with its optimizer state, staged), ``history.csv`` / ``history.json``, then
``state.json`` (epochs done, best epoch counted from 1 like every epoch number a person
reads, best value, training stage), and only then moves the checkpoint onto
``checkpoints/last.keras`` (and ``model.keras`` when the monitored metric improved), so
a checkpoint never gets ahead of the state (see :mod:`.checkpoints`). Resuming loads
``last.keras`` and continues at the next epoch with the same optimizer state and the
same per-epoch data order (see :mod:`.stream`), in the same stage (see :mod:`.stages`).
A loss or weights that turn NaN stop the run before the epoch is saved (see
:mod:`.guards`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit import atomic
from dermkit.core import Record, TrainingPlan
from dermkit.evaluation.metrics import balanced_accuracy
from dermkit.training import checkpoints, guards, stop_requests
from dermkit.training.config import Training
from dermkit.training.epochs import improved
from dermkit.training.randomness import reseed_random_layers
from dermkit.training.stream import Stream, evaluation_stream, training_stream

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from dermkit.data.pipeline import ImageLoader
    from dermkit.features.store import FeatureCache
    from dermkit.training.stages import Progress

LAST_CHECKPOINT = Path("checkpoints") / "last.keras"
BEST_MODEL = Path("model.keras")
STATE = Path("state.json")


@attrs.frozen
class FitResult:
    """What :func:`fit` did; ``best_epoch`` counts from 1, like ``history.csv``."""

    history: dict[str, list[float]]
    epochs_done: int
    best_epoch: int
    best_value: float
    stopped_early: bool


def compile_for_training(
    model: Any,
    optimizer: Any,
    jit_compile: bool | str = "auto",
    *,
    soft_labels: bool = False,
    logit_offsets: Sequence[float] | None = None,
) -> None:
    """The one loss and metric every fit uses (a whole model, a cached tail, a new stage).

    ``soft_labels``: the targets are class-probability vectors (mixup), not class indices.
    ``logit_offsets``: the plan's logit adjustment (:mod:`.losses`), else plain
    cross-entropy.
    """
    from dermkit.training.losses import training_loss

    model.compile(
        optimizer=optimizer,
        loss=training_loss(logit_offsets, soft_labels=soft_labels),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


def make_optimizer(training: Training, steps_per_epoch: int) -> Any:
    import keras

    rate: Any = training.rate_of_epoch(0)
    if training.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            training.learning_rate, decay_steps=max(1, training.epochs * steps_per_epoch)
        )
    if training.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    if training.optimizer == "adamax":
        return keras.optimizers.Adamax(rate)
    if training.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=training.weight_decay)
    return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)


def predict_probabilities(
    model: keras.Model, records: Sequence[Record], loader: ImageLoader, batch_size: int
) -> np.ndarray:
    """Class probabilities for ``records`` in order, shape ``(len(records), classes)``."""
    if not records:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    from dermkit.training.distribute import predict

    stream = evaluation_stream(records, loader, batch_size=batch_size)
    return np.asarray(predict(model, stream), dtype=np.float64)


def validation_logs(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The per-epoch validation figures, computed once from one prediction pass."""
    if len(labels) == 0:
        return {}
    picked = probabilities[np.arange(len(labels)), labels]
    predicted = probabilities.argmax(axis=1)
    return {
        "val_loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
        "val_accuracy": float(np.mean(predicted == labels)),
        "val_balanced_accuracy": balanced_accuracy(labels, predicted, probabilities.shape[1]),
    }


def progress_verbosity(requested: int) -> int:
    """Keras' ``verbose`` to use: a progress bar only where it can redraw itself.

    Written to a log file or a pipe, Keras' bar is a stream of carriage returns and
    backspaces; there one line per epoch (``verbose=2``) is what a reader wants.
    Notebooks redraw bars fine, so they keep them.
    """
    if requested != 1:
        return requested
    stream = sys.stdout
    try:
        terminal = bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced stdout
        terminal = False
    return 1 if terminal or "ipykernel" in sys.modules else 2


def read_state(run_dir: Path) -> dict[str, Any] | None:
    state: dict[str, Any] | None = atomic.read_state(
        run_dir / STATE,
        hint="delete the run folder's checkpoints/ and state.json to start over",
    )
    return checkpoints.check_state(state, run_dir / STATE)


def _say_budget(minutes: float, epochs: int) -> None:
    print(
        f"dermkit: stopping after epoch {epochs}: the next epoch would exceed the "
        f"{minutes:g}-minute budget (resume with a larger budget to continue)",
        file=sys.stderr,
    )


def _write_history(run_dir: Path, history: dict[str, list[float]]) -> None:
    atomic.write_json(run_dir / "history.json", history)
    keys = list(history)
    rows = ["epoch," + ",".join(keys)]
    epochs = len(next(iter(history.values()), []))
    for i in range(epochs):
        rows.append(f"{i + 1}," + ",".join(f"{history[k][i]:.6g}" for k in keys))
    atomic.write_text(run_dir / "history.csv", "\n".join(rows) + "\n")


class _EpochEnd:
    """Keras callback (built lazily so this module imports without TensorFlow)."""

    @staticmethod
    def make(on_epoch_end: Callable[[int, dict[str, float]], bool], seed: int) -> Any:
        import time

        import keras

        class Callback(keras.callbacks.Callback):  # type: ignore[misc]
            started = 0.0

            def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                reseed_random_layers(self.model, seed, epoch)
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                logs = logs if logs is not None else {}
                logs["epoch_seconds"] = time.perf_counter() - self.started
                if on_epoch_end(epoch, logs):
                    self.model.stop_training = True

        return Callback()


@attrs.frozen
class _FitInputs:
    """What ``fit`` trains (the model, or its tail), on which stream, validated how."""

    trained: Any
    stream: Stream
    predict_val: Callable[[], np.ndarray]


def _fit_inputs(
    model: keras.Model,
    plan: TrainingPlan,
    val_records: Sequence[Record],
    loader: ImageLoader,
    training: Training,
    first_epoch: int,
    frozen_prefix_end: Callable[[keras.Model], str | None] | None,
    cache: FeatureCache | None,
) -> _FitInputs:
    """Pixels through the whole model, or cached prefix activations through its tail.

    The tail shares the model's layers and, when the model is compiled, its optimizer
    (so ``model.save`` checkpoints the tail's optimizer state and a resumed run picks
    it up exactly); the model is what gets saved and evaluated either way.
    """
    from dermkit.features import training as cached

    cut_layer = frozen_prefix_end(model) if frozen_prefix_end is not None else None
    decision = cached.choose(
        training.feature_cache, training.cache_views, plan, cut_layer, model.name
    )
    if decision.message:
        _say(f"dermkit: {decision.message}")
    if decision.use and cut_layer is not None:
        features = cached.prepare(
            model,
            cut_layer,
            plan,
            val_records,
            loader,
            views=decision.views,
            batch_size=training.batch_size,
            cache=cache,
        )
        tail = features.cut.tail
        compile_for_training(tail, model.optimizer, logit_offsets=plan.logit_offsets)
        stream = features.stream(
            plan,
            batch_size=training.batch_size,
            seed=training.seed,
            first_epoch=first_epoch,
            epochs=training.epochs,
        )
        return _FitInputs(tail, stream, lambda: features.predict_val(training.batch_size))
    stream = training_stream(
        plan,
        loader,
        batch_size=training.batch_size,
        seed=training.seed,
        first_epoch=first_epoch,
        epochs=training.epochs,
    )
    return _FitInputs(
        model,
        stream,
        lambda: predict_probabilities(model, val_records, loader, training.batch_size),
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fit(
    model: keras.Model | None,
    build_model: Callable[[], keras.Model],
    plan: TrainingPlan,
    val_records: Sequence[Record],
    loader: ImageLoader,
    training: Training,
    run_dir: Path,
    *,
    resume: bool = False,
    extra_callbacks: Sequence[Any] = (),
    frozen_prefix_end: Callable[[keras.Model], str | None] | None = None,
    set_trainable_layers: Callable[[keras.Model, int], None] | None = None,
    feature_cache: FeatureCache | None = None,
) -> FitResult:
    """Train, checkpointing every epoch; with ``resume`` continue from the last checkpoint.

    ``build_model`` makes a fresh, uncompiled model when there is nothing to resume;
    ``model`` may be given instead (already built). ``frozen_prefix_end`` (the model
    factory's) lets the trainer fit only the layers after a frozen prefix, on cached
    activations, when ``training.feature_cache`` allows it; the saved models are
    always the whole network. ``training.stages`` run one after the other, each from
    the best model so far (:mod:`.stages`); ``set_trainable_layers`` (the factory's)
    re-freezes the backbone for a stage that asks for it.
    """
    from dermkit.training import stages as staging

    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        atomic.remove_stale_temporaries(run_dir)
    state = read_state(run_dir) if resume else None
    if resume:
        checkpoints.recover(run_dir, state)
    progress = staging.Progress()
    if state is not None and (run_dir / LAST_CHECKPOINT).exists():
        model = checkpoints.load_checkpoint(run_dir / LAST_CHECKPOINT)
        # the checkpoint holds the first call's XLA choice; this call's options decide
        model.jit_compile = None if training.jit_compile == "auto" else training.jit_compile
        progress = staging.Progress.from_state(state)
    else:
        if model is None:
            model = build_model()
        compile_for_training(
            model,
            make_optimizer(training, _steps(plan, training)),
            training.jit_compile,
            logit_offsets=plan.logit_offsets,
        )
    assert model is not None
    started = time.perf_counter()
    epochs_this_call = [0]
    while True:
        stage = staging.settings(training, progress.stage)
        if progress.stage_over(stage.epochs):
            if progress.stage + 1 > len(training.stages):
                break
            progress = progress.next_stage()
            model = staging.start(
                run_dir / BEST_MODEL,
                model,
                training.stages[progress.stage - 1],
                training,
                _steps(plan, training),
                set_trainable_layers,
                logit_offsets=plan.logit_offsets,
            )
            _say(
                f"dermkit: stage {progress.stage + 1} of {len(training.stages) + 1} from "
                f"epoch {progress.first_epoch + 1}: {staging.describe(model)}"
            )
            continue
        budget_spent = _fit_stage(
            model,
            plan,
            val_records,
            loader,
            training,
            stage,
            run_dir,
            progress,
            started,
            epochs_this_call,
            extra_callbacks,
            frozen_prefix_end,
            feature_cache,
        )
        if budget_spent or not progress.stage_over(stage.epochs):
            break  # out of time, or a callback stopped training
    return FitResult(
        progress.history,
        progress.epochs_done,
        progress.best_epoch + 1,
        progress.best_value,
        progress.stopped_early and progress.stage == len(training.stages),
    )


def _steps(plan: TrainingPlan, training: Training) -> int:
    return plan.steps_per_epoch or max(1, -(-len(plan.records) // training.batch_size))


def _fit_stage(
    model: keras.Model,
    plan: TrainingPlan,
    val_records: Sequence[Record],
    loader: ImageLoader,
    training: Training,
    stage: Training,
    run_dir: Path,
    progress: Progress,
    started: float,
    epochs_this_call: list[int],
    extra_callbacks: Sequence[Any],
    frozen_prefix_end: Callable[[keras.Model], str | None] | None,
    feature_cache: FeatureCache | None,
) -> bool:
    """Run the current stage's remaining epochs; ``True`` if the time budget ran out.

    ``stage`` is the stage's settings with ``epochs`` its own length; ``progress`` (a
    :class:`dermkit.training.stages.Progress`) is updated and written to ``state.json``
    after every epoch.
    """
    import keras

    end = progress.first_epoch + stage.epochs
    inputs = _fit_inputs(
        model,
        plan,
        val_records,
        loader,
        attrs.evolve(stage, epochs=end),
        progress.epochs_done,
        frozen_prefix_end,
        feature_cache,
    )
    stream = inputs.stream
    dataset = stream.dataset
    class_weight = dict(plan.class_weight) if plan.class_weight else None
    if stage.mixup > 0:
        from dermkit.training.mixup import mix_batches

        dataset = mix_batches(
            dataset,
            alpha=stage.mixup,
            classes=int(model.output_shape[-1]),
            class_weight=class_weight,
            seed=training.seed,
            first_step=progress.epochs_done * stream.steps_per_epoch,
        )
        class_weight = None  # mixed into the sample weights
        # the same optimizer object, so its state (and a resumed run's) carries over
        compile_for_training(
            inputs.trained,
            model.optimizer,
            training.jit_compile,
            soft_labels=True,
            logit_offsets=plan.logit_offsets,
        )
    val_labels = np.asarray([r.label for r in val_records], dtype=np.int64)
    stop_for_budget = {"now": False}
    history = progress.history

    def on_epoch_end(epoch: int, logs: dict[str, float]) -> bool:
        epochs_this_call[0] += 1
        probabilities = inputs.predict_val()
        logs.update(validation_logs(probabilities, val_labels))
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        if training.stages:
            logs["stage"] = float(progress.stage + 1)
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        value = float(logs.get(training.monitor, math.nan))
        # Without a validation part nothing can be monitored: keep the latest epoch
        # (the same rule as dermkit.training.epochs.best_epoch).
        if (
            not val_records
            or improved(training.monitor, value, progress.best_value)
            or progress.best_epoch < 0
        ):
            progress.best_epoch, progress.best_value = epoch, value
        staged = checkpoints.stage(run_dir, model, epoch + 1)
        _write_history(run_dir, history)
        patience = training.early_stopping
        # patience counts within the stage: a new stage gets its own epochs to improve
        since = epoch - max(progress.best_epoch, progress.first_epoch - 1)
        stop = patience is not None and since >= patience
        progress.epochs_done = epoch + 1
        progress.stopped_early = stop
        if training.max_minutes is not None:
            elapsed = time.perf_counter() - started
            done = epochs_this_call[0]
            if elapsed * (done + 1) / done > training.max_minutes * 60:
                _say_budget(training.max_minutes, epoch + 1)
                stop_for_budget["now"] = True
        atomic.write_json(run_dir / STATE, progress.to_state(training.monitor))
        checkpoints.commit(run_dir, staged, best=progress.best_epoch == epoch)
        return stop or stop_for_budget["now"]

    callbacks: list[Any] = [
        stop_requests.batch_edge_callback(),
        guards.divergence_guard(run_dir),
        _EpochEnd.make(on_epoch_end, training.seed),
        *extra_callbacks,
    ]
    if stage.learning_rates:
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda e, _: stage.rate_of_epoch(e)))
    if stage.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=training.monitor,
                mode="min" if training.monitor == "val_loss" else "max",
                factor=0.5,
                patience=max(2, (training.early_stopping or 4) // 2),
            )
        )
    with stop_requests.keras_loop():  # SIGTERM / Ctrl-C stop at a batch edge
        inputs.trained.fit(
            dataset,
            epochs=end,
            initial_epoch=progress.epochs_done,
            steps_per_epoch=stream.steps_per_epoch,
            class_weight=class_weight,
            callbacks=callbacks,
            shuffle=False,  # the stream is already in its seeded per-epoch order
            verbose=progress_verbosity(training.verbose),
        )
    return stop_for_budget["now"]
