"""A damaged ``checkpoints/last.keras``, ``state.json`` or ``model.keras``: a one-line error
that names the file and what to do, or a fall-back to the last good state; never a
traceback. Each case damages a copy of one finished two-epoch run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dermkit.cli.main import main

from .faults import assert_complete_history, leftovers

Damage = Callable[[Path], None]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot what dermkit wrote\n" * 7)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.fixture
def copy_of(finished_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    return run


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("dermkit: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("damage", [_truncate, _garbage, _empty])
def test_a_damaged_last_checkpoint_is_named_with_what_to_do(
    copy_of: Path, capsys: pytest.CaptureFixture[str], damage: Damage
) -> None:
    damage(copy_of / "checkpoints" / "last.keras")
    line = _one_line_error(capsys, ["resume", str(copy_of), "--epochs", "3", "--quiet"])
    assert str(copy_of / "checkpoints" / "last.keras") in line
    assert "cannot be loaded" in line and "delete the run's checkpoints/ folder" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"epochs_done": 2, "hist', "cannot read the training state"),
        (b"", "cannot read the training state"),
        (b"[1, 2]", "does not hold a JSON object"),
        (b"{}", "it lacks epochs_done"),
        (b'{"epochs_done": "two", "best_epoch": 1, "best_value": 0, "history": {}}', "count"),
        (b'{"epochs_done": 1, "best_epoch": 1, "best_value": 0, "history": {"loss": [1, 2]}}',
         "more values than finished epochs"),
    ],
)  # fmt: skip
def test_a_damaged_state_json_is_named_with_what_to_do(
    copy_of: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    (copy_of / "state.json").write_bytes(content)
    line = _one_line_error(capsys, ["resume", str(copy_of), "--epochs", "3", "--quiet"])
    assert str(copy_of / "state.json") in line and expected in line
    assert "delete the run" in line


@pytest.mark.parametrize("damage", [_truncate, _garbage, _empty])
def test_a_damaged_model_keras_is_named_by_predict_evaluate_and_resume(
    copy_of: Path, capsys: pytest.CaptureFixture[str], tiny_data: Path, damage: Damage
) -> None:
    damage(copy_of / "model.keras")
    image = next(tiny_data.rglob("*.png"))
    evaluate = ["evaluate", str(copy_of), "--data", str(tiny_data)]
    for argv in (["predict", str(copy_of), str(image)], evaluate):
        line = _one_line_error(capsys, argv)
        assert str(copy_of / "model.keras") in line and "damaged" in line
    # resuming a finished run re-evaluates it, from the damaged file: named too
    line = _one_line_error(capsys, ["resume", str(copy_of), "--quiet"])
    assert str(copy_of / "model.keras") in line


def test_a_checkpoint_staged_but_not_committed_is_recovered(
    copy_of: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kill -9`` after state.json recorded epoch 2 but before its checkpoint was moved
    into place: the staged file is the fall-back, committed on resume."""
    checkpoints = copy_of / "checkpoints"
    (checkpoints / "last.keras").rename(checkpoints / "epoch-0002.keras")
    shutil.copyfile(copy_of / "model.keras", checkpoints / "last.keras")  # an older state
    (checkpoints / "epoch-0003.keras").write_bytes(b"staged before a state that never came")
    (checkpoints / ".last.keras.dermkit-tmp-abc.keras").write_bytes(b"cut off")
    assert main(["resume", str(copy_of), "--epochs", "3", "--quiet"]) == 0
    assert_complete_history(copy_of, 3)
    assert leftovers(copy_of) == []


def test_a_missing_checkpoint_behind_a_state_is_named(
    copy_of: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (copy_of / "checkpoints" / "last.keras").unlink()
    line = _one_line_error(capsys, ["resume", str(copy_of), "--epochs", "3", "--quiet"])
    assert "records 2 finished epoch(s) but there is no checkpoint" in line
