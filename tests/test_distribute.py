"""Training with ``tf.distribute``: two logical CPUs, a resumed mirrored run, two workers.

Logical CPUs and a multi-worker strategy can only be set up before TensorFlow starts,
so every distributed run here is a fresh ``dermkit train`` process. The reference is
a single-device run with the same *global* batch (8 = 2 replicas x 4): the model is
EfficientNet-Lite0 with its whole backbone frozen (BatchNormalization in inference
mode, no dropout), so a replica's gradient does not depend on which other images
share its batch, and splitting a batch over replicas may change only the order in
which float32 sums are taken. That bounds the difference to rounding: the
histories agree to ``TOLERANCE``; of the head's 5,120 weights after three epochs at a
learning rate of 0.01 the largest difference measured 1.2e-5, the rest far less
(``WEIGHT_TOLERANCE``; with a Glorot-initialised backbone, whose features had vanished,
it was 4e-7). Both leave room for rounding and nothing else: replicas that saw the same
images instead of distinct ones, or a data order drawn for the per-replica batch,
change the losses in the third digit.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from dermkit.errors import ConfigError
from dermkit.training.config import Training

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT = 240
"""Seconds any one training process may take: a hung collective fails, not blocks, CI."""
TOLERANCE = 1e-5
WEIGHT_TOLERANCE = 1e-4
EPOCHS = 3


# --------------------------------------------------------------------------- fast checks


def test_distribute_round_trips_and_bad_values_are_refused() -> None:
    training = Training(distribute="mirrored", batch_size=4)
    assert Training.from_config(json.loads(json.dumps(training.to_config()))) == training
    assert Training().distribute == "none"
    with pytest.raises(ConfigError, match="invalid training options"):
        Training.from_config({"distribute": "horovod"})


def test_the_cli_flag_is_a_recipe_flag_resume_guards(tmp_path: Path) -> None:
    from dermkit.cli.recipe import apply_flags, describe_defaults, refuse_changes
    from dermkit.demo import make_demo_dataset

    assert describe_defaults()["distribute"] == "none"
    data = make_demo_dataset(tmp_path / "demo", size=32, scale=0.12, seed=3)
    saved = apply_flags(None, {"data": str(data)})
    assert saved["training"]["distribute"] == "none"
    changed = apply_flags(saved, {"distribute": "mirrored"})
    assert changed["training"]["distribute"] == "mirrored"
    with pytest.raises(ConfigError, match="--distribute: saved 'none', given 'mirrored'"):
        refuse_changes(saved, changed, {"distribute": "mirrored"}, str(tmp_path / "run"))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "needs TF_CONFIG"),
        ("", "needs TF_CONFIG"),
        ("{not json", "not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', "'cluster' and a 'task'"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "not one of"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "not one of"),
    ],
)
def test_a_missing_or_malformed_tf_config_is_named(raw: str | None, message: str) -> None:
    from dermkit.training.distribute import read_tf_config

    with pytest.raises(ConfigError, match=message) as caught:
        read_tf_config(raw)
    assert caught.value.where == "TF_CONFIG"


def test_tf_config_gives_the_task_and_the_cluster_size() -> None:
    from dermkit.training.distribute import read_tf_config

    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    raw = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    assert read_tf_config(raw) == ("worker", 2, 3)


def test_multi_worker_without_tf_config_fails_before_any_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.demo import make_demo_dataset
    from dermkit.experiment import Experiment

    monkeypatch.delenv("TF_CONFIG", raising=False)
    data = make_demo_dataset(tmp_path / "demo", size=32, scale=0.12, seed=3)
    experiment = Experiment(data=str(data), training=Training(distribute="multi_worker"))
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        experiment.run(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_bad_logical_cpu_count_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from dermkit.training.distribute import LOGICAL_CPUS_ENV, make_placement

    monkeypatch.setenv(LOGICAL_CPUS_ENV, "two")
    with pytest.raises(ConfigError, match="whole number") as caught:
        make_placement("mirrored")
    assert caught.value.where == LOGICAL_CPUS_ENV


def test_the_trainer_gets_the_global_batch_and_no_feature_cache() -> None:
    from dermkit.training.distribute import Placement, fit_settings

    class TwoReplicas:
        num_replicas_in_sync = 2

    training = Training(batch_size=4, feature_cache="auto").then_fine_tune(3, feature_cache="auto")
    assert fit_settings(training, Placement(mode="none")) is training
    for mode in ("mirrored", "multi_worker"):
        placement = Placement(mode=mode, strategy=TwoReplicas())
        fitting = fit_settings(training, placement)
        assert fitting.batch_size == 8
        assert fitting.feature_cache == "off"
        assert [stage.feature_cache for stage in fitting.stages] == ["off"]
        assert fitting.learning_rate == training.learning_rate
        with pytest.raises(
            ConfigError, match=f"feature_cache=on does not work with distribute={mode}"
        ):
            fit_settings(attrs.evolve(training, feature_cache="on"), placement)


def test_fingerprints_tell_weights_apart() -> None:
    from dermkit.training.distribute import weights_fingerprint

    weights = [np.ones((2, 3), np.float32), np.zeros(3, np.float32)]
    assert weights_fingerprint(weights) == weights_fingerprint([w.copy() for w in weights])
    nudged = [weights[0].copy(), weights[1].copy()]
    nudged[1][0] = np.float32(1e-7)
    assert weights_fingerprint(nudged) != weights_fingerprint(weights)


# --------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), size=32, scale=0.12, seed=3)


def _train_command(data: Path, out: Path, batch_size: int, distribute: str) -> list[str]:
    return [
        sys.executable, "-m", "dermkit.cli.main", "train", "--data", str(data),
        "--model", "efficientnet_lite0", "--model-option", "weights=none",
        "--model-option", "dropout=0", "--image-size", "32", "--feature-cache", "off",
        "--epochs", str(EPOCHS), "--batch-size", str(batch_size), "--lr", "0.01",
        "--val", "0.25", "--test", "0.25", "--cache-dir", "", "--quiet",
        "--distribute", distribute, "--out", str(out),
    ]  # fmt: skip


def _environment(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}
    env.pop("TF_CONFIG", None)
    env.pop("DERMKIT_LOGICAL_CPUS", None)
    return {**env, **extra}


def _start(command: list[str], log: Path, **extra: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            command, env=_environment(**extra), stdout=handle, stderr=subprocess.STDOUT
        )


def _finish(process: subprocess.Popen[bytes], log: Path) -> str:
    try:
        process.wait(timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"training took over {TIME_LIMIT} s:\n{log.read_text()[-3000:]}")
    text = log.read_text(encoding="utf-8", errors="replace")
    assert process.returncode == 0, text[-3000:]
    return text


def _history(run: Path) -> dict[str, list[float]]:
    with open(run / "history.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == [str(e) for e in range(1, len(rows) + 1)]
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch_seconds"}


def _weights(path: Path) -> list[Any]:
    from dermkit.models import load_model

    return [np.asarray(w) for w in load_model(path, compile=False).get_weights()]


def _assert_same_training(run: Path, reference: Path) -> None:
    """Same history (but for timing) and the same final weights, up to float rounding."""
    got, want = _history(run), _history(reference)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=TOLERANCE, atol=TOLERANCE, err_msg=key)
    last = Path("checkpoints") / "last.keras"
    for a, b in zip(_weights(run / last), _weights(reference / last), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=WEIGHT_TOLERANCE)


@attrs.frozen
class Reference:
    single: Path
    mirrored: Path
    mirrored_log: str


@pytest.fixture(scope="module")
def reference_runs(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One device with batch 8, and two logical CPUs with 4 each, trained side by side."""
    folder = tmp_path_factory.mktemp("reference")
    single, mirrored = folder / "single", folder / "mirrored"
    one = _start(_train_command(tiny_data, single, 8, "none"), folder / "single.log")
    two = _start(
        _train_command(tiny_data, mirrored, 4, "mirrored"),
        folder / "mirrored.log",
        DERMKIT_LOGICAL_CPUS="2",
    )
    _finish(one, folder / "single.log")
    return Reference(single, mirrored, _finish(two, folder / "mirrored.log"))


@pytest.mark.slow
def test_two_logical_cpus_train_like_one_device_with_the_global_batch(
    reference_runs: Reference,
) -> None:
    log = reference_runs.mirrored_log
    assert "distribute=mirrored: 2 replica(s) on /device:CPU:0, /device:CPU:1" in log
    assert "4 images per replica, 8 per step" in log
    state = json.loads((reference_runs.mirrored / "state.json").read_text())
    assert state["epochs_done"] == EPOCHS
    assert len(_history(reference_runs.mirrored)["loss"]) == EPOCHS
    config = json.loads((reference_runs.mirrored / "config.json").read_text())
    assert config["training"]["batch_size"] == 4  # the recipe keeps the per-replica batch
    assert config["training"]["distribute"] == "mirrored"
    _assert_same_training(reference_runs.mirrored, reference_runs.single)


@pytest.mark.slow
def test_a_killed_mirrored_run_resumes_to_the_uninterrupted_result(
    tiny_data: Path, tmp_path: Path, reference_runs: Reference
) -> None:
    run = tmp_path / "killed"
    command = _train_command(tiny_data, run, 4, "mirrored")
    process = _start(command, tmp_path / "first.log", DERMKIT_LOGICAL_CPUS="2")
    state_file = run / "state.json"
    deadline = time.monotonic() + TIME_LIMIT
    while time.monotonic() < deadline and process.poll() is None and not state_file.exists():
        time.sleep(0.02)
    assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = json.loads(state_file.read_text())["epochs_done"]
    assert 1 <= done_before < EPOCHS

    resume = [sys.executable, "-m", "dermkit.cli.main", "resume", str(run), "--quiet"]
    log = _finish(
        _start(resume, tmp_path / "resume.log", DERMKIT_LOGICAL_CPUS="2"), tmp_path / "resume.log"
    )
    assert "2 replica(s)" in log
    state = json.loads(state_file.read_text())
    assert state["epochs_done"] == EPOCHS
    assert all(len(values) == EPOCHS for values in state["history"].values())
    assert not list(run.rglob(".*.dermkit-tmp-*")), "a temporary file was left behind"
    _assert_same_training(run, reference_runs.mirrored)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for handle in sockets:
            handle.bind(("localhost", 0))
        return [int(handle.getsockname()[1]) for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


@pytest.mark.slow
def test_two_workers_on_localhost_train_in_step_and_only_the_chief_writes(
    tiny_data: Path, tmp_path: Path, reference_runs: Reference
) -> None:
    from dermkit.training.distribute import checkpoint_fingerprint

    run = tmp_path / "run"
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir()
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        log = tmp_path / f"worker{index}.log"
        command = _train_command(tiny_data, run, 4, "multi_worker")
        processes.append(
            (_start(command, log, TF_CONFIG=tf_config, TMPDIR=str(scratch)), log, scratch)
        )
    logs = [_finish(process, log) for process, log, _ in processes]

    assert "worker 0 of 2 (chief, writes the run folder)" in logs[0]
    assert "worker 1 of 2 (writes no run files)" in logs[1]
    prints = [
        line.rsplit(" ", 1)[-1]
        for log in logs
        for line in log.splitlines()
        if "final weights fingerprint" in line
    ]
    assert len(prints) == 2
    assert prints[0] == prints[1] == checkpoint_fingerprint(run / "checkpoints" / "last.keras")
    # the second worker's checkpoints went to a temporary folder that is gone again
    assert not any(processes[1][2].iterdir())
    assert (run / "summary.json").exists()
    assert "val: Balanced accuracy" in logs[0]
    assert "val: Balanced accuracy" not in logs[1]
    _assert_same_training(run, reference_runs.single)
