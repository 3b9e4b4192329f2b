"""``kill -9`` of ``dermkit train`` at seeded moments, then resume: nothing lost, nothing twice.

One run is killed three times (during a checkpoint write, at a random moment inside
an epoch, during the evaluation) and resumed after each; it must end with the same
history and the same weights as a run that was never interrupted (the tiny recipe
has no random augmentation, so the computation is deterministic), and with no
temporary file left. While one of its sessions runs, a second process aiming at the
same folder is refused; the lock a killed session leaves behind blocks nobody.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import signal
from pathlib import Path

import numpy as np
import pytest

from dermkit.cli.main import main

from .faults import (
    assert_complete_history,
    epochs_done,
    finish,
    leftovers,
    model_weights,
    resume_command,
    run_cli,
    start,
    train_command,
    wait_for,
)

EPOCHS = 4
SEED = 20240611


def _kill_9(process: object, what: str) -> None:
    assert process.poll() is None, f"the run ended before it could be killed {what}"  # type: ignore[attr-defined]
    process.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
    assert finish(process) == -signal.SIGKILL  # type: ignore[arg-type]


def _writing_checkpoint(run: Path, epoch: int) -> bool:
    folder = run / "checkpoints"
    return folder.is_dir() and any(folder.glob(f".epoch-{epoch:04d}.keras.dermkit-tmp-*"))


def test_kill_9_at_seeded_moments_then_resume_equals_an_uninterrupted_run(
    tiny_data: Path, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    reference = tmp_path / "reference"
    done = run_cli(train_command(tiny_data, reference, EPOCHS))
    assert done.returncode == 0, done.stderr[-3000:]

    run = tmp_path / "killed"
    logs = tmp_path / "logs"
    logs.mkdir()

    # 1. during the write of a checkpoint (epoch 1 or 2, seeded)
    epoch = rng.choice([1, 2])
    process = start(train_command(tiny_data, run, EPOCHS), logs / "1.log")
    assert wait_for(lambda: _writing_checkpoint(run, epoch), process), (logs / "1.log").read_text()
    _kill_9(process, f"while writing the checkpoint of epoch {epoch}")
    assert epochs_done(run) == epoch - 1
    assert (run / ".dermkit-run.lock").exists()  # the dead process's lock file stays...

    # 2. at a seeded moment inside a later epoch; meanwhile a second writer is refused
    process = start(resume_command(run), logs / "2.log")  # ...and blocks nobody
    assert wait_for(lambda: epochs_done(run) >= epoch, process), (logs / "2.log").read_text()
    for argv in (train_command(tiny_data, run, EPOCHS), resume_command(run)):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(argv[3:]) == 2  # in this process: quick, while the session trains
        assert f"another dermkit process (pid {process.pid}" in err.getvalue()
        assert "Traceback" not in err.getvalue()
    wait_for(lambda: False, timeout=rng.uniform(0.0, 0.4))
    _kill_9(process, "inside an epoch")
    killed_at = epochs_done(run)
    assert epoch <= killed_at < EPOCHS

    # 3. during the evaluation, after the last epoch
    process = start(resume_command(run), logs / "3.log")
    assert wait_for(lambda: (run / "probabilities_val.npy").exists(), process)
    _kill_9(process, "during the evaluation")
    assert epochs_done(run) == EPOCHS and not (run / "summary.json").exists()

    # 4. the last resume only evaluates
    final = run_cli(resume_command(run))
    assert final.returncode == 0, final.stderr[-3000:]

    assert_complete_history(run, EPOCHS)
    assert leftovers(run) == []
    assert not (run / ".dermkit-run.lock").exists()
    assert json.loads((run / "summary.json").read_text())["epochs"] == EPOCHS
    ours, theirs = (json.loads((r / "history.json").read_text()) for r in (run, reference))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, err_msg=key)
    for name in ("model.keras", "checkpoints/last.keras"):
        for a, b in zip(model_weights(run / name), model_weights(reference / name), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(
        np.load(run / "probabilities_test.npy"), np.load(reference / "probabilities_test.npy")
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_cleanly_keeping_the_last_epoch(
    tiny_data: Path, tmp_path: Path, signum: int
) -> None:
    """Preemptible machines send SIGTERM; people press Ctrl-C (SIGINT)."""
    rng = random.Random(SEED + signum)
    run = tmp_path / "stopped"
    process = start(train_command(tiny_data, run, 6), tmp_path / "train.log")
    assert wait_for(lambda: epochs_done(run) >= 1, process), (tmp_path / "train.log").read_text()
    wait_for(lambda: False, timeout=rng.uniform(0.0, 0.4))
    assert process.poll() is None
    process.send_signal(signum)
    code = finish(process, timeout=60)
    out = (tmp_path / "train.log").read_text()
    name = signal.Signals(signum).name
    assert code == 128 + signum, out[-3000:]
    kept = epochs_done(run)
    assert f"stopped by {name}: {run} keeps {kept} of 6 epoch(s)" in out
    assert f"continue with `dermkit resume {run}`" in out
    assert "Traceback" not in out
    assert leftovers(run) == [] and not (run / ".dermkit-run.lock").exists()
    assert_complete_history(run, kept)
    assert model_weights(run / "checkpoints" / "last.keras")  # complete and loadable
    # (that `dermkit resume` then finishes such a run is the kill -9 test's business)
