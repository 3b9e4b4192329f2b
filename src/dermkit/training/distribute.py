"""Training on several devices or machines with ``tf.distribute``, as ``Training.distribute`` says.

Synchronous data parallelism only: every replica holds the whole model, each step
splits one global batch across the replicas, and the gradients are summed before one
identical update everywhere. ``"mirrored"`` uses this machine's GPUs (its CPUs when
it has none); ``"multi_worker"`` the machines ``TF_CONFIG`` names, one process each.

Three rules keep a distributed run the same kind of run folder as any other:

- ``Training.batch_size`` is the batch *per replica*; a step trains on
  ``batch_size * replicas`` images, and the seeded data order
  (:mod:`dermkit.training.stream`) is drawn for that global batch, so every replica
  gets distinct images and a resumed run sees the batches it would have seen.
- Every model is built, compiled and loaded inside the strategy's scope
  (:func:`scope`), including a resumed checkpoint and a later stage's start.
- With several workers only the chief (task 0) writes the run folder; the others
  write their checkpoints to a temporary folder that is deleted at the end
  (:func:`worker_folder`), and all of them print a fingerprint of their final
  weights so that anyone can see they agree.

``DERMKIT_LOGICAL_CPUS=N`` splits this machine's CPU into N logical devices for
``"mirrored"``: useless for speed (they share the same cores) but it lets a machine
without GPUs exercise the multi-replica code, which is how the tests run it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit.errors import ConfigError
from dermkit.training.config import Training

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

LOGICAL_CPUS_ENV = "DERMKIT_LOGICAL_CPUS"
TF_CONFIG_ENV = "TF_CONFIG"

_TF_CONFIG_EXAMPLE = (
    'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\' on the first machine, index 1 on the second'
)

# Files a resumed worker needs from the run folder (the chief's) to continue in step.
_RESUME_FILES: tuple[Path, ...] = (
    Path("state.json"),
    Path("checkpoints") / "last.keras",
    Path("model.keras"),
    Path("history.json"),
)


@attrs.frozen
class Placement:
    """Where a run trains: the strategy (``None``: plain single-device Keras) and its shape."""

    mode: str
    strategy: Any = None
    devices: tuple[str, ...] = ()
    worker: int = 0
    """This process's task index in ``TF_CONFIG`` (0 without one)."""
    workers: int = 1
    chief: bool = True
    """Whether this process writes the run folder."""

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync) if self.strategy is not None else 1

    @property
    def multi_worker(self) -> bool:
        return self.mode == "multi_worker"

    def describe(self, batch_size: int) -> str:
        """The log line that says how the run is spread, e.g. for the tests to read."""
        if self.strategy is None:
            return ""
        where = ", ".join(self.devices)
        text = (
            f"dermkit: distribute={self.mode}: {self.replicas} replica(s) on {where}; "
            f"{batch_size} images per replica, {batch_size * self.replicas} per step"
        )
        if self.multi_worker:
            role = "chief, writes the run folder" if self.chief else "writes no run files"
            text += f"; worker {self.worker} of {self.workers} ({role})"
        return text


def make_placement(mode: str) -> Placement:
    """The strategy ``Training.distribute`` asks for, made before TensorFlow runs anything.

    ``MultiWorkerMirroredStrategy`` in particular must be created before any other
    TensorFlow operation of the process, and logical CPUs can only be configured then.
    """
    if mode == "none":
        return Placement(mode="none")
    import tensorflow as tf

    if mode == "mirrored":
        _split_cpu(tf)
        gpus = [str(d.name) for d in tf.config.list_logical_devices("GPU")]
        mirrored = gpus or [str(d.name) for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=mirrored)
        return Placement(mode=mode, strategy=strategy, devices=tuple(mirrored))
    if mode == "multi_worker":
        task_type, index, workers = read_tf_config(os.environ.get(TF_CONFIG_ENV))
        _patch_keras_for_multi_worker()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError, tf.errors.OpError) as error:
            raise ConfigError(
                f"cannot start this worker: {error}",
                where=TF_CONFIG_ENV,
                hint="check that this task's address is free and reachable by the others, "
                "and that no TensorFlow work ran in this process before the strategy",
            ) from None
        resolver = strategy.cluster_resolver
        chief = _is_chief(str(resolver.task_type or task_type), int(resolver.task_id or 0))
        devices = tuple(strategy.extended.worker_devices)
        return Placement(
            mode=mode,
            strategy=strategy,
            devices=devices,
            worker=index,
            workers=workers,
            chief=chief,
        )
    raise ConfigError(
        f"unknown distribute mode {mode!r}",
        where="training options: distribute",
        hint="use none, mirrored or multi_worker",
    )


def _is_chief(task_type: str, index: int) -> bool:
    return task_type == "chief" or (task_type == "worker" and index == 0)


def _split_cpu(tf: Any) -> None:
    """Honour ``DERMKIT_LOGICAL_CPUS`` (only possible before TensorFlow initialises)."""
    raw = os.environ.get(LOGICAL_CPUS_ENV, "").strip()
    if not raw:
        return
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(
            f"{LOGICAL_CPUS_ENV} must be a whole number of at least 1, got {raw!r}",
            where=LOGICAL_CPUS_ENV,
            hint="e.g. DERMKIT_LOGICAL_CPUS=2, or unset it",
        )
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        raise ConfigError(
            f"{LOGICAL_CPUS_ENV}={count} came too late: TensorFlow had already started in "
            "this process",
            where=LOGICAL_CPUS_ENV,
            hint="set it in the environment of a fresh process (e.g. `DERMKIT_LOGICAL_CPUS=2 "
            "dermkit train ... --distribute mirrored`)",
        ) from None


def read_tf_config(raw: str | None) -> tuple[str, int, int]:
    """``(task type, task index, number of tasks)`` from ``TF_CONFIG``, or a clear error.

    Without ``TF_CONFIG`` TensorFlow would quietly train alone; a run that asked for
    several machines should not.
    """
    if raw is None or not raw.strip():
        raise ConfigError(
            "distribute=multi_worker needs TF_CONFIG, the cluster and this process's place "
            "in it, and it is not set",
            where=TF_CONFIG_ENV,
            hint=_TF_CONFIG_EXAMPLE,
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"TF_CONFIG is not valid JSON: {error}", where=TF_CONFIG_ENV, hint=_TF_CONFIG_EXAMPLE
        ) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError(
            "TF_CONFIG needs a 'cluster' and a 'task' object",
            where=TF_CONFIG_ENV,
            hint=_TF_CONFIG_EXAMPLE,
        )
    jobs = {
        name: addresses
        for name, addresses in cluster.items()
        if name in ("chief", "worker") and isinstance(addresses, list) and addresses
    }
    if not jobs or not all(isinstance(a, str) and ":" in a for v in jobs.values() for a in v):
        raise ConfigError(
            "TF_CONFIG's cluster must list the workers as 'host:port' strings",
            where=TF_CONFIG_ENV,
            hint=_TF_CONFIG_EXAMPLE,
        )
    task_type, index = task.get("type"), task.get("index")
    if task_type not in jobs or not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise ConfigError(
            f"TF_CONFIG's task {task!r} is not one of its cluster's tasks",
            where=TF_CONFIG_ENV,
            hint="give task.type 'worker' (or 'chief') and task.index 0..N-1, different on "
            "every machine",
        )
    offset = len(jobs.get("chief", [])) if task_type == "worker" else 0
    return str(task_type), offset + index, sum(len(v) for v in jobs.values())


def fit_settings(training: Training, placement: Placement) -> Training:
    """The settings the trainer fits with: the global batch, and no frozen-feature cache.

    The recipe keeps the per-replica ``batch_size``; the trainer, which draws the data
    order and batches the stream, gets ``batch_size * replicas``. The frozen-feature
    cache computes activations with ``predict_on_batch``, which under a strategy
    returns one copy of the batch per replica, and streams them through a Python
    function each worker would run for the whole batch; so under a strategy
    ``"auto"`` trains on pixels and ``"on"`` is refused (before the run folder exists).
    """
    if placement.strategy is None:
        return training
    return attrs.evolve(
        training,
        batch_size=training.batch_size * placement.replicas,
        feature_cache=_no_cache(training.feature_cache, "training options", placement),
        stages=tuple(
            attrs.evolve(stage, feature_cache=_no_cache(stage.feature_cache, "stages", placement))
            for stage in training.stages
        ),
    )


def _no_cache(mode: str, where: str, placement: Placement) -> Any:
    if mode == "on":
        raise ConfigError(
            f"feature_cache=on does not work with distribute={placement.mode}",
            where=f"{where}: feature_cache",
            hint="use feature_cache auto or off (a distributed run trains on pixels), or "
            "train on one device (distribute=none) to use the cache",
        )
    return "off"


def scope(placement: Placement) -> contextlib.AbstractContextManager[Any]:
    """The strategy's scope, in which every model must be built, compiled and loaded."""
    if placement.strategy is None:
        return contextlib.nullcontext()
    manager: contextlib.AbstractContextManager[Any] = placement.strategy.scope()
    return manager


@contextlib.contextmanager
def worker_folder(run_dir: Path, placement: Placement) -> Iterator[Path]:
    """The folder this process writes: the run folder, or a temporary one for a non-chief.

    A non-chief worker resuming a run starts from copies of the chief's checkpoint and
    state (so every worker must see the run folder: a shared file system, or a copy at
    the same path). Before training, the workers check that they all see the same
    number of finished epochs; afterwards each prints a fingerprint of its final
    weights (the chief's is that of ``checkpoints/last.keras``).
    """
    if not placement.multi_worker:
        yield run_dir
        return
    from dermkit.training.trainer import LAST_CHECKPOINT, read_state

    state = read_state(run_dir) if (run_dir / LAST_CHECKPOINT).exists() else None
    done = int(state["epochs_done"]) if state is not None else 0
    if not _all_equal(placement.strategy, done):
        raise ConfigError(
            "the workers see different progress in the run folder, so they cannot resume in step",
            where=str(run_dir),
            hint="every worker must see the same run folder at the same path: a shared file "
            "system, or copy the chief's folder to the others before resuming",
        )
    if placement.chief:
        yield run_dir
        _say_fingerprint(run_dir / LAST_CHECKPOINT, placement)
        return
    folder = Path(tempfile.mkdtemp(prefix=f"dermkit-worker{placement.worker}-"))
    try:
        if state is not None:
            for name in _RESUME_FILES:
                if (run_dir / name).is_file():
                    (folder / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(run_dir / name, folder / name)
        yield folder
        _say_fingerprint(folder / LAST_CHECKPOINT, placement)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _all_equal(strategy: Any, value: int) -> bool:
    """Whether every replica holds the same ``value`` (all workers reach the same answer).

    Collectives only sum, so compare ``n * sum(v**2)`` with ``sum(v)**2``: equal exactly
    when all ``v`` are equal (Cauchy-Schwarz).
    """
    sums = sum_over_replicas(strategy, [float(value), float(value) ** 2])
    return bool(strategy.num_replicas_in_sync * sums[1] == sums[0] ** 2)


def sum_over_replicas(strategy: Any, values: Sequence[float]) -> np.ndarray:
    """``values`` summed over every replica of every worker (a collective: all must call it)."""
    import tensorflow as tf

    @tf.function  # type: ignore[untyped-decorator]  # eager cross-worker calls are slow and warn
    def total() -> Any:
        local = strategy.run(lambda: tf.constant(list(values), dtype=tf.float64))
        return strategy.reduce("SUM", local, axis=None)

    return np.asarray(total())


def stop_agreement(placement: Placement) -> list[Any]:
    """Keras callbacks that make all workers stop together.

    Each worker judges early stopping and the time budget itself; were one to stop
    and another not, the other would wait forever for its peer. After every epoch the
    workers stop if any of them wants to.
    """
    if not placement.multi_worker:
        return []
    import keras

    strategy = placement.strategy

    class StopTogether(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            wants = 1.0 if self.model.stop_training else 0.0
            self.model.stop_training = bool(sum_over_replicas(strategy, [wants])[0] > 0)

    return [StopTogether()]


def predict(model: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """``model.predict`` over ``dataset``, locally on every worker when there are several.

    Keras' multi-worker predict shards the data across workers and gathers the
    results; each worker computing every prediction itself is simpler and gives all
    of them the same validation figures (they hold the same weights), which they need
    to agree on the best epoch and on early stopping.
    """
    import tensorflow as tf

    strategy = getattr(model, "distribute_strategy", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        outputs = [np.asarray(model(batch, training=False)) for batch in dataset]
        return np.concatenate(outputs) if outputs else np.zeros((0,), dtype=np.float32)
    return np.asarray(model.predict(dataset, verbose=0))


def weights_fingerprint(weights: Sequence[Any]) -> str:
    """A short hash of a model's weight values: equal on workers that trained in step."""
    digest = hashlib.sha256()
    for weight in weights:
        array = np.ascontiguousarray(np.asarray(weight))
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def checkpoint_fingerprint(path: Path) -> str:
    """:func:`weights_fingerprint` of a saved model's weights."""
    from dermkit.models import load_model

    return weights_fingerprint(load_model(path, compile=False).get_weights())


def _say_fingerprint(checkpoint: Path, placement: Placement) -> None:
    if not checkpoint.exists():
        return
    print(
        f"dermkit: worker {placement.worker} of {placement.workers}: final weights "
        f"fingerprint {checkpoint_fingerprint(checkpoint)}",
        file=sys.stderr,
        flush=True,
    )


_PATCHED = False


def _patch_keras_for_multi_worker() -> None:
    """Work around two bugs of Keras 3's TensorFlow trainer with several workers.

    ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585,
    open as of Keras 3.15): the symbolic build "reduces" the first input batch across
    workers, and the per-step logs are reduced along an axis scalars do not have.
    The replacements take one replica's batch for the (shape-only) build, and average
    the logs over all replicas. Nothing else of Keras changes; single-machine runs
    never load these.
    """
    global _PATCHED
    if _PATCHED:
        return
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    original_reduce = trainer.reduce_per_replica

    def symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                first = next(batches)
                data_batch = tree.map_structure(
                    lambda v: (
                        self.distribute_strategy.experimental_local_results(v)[0]
                        if isinstance(v, tf.distribute.DistributedValues)
                        else v
                    ),
                    first,
                )
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda v: (
                    strategy.reduce("MEAN", v, axis=None)
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                values,
            )
        return original_reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    _PATCHED = True
