"""Fit a model with per-epoch checkpoints that survive ``kill -9``, and resume from them.

After every epoch the trainer writes, each atomically: the epoch's checkpoint (the
model with its optimizer state, staged), ``history.csv`` / ``history.json``, then
``state.json`` (epochs done, best epoch counted from 1 like every epoch number a person
reads, best value), and only then moves the checkpoint onto ``checkpoints/last.keras``
(and ``model.keras`` when the monitored metric improved), so a checkpoint never gets
ahead of the state (see :mod:`.checkpoints`). Resuming loads ``last.keras`` and
continues at the next epoch with the same optimizer state and the same per-epoch data
order (see :mod:`.stream`). A loss or weights that turn NaN stop the run before the
epoch is saved (see :mod:`.guards`).
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
from dermkit.training import checkpoints, guards
from dermkit.training.config import Training
from dermkit.training.epochs import STATE_FORMAT, best_epoch_from_state, improved
from dermkit.training.stream import Stream, evaluation_stream, training_stream

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from dermkit.data.pipeline import ImageLoader
    from dermkit.features.store import FeatureCache

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


def make_optimizer(training: Training, steps_per_epoch: int) -> Any:
    import keras

    rate: Any = training.learning_rate
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
    stream = evaluation_stream(records, loader, batch_size=batch_size)
    return np.asarray(model.predict(stream, verbose=0), dtype=np.float64)


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
    def make(on_epoch_end: Callable[[int, dict[str, float]], bool]) -> Any:
        import time

        import keras

        class Callback(keras.callbacks.Callback):  # type: ignore[misc]
            started = 0.0

            def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
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
        tail.compile(
            optimizer=model.optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
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
    feature_cache: FeatureCache | None = None,
) -> FitResult:
    """Train, checkpointing every epoch; with ``resume`` continue from the last checkpoint.

    ``build_model`` makes a fresh, uncompiled model when there is nothing to resume;
    ``model`` may be given instead (already built). ``frozen_prefix_end`` (the model
    factory's) lets the trainer fit only the layers after a frozen prefix, on cached
    activations, when ``training.feature_cache`` allows it; the saved models are
    always the whole network.
    """
    import keras

    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        atomic.remove_stale_temporaries(run_dir)
    state = read_state(run_dir) if resume else None
    if resume:
        checkpoints.recover(run_dir, state)
    history: dict[str, list[float]] = {}
    first_epoch = 0
    best_epoch, best_value = -1, math.nan
    if state is not None and (run_dir / LAST_CHECKPOINT).exists():
        model = checkpoints.load_checkpoint(run_dir / LAST_CHECKPOINT)
        # the checkpoint holds the first call's XLA choice; this call's options decide
        model.jit_compile = None if training.jit_compile == "auto" else training.jit_compile
        first_epoch = int(state["epochs_done"])
        history = {k: list(v) for k, v in state["history"].items()}
        # The loop below counts epochs from 0 (Keras' numbering); state.json from 1.
        best_epoch, best_value = best_epoch_from_state(state) - 1, float(state["best_value"])
        if state.get("stopped_early") or first_epoch >= training.epochs:
            return FitResult(
                history, first_epoch, best_epoch + 1, best_value, bool(state.get("stopped_early"))
            )
    else:
        if model is None:
            model = build_model()
        stream_steps = plan.steps_per_epoch or max(1, -(-len(plan.records) // training.batch_size))
        model.compile(
            optimizer=make_optimizer(training, stream_steps),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=training.jit_compile,
        )
    assert model is not None
    inputs = _fit_inputs(
        model, plan, val_records, loader, training, first_epoch, frozen_prefix_end, feature_cache
    )
    stream = inputs.stream
    val_labels = np.asarray([r.label for r in val_records], dtype=np.int64)
    stopped = {"early": False}
    started = time.perf_counter()
    epochs_this_call = 0

    def on_epoch_end(epoch: int, logs: dict[str, float]) -> bool:
        nonlocal best_epoch, best_value, epochs_this_call
        epochs_this_call += 1
        assert model is not None
        probabilities = inputs.predict_val()
        logs.update(validation_logs(probabilities, val_labels))
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        value = float(logs.get(training.monitor, math.nan))
        # Without a validation part nothing can be monitored: keep the latest epoch
        # (the same rule as dermkit.training.epochs.best_epoch).
        if not val_records or improved(training.monitor, value, best_value) or best_epoch < 0:
            best_epoch, best_value = epoch, value
        staged = checkpoints.stage(run_dir, model, epoch + 1)
        _write_history(run_dir, history)
        patience = training.early_stopping
        stop = patience is not None and epoch - best_epoch >= patience
        stopped["early"] = stop
        if training.max_minutes is not None:
            elapsed = time.perf_counter() - started
            if elapsed * (epochs_this_call + 1) / epochs_this_call > training.max_minutes * 60:
                _say_budget(training.max_minutes, epoch + 1)
                stop_for_budget["now"] = True
        atomic.write_json(
            run_dir / STATE,
            {
                "format_version": STATE_FORMAT,
                "epochs_done": epoch + 1,
                "best_epoch": best_epoch + 1,
                "best_value": best_value,
                "monitor": training.monitor,
                "stopped_early": stop,
                "history": history,
            },
        )
        checkpoints.commit(run_dir, staged, best=best_epoch == epoch)
        return stop or stop_for_budget["now"]

    stop_for_budget = {"now": False}
    callbacks: list[Any] = [
        guards.divergence_guard(run_dir),
        _EpochEnd.make(on_epoch_end),
        *extra_callbacks,
    ]
    if training.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=training.monitor,
                mode="min" if training.monitor == "val_loss" else "max",
                factor=0.5,
                patience=max(2, (training.early_stopping or 4) // 2),
            )
        )
    if first_epoch < training.epochs:
        inputs.trained.fit(
            stream.dataset,
            epochs=training.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=stream.steps_per_epoch,
            class_weight=dict(plan.class_weight) if plan.class_weight else None,
            callbacks=callbacks,
            shuffle=False,  # the stream is already in its seeded per-epoch order
            verbose=progress_verbosity(training.verbose),
        )
    epochs_done = len(next(iter(history.values()), []))
    return FitResult(history, epochs_done, best_epoch + 1, best_value, stopped["early"])
