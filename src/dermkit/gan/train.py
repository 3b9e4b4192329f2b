"""The GAN training loop that a user can leave alone.

- **Checkpoints** every ``checkpoint_every`` steps (and at the end, and when stopped):
  ``checkpoints/last.npz`` holds every variable (both networks, the moving average,
  both optimizers), then ``state.json`` (the step and the logs so far) is written, so
  ``state.json`` never points at an incomplete checkpoint. Each checkpoint also
  exports the averaged generator (``generator.keras`` + ``generator.json``), so a
  stopped run can be sampled at once.
- **Resume** continues from the checkpoint with identical weights, and because every
  step's randomness is keyed by ``(seed, step)`` (:mod:`dermkit.gan.step`), it takes
  exactly the steps an uninterrupted run would have taken.
- **Ctrl-C / SIGTERM** finish the current step, write a checkpoint and return; a second
  Ctrl-C aborts at once (the previous checkpoint stays intact: writes are atomic).
- **Watching it**: a per-class grid of real | generated images every ``sample_every``
  steps (``samples/``), losses every ``log_every`` steps (``log.csv``, ``losses.png``),
  KID every ``kid_every`` steps when a feature extractor is available (``kid.csv``,
  ``kid.png``), and a progress line with steps/s and ETA.
- **NaN losses** stop the run with an error before anything is checkpointed, so the
  last checkpoint is always a sane one.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

import attrs
import numpy as np

from dermkit import atomic
from dermkit.errors import ConfigError, DataError
from dermkit.gan.checkpoint import load_checkpoint, save_checkpoint
from dermkit.gan.config import GanConfig
from dermkit.gan.figures import save_curves, save_sample_grid
from dermkit.gan.progress import Progress
from dermkit.gan.quality import FeatureExtractor, kid
from dermkit.gan.run import CHECKPOINT, GENERATOR, GENERATOR_INFO, SAMPLES, STATE, sha256_of
from dermkit.gan.sample import generate_images, latents
from dermkit.gan.step import GanModels, GanStep, build_models, standing_statistics, step_inputs

PREVIEW_GENERATED = 8
PREVIEW_REAL = 4
LOSS_KEYS: tuple[str, ...] = ("d_loss", "g_loss", "d_real", "d_fake")


@attrs.frozen
class TrainResult:
    steps_done: int
    interrupted: bool
    steps_per_second: float
    """Measured over the steps this call ran (not the ones a resume inherited)."""
    seconds: float
    out_of_time: bool = False
    """Stopped because the ``max_minutes`` budget was spent (``interrupted`` is then
    False: the run did what it was asked and can be resumed)."""


def check_budget(max_minutes: float | None) -> None:
    """Refuse a time budget that is not a positive number of minutes."""
    if max_minutes is not None and not (math.isfinite(max_minutes) and max_minutes > 0):
        raise ConfigError(
            f"the time budget must be a positive number of minutes, got {max_minutes!r}",
            where="--max-minutes",
        )


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a polite request; a second SIGINT aborts.

    Only installs handlers in the main thread (Python allows no other).
    """

    def __init__(self, say: Callable[[str], None]) -> None:
        self.requested = False
        self._say = say
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        name = signal.Signals(signum).name
        self._say(
            f"dermkit: {name}: stopping after this step and writing a checkpoint "
            "(Ctrl-C again to abort at once)"
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def read_state(run_dir: Path) -> dict[str, Any] | None:
    state: dict[str, Any] | None = atomic.read_state(
        run_dir / STATE,
        hint="delete checkpoints/ and state.json to start the GAN over",
        error=DataError,
    )
    return state


def _write_rows(run_dir: Path, stem: str, rows: list[dict[str, Any]]) -> None:
    atomic.write_json(run_dir / f"{stem}.json", rows)
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    lines = [",".join(keys)]
    for row in rows:
        lines.append(",".join("" if row.get(k) is None else f"{row[k]:.6g}" for k in keys))
    atomic.write_text(run_dir / f"{stem}.csv", "\n".join(lines) + "\n")


class GanTrainer:
    """Trains one GAN on in-memory images and writes everything into ``run_dir``.

    ``images`` are uint8 ``(n, s, s, 3)`` at the configured size; ``labels`` their
    positions in ``config.classes``. ``extractor`` (optional) provides features for the
    KID logged during training.
    """

    def __init__(
        self,
        config: GanConfig,
        images: np.ndarray,
        labels: np.ndarray,
        run_dir: str | Path,
        *,
        extractor: FeatureExtractor | None = None,
        quiet: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        if not config.classes:
            raise ConfigError("the GAN has no classes to generate", where="gan option classes")
        if images.ndim != 4 or images.shape[1:] != (config.image_size, config.image_size, 3):
            raise ConfigError(
                f"images have shape {images.shape[1:]}, the GAN is for "
                f"{config.image_size}×{config.image_size} RGB",
                where="gan training images",
            )
        if len(images) != len(labels) or len(images) == 0:
            raise DataError("the GAN needs a label for every training image, and some images")
        self.config = config
        self.images = images
        self.labels = labels.astype(np.int32)
        self.run_dir = Path(run_dir)
        self.extractor = extractor
        self.quiet = quiet
        self.stream = stream
        counts = np.bincount(self.labels, minlength=len(config.classes)).astype(np.float64)
        self.class_probabilities = counts / counts.sum()
        self.models: GanModels | None = None
        self.log_rows: list[dict[str, Any]] = []
        self.kid_rows: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ setup
    def _preview(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Fixed real picks and fixed latents per class, so grids show progress over time."""
        rng = np.random.default_rng([self.config.seed, 0x9E1])
        real: dict[str, np.ndarray] = {}
        z_parts, label_parts = [], []
        for label, name in enumerate(self.config.classes):
            members = np.flatnonzero(self.labels == label)
            if len(members):
                pick = rng.choice(members, size=min(PREVIEW_REAL, len(members)), replace=False)
                real[name] = self.images[np.sort(pick)]
            z_parts.append(
                latents(self.config.seed + 7919, label, 0, PREVIEW_GENERATED, self.config.z_dim)
            )
            label_parts.append(np.full(PREVIEW_GENERATED, label, dtype=np.int32))
        return real, np.concatenate(z_parts), np.concatenate(label_parts)

    def _real_features(self) -> dict[str, np.ndarray]:
        assert self.extractor is not None
        return {
            name: self.extractor(self.images[self.labels == label])
            for label, name in enumerate(self.config.classes)
        }

    # ------------------------------------------------------------------ events
    def _refresh_ema(self, models: GanModels) -> None:
        standing_statistics(
            models.ema_generator,
            self.class_probabilities,
            self.config.z_dim,
            seed=self.config.seed,
        )

    def _save_grid(self, models: GanModels, step: int, preview: Any) -> None:
        real, z, labels = preview
        images = generate_images(models.ema_generator, labels, z)
        generated = {
            name: images[labels == label] for label, name in enumerate(self.config.classes)
        }
        folder = self.run_dir / SAMPLES
        title = f"step {step}: real | generated (averaged generator)"
        save_sample_grid(folder / f"step_{step:06d}.png", real, generated, title)
        save_sample_grid(folder / "latest.png", real, generated, title)

    def _log_kid(self, models: GanModels, step: int, real_features: dict[str, np.ndarray]) -> None:
        assert self.extractor is not None
        row: dict[str, Any] = {"step": step}
        generated, reals = [], []
        for label, name in enumerate(self.config.classes):
            count = self.config.kid_samples
            z = latents(self.config.seed + 104729, label, 0, count, self.config.z_dim)
            images = generate_images(models.ema_generator, np.full(count, label), z)
            features = self.extractor(images)
            row[f"kid_{name}"] = kid(features, real_features[name], seed=step)[0]
            generated.append(features)
            reals.append(real_features[name])
        row["kid_all"] = kid(np.concatenate(generated), np.concatenate(reals), seed=step)[0]
        self.kid_rows.append(row)
        _write_rows(self.run_dir, "kid", self.kid_rows)
        keys = [k for k in row if k != "step"]
        save_curves(
            self.run_dir / "kid.png",
            self.kid_rows,
            keys,
            title="KID during training",
            ylabel="KID",
            log_scale=True,
        )

    def _write_logs(self) -> None:
        _write_rows(self.run_dir, "log", self.log_rows)
        save_curves(
            self.run_dir / "losses.png",
            self.log_rows,
            LOSS_KEYS,
            title="GAN losses (hinge) and mean discriminator scores",
            ylabel="value",
        )

    def _checkpoint(self, models: GanModels, step: int) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT, models)
        self._export(models, step)
        atomic.write_json(
            self.run_dir / STATE,
            {
                "step": step,
                "finished": step >= self.config.steps,
                "config": self.config.to_config(),
                "log": self.log_rows,
                "kid": self.kid_rows,
            },
        )

    def _export(self, models: GanModels, step: int) -> None:
        from dermkit.gan.networks import save_generator

        save_generator(models.ema_generator, self.run_dir / GENERATOR)
        atomic.write_json(
            self.run_dir / GENERATOR_INFO,
            {
                "step": step,
                "sha256": sha256_of(self.run_dir / GENERATOR),
                "finished": step >= self.config.steps,
            },
        )

    # ------------------------------------------------------------------ loop
    def fit(self, *, resume: bool = False, max_minutes: float | None = None) -> TrainResult:
        """Train up to ``config.steps``; with ``resume`` continue from the last checkpoint.

        ``max_minutes`` is a wall-clock budget for this session: when it is spent the
        run stops as after Ctrl-C (checkpoint, generator and grid saved), so a CPU
        run can be given "two hours" rather than a step count guessed from a speed
        that varies between machines. It is not part of the recipe (``gan.json``).
        """
        config = self.config
        check_budget(max_minutes)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            atomic.remove_stale_temporaries(self.run_dir)
        models = build_models(config)
        self.models = models
        start = 0
        state = read_state(self.run_dir) if resume else None
        if state is not None and (self.run_dir / CHECKPOINT).exists():
            load_checkpoint(self.run_dir / CHECKPOINT, models)
            start = int(state["step"])
            self.log_rows = list(state.get("log", []))
            self.kid_rows = list(state.get("kid", []))
        progress = Progress(
            config.steps, start, every=config.log_every, stream=self.stream, enabled=not self.quiet
        )
        say = progress.message
        if start >= config.steps:
            say(f"dermkit: the GAN already ran {start} steps (raise --steps to train on)")
            return TrainResult(start, False, 0.0, 0.0)
        train_step = GanStep(models, config)
        preview = self._preview()
        real_features = self._real_features() if self.extractor and config.kid_every else {}
        window: dict[str, list[float]] = {key: [] for key in LOSS_KEYS}
        started = time.perf_counter()
        window_started = started
        step = start
        checkpointed = start
        deadline = None if max_minutes is None else started + 60.0 * max_minutes
        out_of_time = False
        with StopRequest(say) as stop:
            while step < config.steps and not stop.requested:
                if deadline is not None and time.perf_counter() >= deadline:
                    out_of_time = True
                    break
                values = train_step(step_inputs(self.images, self.labels, config, step))
                if not all(math.isfinite(v) for v in values.values()):
                    raise DataError(
                        f"the GAN losses became {values} at step {step + 1}",
                        where=str(self.run_dir),
                        hint=f"the last checkpoint (step {checkpointed}) is intact: resume "
                        "with lower learning rates (--lr-g, --lr-d)",
                    )
                step += 1
                for key in LOSS_KEYS:
                    window[key].append(values[key])
                progress.update(step, values)
                if step % config.log_every == 0 or step == config.steps:
                    now = time.perf_counter()
                    count = len(window["d_loss"])
                    self.log_rows.append(
                        {
                            "step": step,
                            **{key: float(np.mean(v)) for key, v in window.items()},
                            "steps_per_second": count / max(now - window_started, 1e-9),
                        }
                    )
                    window = {key: [] for key in LOSS_KEYS}
                    window_started = now
                    self._write_logs()
                grid = step % config.sample_every == 0
                measure = bool(real_features) and step % config.kid_every == 0
                save = step % config.checkpoint_every == 0
                if grid or measure or save:
                    self._refresh_ema(models)
                if grid:
                    self._save_grid(models, step, preview)
                if measure:
                    self._log_kid(models, step, real_features)
                    say(
                        f"dermkit: step {step}: KID "
                        + ", ".join(
                            f"{k[4:]} {v:.4f}" for k, v in self.kid_rows[-1].items() if k != "step"
                        )
                    )
                if save:
                    self._checkpoint(models, step)
                    checkpointed = step
            interrupted = stop.requested and step < config.steps
        if checkpointed != step:
            self._refresh_ema(models)
            if step % config.sample_every:
                self._save_grid(models, step, preview)
            if window["d_loss"]:
                self.log_rows.append(
                    {"step": step, **{key: float(np.mean(v)) for key, v in window.items()}}
                )
                self._write_logs()
            self._checkpoint(models, step)
        progress.close()
        seconds = time.perf_counter() - started
        rate = (step - start) / seconds if seconds > 0 else 0.0
        if out_of_time:
            say(
                f"dermkit: the {max_minutes:g}-minute budget is spent at step {step}; "
                "checkpoint and generator saved (continue with --resume)"
            )
        elif interrupted:
            say(
                f"dermkit: stopped at step {step}; checkpoint and generator saved "
                f"(resume with --resume)"
            )
        return TrainResult(step, interrupted, rate, seconds, out_of_time)
