"""`dermkit refit`: a finished run's recipe again on train + validation, same test part."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from conftest import TINY_RUN_SIZE, train_tiny_run
from dermkit.cli.main import main
from dermkit.errors import ConfigError
from dermkit.refit import RECORD_FILE, SPLIT_FILE, plan_refit, refit
from dermkit.training.config import Training


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("refit"))


def _parts(path: Path) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            parts[row["part"]].append(row["path"])
    return parts


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def test_learning_rates_replace_the_schedule_and_round_trip() -> None:
    training = Training(learning_rates=[1e-3, 5e-4])
    assert training.learning_rates == (1e-3, 5e-4)
    assert [training.rate_of_epoch(e) for e in range(4)] == [1e-3, 5e-4, 5e-4, 5e-4]
    assert Training.from_config(training.to_config()) == training
    assert "learning_rates" not in Training().to_config()  # older recipes still resume
    with pytest.raises(ConfigError, match="replace the schedule"):
        Training(schedule="plateau", learning_rates=(1e-3,))
    with pytest.raises(ConfigError, match="positive number"):
        Training.from_config({"learning_rates": [1e-3, -1]})
    with pytest.raises(ConfigError, match="list of numbers"):
        Training.from_config({"learning_rates": "0.001"})


def test_the_trainer_trains_each_epoch_at_its_replayed_rate(tmp_path: Path) -> None:
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.demo import make_demo_dataset
    from dermkit.evaluation.evaluator import StandardEvaluator
    from dermkit.experiment import Experiment
    from dermkit.models.lfn import LFN

    data = make_demo_dataset(tmp_path / "data", size=TINY_RUN_SIZE, scale=0.12, seed=5)
    result = Experiment(
        data=ImageFolder(data),
        split=GroupedStratifiedSplit(val=0.25, test=0.25, seed=0),
        model=LFN(dense=(16,)),
        training=Training(epochs=3, batch_size=8, verbose=0, learning_rates=(2e-3, 5e-4)),
        evaluator=StandardEvaluator(n_boot=20),
        image_size=TINY_RUN_SIZE,
        cache_dir="",
    ).run(tmp_path / "run")
    assert result.history["learning_rate"] == pytest.approx([2e-3, 5e-4, 5e-4])


def test_refit_trains_on_train_and_val_and_scores_the_same_test_part(
    source_run: Path, tmp_path: Path
) -> None:
    source = _copy(source_run, tmp_path / "source")
    state = json.loads((source / "state.json").read_text())
    state["history"]["learning_rate"] = [7e-4]  # the rate the refit must replay
    (source / "state.json").write_text(json.dumps(state))

    result = refit(source, tmp_path / "refit")

    before, after = _parts(source / "split.csv"), _parts(tmp_path / "refit" / "split.csv")
    assert sorted(after["train"]) == sorted(before["train"] + before["val"])
    assert after["val"] == []
    assert sorted(after["test"]) == sorted(before["test"])
    assert result.history["learning_rate"] == pytest.approx([7e-4])
    assert "test" in result.metrics and "val" not in result.metrics
    record = json.loads((tmp_path / "refit" / RECORD_FILE).read_text())
    assert record["source_run"] == str(source.resolve())
    assert record["validation_images_moved_to_train"] == len(before["val"])
    config = json.loads((tmp_path / "refit" / "config.json").read_text())
    assert config["split"] == {"name": "file", "path": str(tmp_path / "refit" / SPLIT_FILE)}
    assert config["training"]["early_stopping"] is None
    assert config["model"] == json.loads((source / "config.json").read_text())["model"]


def test_refit_replays_the_best_number_of_epochs(source_run: Path, tmp_path: Path) -> None:
    source = _copy(source_run, tmp_path / "source")
    state = json.loads((source / "state.json").read_text())
    state.update(epochs_done=3, best_epoch=2)
    state["history"] = {"learning_rate": [1e-3, 5e-4, 2.5e-4], "loss": [3.0, 2.0, 1.0]}
    (source / "state.json").write_text(json.dumps(state))
    plan = plan_refit(source, tmp_path / "refit")
    assert plan.epochs == 2
    assert plan.learning_rates == (1e-3, 5e-4)
    assert plan.config["training"]["epochs"] == 2
    assert plan.config["training"]["schedule"] == "constant"


def test_refit_refuses_what_it_cannot_refit(source_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        plan_refit(tmp_path / "nothing", tmp_path / "out")

    staged = _copy(source_run, tmp_path / "staged")
    config = json.loads((staged / "config.json").read_text())
    config["training"]["stages"] = [{"epochs": 1, "learning_rate": 1e-4}]
    (staged / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="training stages"):
        plan_refit(staged, tmp_path / "out")

    no_val = _copy(source_run, tmp_path / "no-val")
    with open(no_val / "split.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with open(no_val / "split.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            row | {"part": "train" if row["part"] == "val" else row["part"]} for row in rows
        )
    with pytest.raises(ConfigError, match="no validation part"):
        plan_refit(no_val, tmp_path / "out")

    unstarted = _copy(source_run, tmp_path / "unstarted")
    (unstarted / "state.json").unlink()
    with pytest.raises(ConfigError, match="not finished an epoch"):
        plan_refit(unstarted, tmp_path / "out")


def test_cli_refit_says_what_to_do_with_a_taken_folder(
    source_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["refit", str(source_run), "--out", str(source_run)])
    err = capsys.readouterr().err
    assert code == 2
    assert "already holds a run" in err and "dermkit resume" in err


def test_a_budget_that_is_not_positive_is_refused_before_anything_is_written(
    source_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["refit", str(source_run), "--out", str(tmp_path / "new"), "--max-minutes", "-5"])
    assert code == 2
    assert "max_minutes" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
