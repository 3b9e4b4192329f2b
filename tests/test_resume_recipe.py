"""Resume trusts the run folder (issue 7, point 1), models must reload (point 5), and
epochs are counted from 1 wherever a person reads them (point 9).

One tiny run is trained once for the module with a recipe far from the defaults
(class weights + augmentation, Adamax, batch 8, LFN at 64 px), so that a resume that
fell back to any default would show. Tests work on copies of it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from dermkit.cli.main import main
from dermkit.errors import ConfigError, DataError

SIZE = 64


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("data") / "demo", size=32, scale=0.12, seed=3)


def recipe(data: Path, **training: Any) -> Any:
    from dermkit.balancers.augment import Augment
    from dermkit.balancers.class_weights import ClassWeights
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment
    from dermkit.models.lfn import LFN
    from dermkit.training.config import Training

    options = {"epochs": 1, "batch_size": 8, "optimizer": "adamax", "verbose": 0, **training}
    return Experiment(
        data=ImageFolder(data),
        split=GroupedStratifiedSplit(val=0.25, test=0.25, seed=0),
        model=LFN(dense=(16,)),
        balancer=[ClassWeights(), Augment(recipes=("flip",))],
        training=Training(**options),
        image_size=SIZE,
        cache_dir="",
    )


@pytest.fixture(scope="module")
def trained_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    recipe(tiny_data).run(run)
    return run


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "runs" / "copy"
    shutil.copytree(trained_run, copy)
    return copy


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- point 1


@pytest.mark.slow
def test_resume_needs_only_the_run_folder_from_any_directory(
    run_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = {name: (run_copy / name).read_bytes() for name in ("problems.json", "split.csv")}
    saved = read(run_copy / "config.json")
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)

    code, _, err = run_cli(capsys, "resume", str(run_copy), "--epochs", "2")

    assert code == 0, err
    history = read(run_copy / "history.json")
    assert len(history["loss"]) == 2
    config = read(run_copy / "config.json")
    assert config["training"]["epochs"] == 2  # the raise is recorded ...
    config["training"]["epochs"] = saved["training"]["epochs"]
    assert config == saved  # ... and nothing else changed: no default crept in
    assert [b["name"] for b in config["balancers"]] == ["class_weights", "augment"]
    assert config["training"]["optimizer"] == "adamax" and config["training"]["batch_size"] == 8
    for name, content in before.items():
        assert (run_copy / name).read_bytes() == content, f"{name} was rewritten"
    assert read(run_copy / "state.json")["epochs_done"] == 2


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--batch-size", "32"], "--batch-size: saved 8, given 32"),
        (["--optimizer", "adam"], "--optimizer: saved 'adamax', given 'adam'"),
        (["--balancer", "none"], "--balancer: saved"),
        (["--image-size", "96"], "--image-size: saved 64, given 96"),
        (["--model-option", "dense=32"], "--model-option dense: saved [16], given [32]"),
        (["--val", "0.3"], "--val: saved 0.25, given 0.3"),
        (["--seed", "4"], "--seed: saved 0, given 4"),
        (["--strict"], "--strict: saved false, given true"),
        (["--data", "{other}"], "--data"),
    ],
)
def test_resume_refuses_a_flag_that_differs_and_names_it(
    run_copy: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    expected: str,
) -> None:
    other = tmp_path / "other-data"
    shutil.copytree(tiny_data, other)
    flags = [f.replace("{other}", str(other)) for f in flags]
    config_before = (run_copy / "config.json").read_bytes()
    problems_before = (run_copy / "problems.json").read_bytes()

    code, _, err = run_cli(capsys, "train", "--resume", "--out", str(run_copy), *flags)

    assert code == 2
    assert expected in err, err
    assert "Traceback" not in err and err.startswith("dermkit: error:")
    assert (run_copy / "config.json").read_bytes() == config_before
    assert (run_copy / "problems.json").read_bytes() == problems_before


def test_resume_accepts_flags_equal_to_the_saved_ones(
    run_copy: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """The old way of resuming (repeating the whole command line) still works."""
    from dermkit.experiment import Experiment

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(Experiment, "run", lambda self, out, resume=False: _record(seen, self))
    code, _, err = run_cli(
        capsys,
        "train", "--resume", "--out", str(run_copy), "--data", str(tiny_data),
        "--batch-size", "8", "--optimizer", "adamax", "--image-size", "64",
        "--model", "lfn", "--model-option", "dense=16", "--val", "0.25", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert seen[0]["balancers"] == read(run_copy / "config.json")["balancers"]


def _record(seen: list[dict[str, Any]], experiment: Any) -> Any:
    from dermkit.experiment import RunResult

    seen.append(experiment.to_config())
    return RunResult(run_dir=Path("."), history={}, metrics={})


def test_resume_without_a_run_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "resume", str(tmp_path / "nothing"))
    assert code == 2
    assert "no run to resume" in err and "dermkit train --data" in err


@pytest.mark.slow
def test_python_resume_refuses_another_recipe_and_resumes_from_the_folder(
    run_copy: Path, tiny_data: Path
) -> None:
    from dermkit.experiment import Experiment

    with pytest.raises(ConfigError, match=r"training\.batch_size: saved 8, given 4"):
        recipe(tiny_data, batch_size=4).run(run_copy, resume=True)
    with pytest.raises(ConfigError, match=r"image\.size: saved 64, given 96"):
        experiment = recipe(tiny_data)
        experiment.image_size = 96
        experiment.run(run_copy, resume=True)

    result = Experiment.resume(run_copy)  # finished: re-evaluates, trains nothing
    assert len(result.history["loss"]) == 1
    assert read(run_copy / "config.json")["training"]["optimizer"] == "adamax"


def test_only_raising_epochs_and_the_time_budget_may_change() -> None:
    from dermkit.run_folder import refused_changes

    saved = {"training": {"epochs": 5, "max_minutes": None, "batch_size": 8}, "cache_dir": None}
    assert refused_changes(saved, {**saved, "training": {**saved["training"], "epochs": 9}}) == []
    budget = {**saved, "training": {**saved["training"], "max_minutes": 30}}
    assert refused_changes(saved, budget) == []
    lowered = refused_changes(saved, {**saved, "training": {**saved["training"], "epochs": 3}})
    assert [d.dotted for d in lowered] == ["training.epochs"]
    batch = refused_changes(saved, {**saved, "training": {**saved["training"], "batch_size": 16}})
    assert [d.render() for d in batch] == ["training.batch_size: saved 8, given 16"]


def test_old_run_folders_with_cwd_relative_paths_still_resolve(
    tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Format 1 stored paths relative to where the run was started; read them from elsewhere."""
    from dermkit.run_folder import read_run_inputs, read_saved_config

    project = tmp_path / "project"
    shutil.copytree(tiny_data, project / "data")
    run = project / "runs" / "old"
    run.mkdir(parents=True)
    config = recipe(project / "data").to_config()
    config["format_version"] = 1
    config["data"]["root"] = "data"  # as an old run started in `project` wrote it
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    images = sorted((project / "data").rglob("*.png"))
    classes = sorted({p.parent.name for p in images})
    rows = ["path,label,class,group,part"]
    for i, image in enumerate(images):
        part = ("train", "val", "test")[i % 3]
        relative = image.relative_to(project).as_posix()
        rows.append(
            f"{relative},{classes.index(image.parent.name)},{image.parent.name},g{i},{part}"
        )
    (run / "split.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (run / "classes.json").write_text(json.dumps(classes), encoding="utf-8")
    problems = {"source": "data", "found": len(images), "used": len(images), "skipped": []}
    (run / "problems.json").write_text(json.dumps(problems), encoding="utf-8")

    monkeypatch.chdir(tmp_path)  # not the project folder
    assert read_saved_config(run)["data"]["root"] == str(project / "data")
    inputs = read_run_inputs(run)
    assert inputs is not None
    loaded, split = inputs
    assert loaded.classes.names == tuple(classes)
    assert all(r.path.is_absolute() and r.path.exists() for r in split.train + split.val)

    shutil.move(str(project / "data"), str(tmp_path / "moved"))
    with pytest.raises(DataError, match="relative to the folder the run was started from"):
        read_run_inputs(run)


def test_recipes_and_splits_store_absolute_paths(
    tiny_data: Path, trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.core import Record
    from dermkit.run_folder import absolute_records

    monkeypatch.chdir(tiny_data.parent)
    config = recipe(Path(tiny_data.name)).to_config()  # given relative to the cwd
    assert config["data"]["root"] == str(tiny_data)
    assert absolute_records([Record("demo/x.png", 0, "g")])[0].path == tiny_data / "x.png"
    lines = (trained_run / "split.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert lines and all(os.path.isabs(line.split(",")[0]) for line in lines)


# --------------------------------------------------------------------------- point 5


@attrs.frozen
class LambdaModel:
    """A plugin-style model with a Lambda layer: it trains and saves, but never reloads."""

    name: ClassVar[str] = "lambda_test_model"
    default_input_size: ClassVar[int] = 64

    def build(self, num_classes: int, input_size: int | None = None) -> Any:
        import keras

        inputs = keras.Input((input_size, input_size, 3), name="image")
        x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
        return keras.Model(inputs, outputs)

    def frozen_prefix_end(self, model: Any) -> str | None:
        return None


@attrs.frozen
class ForgetfulModel(LambdaModel):
    """A registered custom layer whose get_config drops its option: reloads, computes wrong."""

    name: ClassVar[str] = "forgetful_test_model"

    def build(self, num_classes: int, input_size: int | None = None) -> Any:
        import keras

        inputs = keras.Input((input_size, input_size, 3), name="image")
        x = _forgetful_scale()(factor=0.5)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
        return keras.Model(inputs, outputs)


def _forgetful_scale() -> Any:
    import keras

    @keras.saving.register_keras_serializable(package="dermkit_tests")
    class ForgetfulScale(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self, factor: float = 1.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x: Any) -> Any:
            return x * self.factor

        def get_config(self) -> dict[str, Any]:
            config: dict[str, Any] = super().get_config()
            config.pop("factor", None)  # the bug: an option is not saved
            return config

    return ForgetfulScale


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (LambdaModel(), r"cannot be loaded back in Keras safe mode.*Lambda.*register_keras"),
        (ForgetfulModel(), r"different outputs.*get_config"),
    ],
)
def test_a_model_that_cannot_be_reloaded_is_refused_before_training(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: Any, message: str
) -> None:
    from dermkit.data.folder import ImageFolder
    from dermkit.experiment import Experiment
    from dermkit.training import trainer
    from dermkit.training.config import Training

    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an epoch started before the reload check")

    monkeypatch.setattr(trainer, "fit", no_training)
    out = tmp_path / "run"
    experiment = Experiment(
        data=ImageFolder(tiny_data),
        model=model,
        training=Training(epochs=1, batch_size=8, verbose=0),
        image_size=SIZE,
        cache_dir="",
    )
    with pytest.raises(ConfigError, match=message):
        experiment.run(out)
    assert not out.exists()


# --------------------------------------------------------------------------- point 9


@pytest.mark.slow
def test_state_summary_and_plot_count_epochs_from_one(trained_run: Path) -> None:
    state = read(trained_run / "state.json")
    assert state["best_epoch"] == 1 and state["epochs_done"] == 1
    assert read(trained_run / "summary.json")["best_epoch"] == 1
    first_row = (trained_run / "history.csv").read_text().splitlines()[1]
    assert first_row.split(",")[0] == "1"


def test_the_plot_marks_the_epoch_the_trainer_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``monitor="val_loss"`` the kept epoch is the lowest loss, not the best accuracy."""
    import matplotlib.axes

    from dermkit.evaluation.plots import plot_training_curves
    from dermkit.training.epochs import best_epoch

    history = {
        "loss": [1.0, 0.8, 0.6, 0.5],
        "val_loss": [1.1, 0.9, 0.7, 0.8],  # best (lowest) at epoch 3
        "accuracy": [0.3, 0.4, 0.5, 0.6],
        "val_accuracy": [0.3, 0.5, 0.4, 0.45],
        "val_balanced_accuracy": [0.2, 0.6, 0.4, 0.5],  # best at epoch 2
    }
    marks: list[float] = []
    original = matplotlib.axes.Axes.axvline

    def spy(self: Any, x: float = 0, *args: Any, **kwargs: Any) -> Any:
        marks.append(x)
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", spy)
    plot_training_curves(history, tmp_path / "curves.png", monitor="val_loss")
    assert set(marks) == {3} == {best_epoch(history, "val_loss")}
    marks.clear()
    plot_training_curves(history, tmp_path / "curves2.png")
    assert set(marks) == {2}


def test_old_state_files_counted_epochs_from_zero() -> None:
    from dermkit.training.epochs import best_epoch_from_state

    assert best_epoch_from_state({"best_epoch": 0, "epochs_done": 3}) == 1
    assert best_epoch_from_state({"format_version": 2, "best_epoch": 1}) == 1
