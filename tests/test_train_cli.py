"""``dermkit train`` from the command line (issue 7, points 6, 7 and 9).

Point 6: train takes the same dataset options as ``data inspect`` (a CSV manifest
trains from the CLI), plus ``--kfold``/``--fold``, ``--split-file``, ``--config`` and
``--max-minutes``. Point 7: ``--help`` shows defaults, TensorFlow's start-up noise is
hidden, and output that is not a terminal gets one line per epoch. Point 9: README's
run-folder list names every file a run writes.

Most tests check the recipe a command line makes without training (``Experiment.run``
replaced by a recorder); one CSV run trains for real, for one epoch.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dermkit.cli.main import main
from dermkit.core import ClassIndex, Record
from dermkit.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("data") / "demo", size=32, scale=0.12, seed=3)


def write_manifest(data: Path, path: Path) -> Path:
    """A generic CSV manifest of the demo images: file, diagnosis, lesion id."""
    images = sorted(data.rglob("*.png"))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "diagnosis", "lesion"])
        for image in images:
            writer.writerow([image.relative_to(data).as_posix(), image.parent.name, image.stem])
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def recipes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace training by a recorder of the recipe each command would run."""
    from dermkit.experiment import Experiment, RunResult

    seen: list[dict[str, Any]] = []

    def record(self: Experiment, out: Any, *, resume: bool = False) -> RunResult:
        seen.append(self.to_config())
        return RunResult(run_dir=Path(out), history={}, metrics={})

    monkeypatch.setattr(Experiment, "run", record)
    return seen


# --------------------------------------------------------------------------- point 6


@pytest.mark.slow
def test_a_csv_manifest_trains_from_the_cli(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tiny_data, tiny_data / "manifest.csv")
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        capsys,
        "train", "--data", str(manifest), "--format", "csv", "--image-column", "file",
        "--label-column", "diagnosis", "--group-column", "lesion",
        "--model-option", "dense=16", "--image-size", "64", "--epochs", "1",
        "--batch-size", "8", "--val", "0.25", "--test", "0.25", "--cache-dir", "",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads((out / "config.json").read_text())["data"]
    assert data["name"] == "csv" and data["group_column"] == "lesion"
    assert data["csv"] == str(manifest)

    # point 7: captured output is not a terminal, so one line per epoch, no bar
    epoch_lines = [line for line in stdout.splitlines() if re.match(r"\d+/\d+ - .*loss", line)]
    assert len(epoch_lines) == 1, stdout
    assert "\x08" not in stdout and "\r" not in stdout and "\x1b[" not in stdout

    # point 9: README names every file a run writes, and epochs count from 1
    assert_readme_lists(out)
    assert json.loads((out / "state.json").read_text())["best_epoch"] == 1


def assert_readme_lists(run: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What a run folder holds", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([^`]+)`", section))
    written = set()
    for path in run.rglob("*"):
        if path.is_dir():
            continue
        parts = path.relative_to(run).parts
        if parts[0].startswith("report_"):  # report folders are described as a whole
            written.add(f"{parts[0]}/")
            written.add(parts[-1])
        else:
            written.add("/".join(parts))
    missing = sorted(name for name in written if not _mentioned(name, listed))
    assert not missing, f"README's run-folder list lacks {missing}"


def _mentioned(name: str, listed: set[str]) -> bool:
    if name in listed:
        return True
    return any(
        "*" in pattern and re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), name)
        for pattern in listed
    )


def test_train_takes_the_dataset_options_of_data_inspect() -> None:
    from dermkit.cli.main import build_parser

    def options(argv: list[str]) -> set[str]:
        parser = build_parser()
        actions = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        sub = actions[argv[0]]
        for name in argv[1:]:
            sub = sub._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        return {s for a in sub._actions for s in a.option_strings}

    inspect = options(["data", "inspect"]) - {"--json", "--no-verify"}
    assert inspect <= options(["train"])
    evaluate_dataset = {o for o in options(["evaluate"]) if o.startswith(("--image", "--group"))}
    assert evaluate_dataset <= options(["train"])


def test_a_csv_without_columns_points_to_flags_train_has(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tiny_data, tmp_path / "manifest.csv")
    code, _, err = run_cli(capsys, "train", "--data", str(manifest), "--out", str(tmp_path / "r"))
    assert code == 2
    flags = set(re.findall(r"--[a-z][a-z-]+", err))
    assert "--image-column" in flags
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert all(flag in help_text for flag in flags), flags


def test_kfold_split_file_max_minutes_and_dataset_flags_make_the_recipe(
    tiny_data: Path, tmp_path: Path, recipes: list[dict[str, Any]], capsys: Any
) -> None:
    out = str(tmp_path / "run")
    base = ["train", "--data", str(tiny_data), "--out", out]
    assert main([*base, "--kfold", "3", "--fold", "1", "--max-minutes", "5"]) == 0
    split = recipes[-1]["split"]
    assert (split["name"], split["k"], split["fold"], split["val"]) == ("kfold", 3, 1, 0.15)
    assert recipes[-1]["training"]["max_minutes"] == 5

    assert main([*base, "--cv", "4", "--fold", "2", "--test", "0.2"]) == 0
    split = recipes[-1]["split"]
    assert (split["name"], split["k"], split["fold"], split["val"], split["test"]) == (
        "cv",
        4,
        2,
        0.15,
        0.2,
    )

    split_file = tmp_path / "my_split.csv"
    split_file.write_text("path,label,class,group,part\n", encoding="utf-8")
    assert main([*base, "--split-file", str(split_file)]) == 0
    assert recipes[-1]["split"] == {"name": "file", "path": str(split_file)}

    assert main([*base, "--group-pattern", r"^(\w+)_\d", "--classes", "b,a"]) == 0
    assert recipes[-1]["data"]["group_pattern"] == r"^(\w+)_\d"
    assert recipes[-1]["data"]["classes"] == ["b", "a"]

    for flags, message in (
        (["--fold", "1"], "--fold does not apply to a 'grouped' split"),
        (["--kfold", "3", "--test", "0.2"], "--test does not apply to a 'kfold' split"),
        (["--split-file", str(split_file), "--kfold", "3"], "do not go together"),
        (["--kfold", "3", "--cv", "3"], "--kfold and --cv do not go together"),
        (["--cv", "3", "--fold", "3"], "fold must be an integer in [0, 3)"),
    ):
        code, _, err = run_cli(capsys, *base, *flags)
        assert code == 2 and message in err, err


def test_config_reruns_a_recipe_with_recorded_overrides(
    tiny_data: Path, tmp_path: Path, recipes: list[dict[str, Any]], monkeypatch: Any
) -> None:
    from dermkit.experiment import Experiment

    manifest = write_manifest(tiny_data, tiny_data / "manifest-for-config.csv")
    original = Experiment(
        data=_csv_dataset(manifest), model="lfn", balancer=["class_weights"], image_size=64
    ).to_config()
    old_run = tmp_path / "old"
    old_run.mkdir()
    (old_run / "config.json").write_text(json.dumps(original), encoding="utf-8")

    monkeypatch.chdir(tmp_path.parent)  # the recipe's paths resolve from anywhere
    assert main(["train", "--config", str(old_run / "config.json"), "--batch-size", "4",
                 "--group-column", "lesion", "--out", str(tmp_path / "new")]) == 0  # fmt: skip
    made = recipes[-1]
    assert made["training"]["batch_size"] == 4
    assert made["data"]["group_column"] == "lesion"
    made["training"]["batch_size"] = original["training"]["batch_size"]
    made["data"]["group_column"] = original["data"]["group_column"]
    assert made == original


def _csv_dataset(manifest: Path) -> Any:
    from dermkit.data.csv_manifest import CSVManifest

    return CSVManifest(manifest, image_column="file", label_column="diagnosis")


def test_a_split_file_is_checked_for_leakage_unknown_images_and_classes(tmp_path: Path) -> None:
    from dermkit.split_file import SplitFile

    classes = ClassIndex(("a", "b"))
    images = {name: tmp_path / f"{name}.png" for name in ("a1", "a2", "b1", "b2", "b3")}
    for path in images.values():
        path.write_bytes(b"")
    records = [
        Record(images["a1"], 0, "lesion-1"),
        Record(images["a2"], 0, "lesion-1"),  # same lesion as a1
        Record(images["b1"], 1, "lesion-2"),
        Record(images["b2"], 1, "lesion-3"),
        Record(images["b3"], 1, "lesion-4"),
    ]

    def split_with(rows: list[str]) -> Any:
        path = tmp_path / "split.csv"
        path.write_text("path,label,class,group,part\n" + "\n".join(rows) + "\n", "utf-8")
        return SplitFile(path).split(records, classes)

    good = split_with(["a1.png,0,a,x,train", "a2.png,0,a,x,train", "b1.png,1,b,y,train",
                       "b2.png,1,b,z,val", "b3.png,1,b,w,test"])  # fmt: skip
    assert [r.group for r in good.train] == ["lesion-1", "lesion-1", "lesion-2"]
    assert [r.path for r in good.val] == [images["b2"]]

    with pytest.raises(DataError, match="lesion-1 in train, test"):  # the dataset's lesions
        split_with(["a1.png,0,a,x,train", "a2.png,0,a,q,test", "b1.png,1,b,y,train"])
    with pytest.raises(DataError, match=r"not in the dataset: missing\.png"):
        split_with(["a1.png,0,a,x,train", "missing.png,1,b,y,test"])
    with pytest.raises(DataError, match=r"b1.png \(a in the file, b in the data\)"):
        split_with(["a1.png,0,a,x,train", "b1.png,0,a,y,test"])


# --------------------------------------------------------------------------- point 7


def test_train_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "epochs to train (resume: raise only) (default: 25)",
        "images per batch (default: 32)",
        "(default: adam)",
        "learning rate (default: 0.001)",
        "validation fraction of all images (default: 0.15)",
        "(default: lfn)",
    ):
        assert expected in text


def test_progress_bars_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from dermkit.training.trainer import progress_verbosity

    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", Stream(False))
    assert progress_verbosity(1) == 2
    assert progress_verbosity(0) == 0
    monkeypatch.setattr(sys, "stdout", Stream(True))
    assert progress_verbosity(1) == 1


def test_noise_filter_keeps_real_errors() -> None:
    from dermkit.cli.quiet import without_noise

    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795669624.234354    6270 cudart_stub.cc:31] Could not find cuda drivers",
        "I0000 00:00:1795669624.331347    6270 cpu_feature_guard.cc:227] This TensorFlow binary",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
        "TensorFlow with the appropriate compiler flags.",
        "E0000 00:00:1795669631.305846    6270 cuda_platform.cc:52] failed call to cuInit: X",
        "E0000 00:00:1795669631.305846    6270 op_kernel.cc:1] Out of memory allocating tensor",
        "Traceback (most recent call last):",
    ]
    assert without_noise(lines) == lines[-2:]


@pytest.mark.slow
def test_tensorflow_start_up_noise_is_hidden_unless_debug(tiny_data: Path, tmp_path: Path) -> None:
    """A command that imports TensorFlow and then fails on bad input: one clean line."""
    command = [
        sys.executable, "-m", "dermkit.cli.main", "train", "--data", str(tiny_data),
        "--image-size", "16", "--cache-dir", "", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    quiet = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 2
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    assert lines == [line for line in lines if line.startswith("dermkit: ")], quiet.stderr
    assert "at least 64x64" in quiet.stderr

    loud = subprocess.run(
        [*command[:3], "--debug", *command[3:]], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert loud.returncode == 2
    assert "Traceback" in loud.stderr  # --debug shows everything again
