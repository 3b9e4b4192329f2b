"""A full disk and an unwritable output folder: a clear message, and what was complete
stays complete and readable (a resume then finishes the run)."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from dermkit import atomic
from dermkit.cli.main import main

from .faults import (
    assert_complete_history,
    cli_env,
    epochs_done,
    leftovers,
    model_weights,
    train_command,
)


def test_an_injected_full_disk_mid_run_is_reported_and_the_run_resumes(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Every file move after a seeded point fails with ENOSPC, as on a disk that filled."""
    run = tmp_path / "run"
    real_replace = os.replace
    moves = {"count": 0}
    fail_from = random.Random(7).randint(12, 20)  # inside epoch 2 or 3 of this recipe

    def replace(source: Any, target: Any) -> None:
        moves["count"] += 1
        if moves["count"] >= fail_from and str(run) in str(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(source))
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", replace)
    code = main(train_command(tiny_data, run, 4)[3:])
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    line = next(line for line in err.splitlines() if line.startswith("dermkit: error:"))
    assert "No space left on device" in line and "the disk is full" in line
    kept = epochs_done(run)
    assert 1 <= kept < 4, line
    assert f"keeps {kept} of 4 epoch(s); continue with `dermkit resume {run}`" in line
    # what was complete is whole: the state, its history and its checkpoint
    assert_complete_history(run, kept)
    assert model_weights(run / "checkpoints" / "last.keras")
    assert not list(run.rglob(".*.dermkit-tmp-*"))

    assert main(["resume", str(run), "--quiet"]) == 0
    assert_complete_history(run, 4)
    assert leftovers(run) == []


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


FILL_AND_CHECK = """
set -u
mount -t tmpfs -o size=32m none "$MNT"
"$PY" -m dermkit.cli.main train --data "$DATA" $FLAGS --epochs 30 --out "$MNT/run" \\
    >"$LOG" 2>&1 &
pid=$!
# wait for the first finished epoch, then fill the disk to the last byte
until grep -Eq '"epochs_done": ([2-9]|[1-9][0-9])' "$MNT/run/state.json" 2>/dev/null; do
    kill -0 $pid 2>/dev/null || break
    sleep 0.02
done
dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null || true
wait $pid
echo "exit=$?" >>"$LOG"
rm -f "$MNT/filler"
cp -a "$MNT/run" "$COPY"
"""


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs `unshare -m` and tmpfs mounts (root)")
def test_a_real_tmpfs_that_fills_up_during_a_run(tiny_data: Path, tmp_path: Path) -> None:
    """A private 32 MB tmpfs (its own mount namespace: nothing outside sees it) filled by
    `dd` after epoch 2 of a 30-epoch run."""
    mount_point, copy, log = tmp_path / "mnt", tmp_path / "copy", tmp_path / "train.log"
    mount_point.mkdir()
    flags = " ".join(f"'{f}'" for f in train_command(tiny_data, Path("x"), 1)[6:-4])
    env = {
        **cli_env(),
        "MNT": str(mount_point),
        "COPY": str(copy),
        "LOG": str(log),
        "PY": sys.executable,
        "DATA": str(tiny_data),
        "FLAGS": flags,
    }
    script = textwrap.dedent(FILL_AND_CHECK).replace("$FLAGS", flags)
    done = subprocess.run(["unshare", "-m", "bash", "-c", script], env=env, timeout=240)
    assert done.returncode == 0
    out = log.read_text()
    assert "exit=2" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    line = next(line for line in out.splitlines() if line.startswith("dermkit: error:"))
    assert "No space left on device" in line and "the disk is full" in line
    kept = epochs_done(copy)
    assert kept >= 2
    assert f"continue with `dermkit resume {mount_point / 'run'}`" in line
    assert_complete_history(copy, kept)
    assert model_weights(copy / "checkpoints" / "last.keras")
    assert json.loads((copy / "config.json").read_text())["training"]["epochs"] == 30
    assert not list(copy.rglob(".*.dermkit-tmp-*"))


def test_an_output_folder_behind_a_file_is_refused_before_any_work(
    tiny_data: Path, tmp_path: Path, capsys: Any
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(train_command(tiny_data, blocker / "run", 1)[3:])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"dermkit: error: {blocker / 'run'}: cannot write run" in err
    assert "choose another output folder" in err


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs `unshare -m` and tmpfs mounts (root)")
def test_a_read_only_output_folder_is_refused_before_any_work(
    tiny_data: Path, tmp_path: Path
) -> None:
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    command = " ".join(f"'{c}'" for c in train_command(tiny_data, mount_point / "run", 1))
    script = f"mount -t tmpfs -o ro,size=64k none '{mount_point}' && exec {command}"
    done = subprocess.run(
        ["unshare", "-m", "bash", "-c", script],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Read-only file system" in done.stderr and "not writable" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_a_folder_without_write_permission_is_refused(
    tiny_data: Path, tmp_path: Path, capsys: Any
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code = main(train_command(tiny_data, locked / "run", 1)[3:])
    err = capsys.readouterr().err
    assert code == 2 and "Permission denied" in err and "not writable" in err
