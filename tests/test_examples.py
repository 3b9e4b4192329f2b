"""The study's example scripts (examples/): their table of attempts and a smoke run of each.

The scripts are not a package, so they are loaded by path, with examples/ on
``sys.path`` for their ``import study``. The smoke runs use a generated HAM10000-shaped
folder (7 classes, five lesions each), tiny images, random weights and one epoch: they
check that every script runs end to end, not what it learns. LFN runs at 64 pixels,
the smallest input its six 2x2 poolings allow.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import write_ham10000
from dermkit.core import HAM10000_CLASSES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SCRIPTS: tuple[str, ...] = (
    "lfn_attempt1",
    "lfn_attempt2",
    "lfn_attempt3",
    "lfn_attempt4",
    "resnet50_attempt1",
    "resnet50_attempt2",
    "inception_v3_attempt1",
)

MAJORITY = ("class_weights", {"mode": "majority"})
AUGMENT = ("augment", {})
BALANCED = ("balanced_batches", {"steps_per_epoch": None})

STUDY: dict[str, dict[str, Any]] = {
    "lfn_attempt1": {
        "model": ("lfn", {"dense": (512,), "dropout": 0.0, "extra_dropout": False}),
        "size": 300,
        "training": ("adam", 32, 25),
        "balancers": [MAJORITY],
        "balanced_test": False,
    },
    "lfn_attempt2": {
        "model": ("lfn", {"dense": (512,), "dropout": 0.0, "extra_dropout": False}),
        "size": 300,
        "training": ("adamax", 32, 50),
        "balancers": [BALANCED],
        "balanced_test": True,
    },
    "lfn_attempt3": {
        "model": ("lfn", {"dense": (512,), "dropout": 0.0, "extra_dropout": True}),
        "size": 300,
        "training": ("adamax", 16, 50),
        "balancers": [MAJORITY, AUGMENT],
        "balanced_test": False,
    },
    "lfn_attempt4": {
        "model": ("lfn", {"dense": (512, 512), "dropout": 0.5, "extra_dropout": False}),
        "size": 300,
        "training": ("adamax", 16, 75),
        "balancers": [MAJORITY, AUGMENT],
        "balanced_test": False,
    },
    "resnet50_attempt1": {
        "model": (
            "resnet50",
            {
                "weights": "imagenet",
                "trainable_layers": 4,
                "pooling": "flatten",
                "dense": (256,),
                "dropout": 0.4,
            },
        ),
        "size": 224,
        "training": ("adam", 32, 25),
        "balancers": [MAJORITY],
        "balanced_test": False,
    },
    "resnet50_attempt2": {
        "model": (
            "resnet50",
            {
                "weights": "imagenet",
                "trainable_layers": 10,
                "pooling": "flatten",
                "dense": (128,),
                "dropout": 0.4,
            },
        ),
        "size": 224,
        "training": ("adam", 32, 25),
        "balancers": [MAJORITY],
        "balanced_test": False,
    },
    "inception_v3_attempt1": {
        "model": (
            "inception_v3",
            {
                "weights": "imagenet",
                "trainable_layers": 0,
                "pooling": "flatten",
                "dense": (512,),
                "dropout": 0.35,
            },
        ),
        "size": 299,
        "training": ("adam", 32, 25),
        "balancers": [MAJORITY],
        "balanced_test": False,
    },
}
"""The study's attempts, written out independently of examples/study.py."""


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.fixture
def study(on_path: None) -> ModuleType:
    import study as module  # examples/study.py

    return module


@pytest.fixture
def load_script(on_path: None) -> Callable[[str], ModuleType]:
    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="module")
def study_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HAM10000 layout: 7 classes x 5 lesions; the first lesion of each has two images."""
    rows = []
    for label, dx in enumerate(HAM10000_CLASSES):
        for lesion in range(5):
            for image in range(2 if lesion == 0 else 1):
                rows.append(
                    {
                        "lesion_id": f"HAM_{label}{lesion}",
                        "image_id": f"ISIC_{label}{lesion}{image}",
                        "dx": dx,
                    }
                )
    return write_ham10000(tmp_path_factory.mktemp("study") / "ham", rows, size=32)


@pytest.fixture
def no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DERMKIT_HAM10000", raising=False)


def dry_run(
    load_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    name: str,
    *argv: str,
) -> dict[str, Any]:
    code = load_script(name).main([*argv, "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    config: dict[str, Any] = json.loads(captured.out)
    return config


# ------------------------------------------------------------------ the table, no training
def test_the_table_lists_every_script_in_the_study_order(study: ModuleType) -> None:
    assert tuple(study.ATTEMPTS) == SCRIPTS
    assert sorted(p.stem for p in EXAMPLES.glob("*_attempt*.py")) == sorted(SCRIPTS)
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in SCRIPTS:
        assert f"`{name}.py`" in readme
        assert study.ATTEMPTS[name].name == name
        assert study.ATTEMPTS[name].note


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_table_matches_the_study(study: ModuleType, name: str) -> None:
    from dermkit.config import component_config

    expected = STUDY[name]
    attempt = study.ATTEMPTS[name]
    model_name, options = expected["model"]
    model = component_config(attempt.model)
    assert model["name"] == model_name
    for key, value in options.items():
        assert model[key] == (list(value) if isinstance(value, tuple) else value), key
    assert attempt.image_size == expected["size"]
    optimizer, batch_size, epochs = expected["training"]
    assert (attempt.training.optimizer, attempt.training.batch_size, attempt.training.epochs) == (
        optimizer,
        batch_size,
        epochs,
    )
    assert attempt.training.early_stopping is None  # the study trained for fixed epochs
    balancers = [component_config(b) for b in attempt.balancers]
    assert [b["name"] for b in balancers] == [n for n, _ in expected["balancers"]]
    for config, (_, options) in zip(balancers, expected["balancers"], strict=True):
        assert {k: config[k] for k in options} == options
    evaluator = attempt.evaluator()
    assert evaluator.balanced_test is expected["balanced_test"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_runs_its_own_attempt(
    load_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    study_data: Path,
    study: ModuleType,
    name: str,
) -> None:
    from dermkit.experiment import Experiment

    config = dry_run(load_script, capsys, name, "--data", str(study_data))
    experiment = Experiment.from_config(config)
    attempt = study.ATTEMPTS[name]
    assert experiment.model == attempt.model
    assert experiment.balancers == attempt.balancers
    assert experiment.training == attempt.training
    assert config["split"] == {"name": "grouped", "val": 0.15, "test": 0.15, "seed": 0}
    assert config["evaluator"]["balanced_test"] is attempt.balanced_test
    assert config["data"]["name"] == "ham10000"
    assert experiment.input_size == attempt.image_size


def test_command_line_options_override_the_study(
    load_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    study_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DERMKIT_HAM10000", str(study_data))
    argv = ["--epochs", "3", "--batch-size", "4", "--limit", "50", "--image-size", "64"]
    config = dry_run(load_script, capsys, "resnet50_attempt2", *argv, "--weights", "none")
    assert config["data"]["root"] == str(study_data)  # from the environment
    assert (config["training"]["epochs"], config["training"]["batch_size"]) == (3, 4)
    assert config["training"]["optimizer"] == "adam"
    assert (config["limit"], config["image"]["size"]) == (50, 64)
    assert config["model"]["weights"] is None
    assert config["model"]["trainable_layers"] == 10  # the rest stays the study's

    weights = study_data / "resnet50_notop.h5"
    config = dry_run(load_script, capsys, "resnet50_attempt1", "--weights", str(weights))
    assert config["model"]["weights"] == str(weights)


def test_without_a_dataset_the_scripts_stop_with_exit_code_2(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str], no_data_env: None
) -> None:
    assert load_script("lfn_attempt1").main([]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "DERMKIT_HAM10000" in err
    assert "Traceback" not in err


def test_bad_options_are_one_line_errors(
    load_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    study_data: Path,
    tmp_path: Path,
) -> None:
    lfn = load_script("lfn_attempt1")
    assert lfn.main(["--data", str(study_data), "--weights", "imagenet", "--dry-run"]) == 2
    assert "LFN" in capsys.readouterr().err
    assert lfn.main(["--data", str(tmp_path / "missing"), "--dry-run"]) == 2
    assert "missing" in capsys.readouterr().err
    # A missing weights file stops the run before its folder is made, so the same
    # --out works once --weights names a real file.
    out = tmp_path / "run"
    resnet = load_script("resnet50_attempt1")
    argv = ["--data", str(study_data), "--out", str(out), "--weights", str(tmp_path / "w.h5")]
    assert resnet.main(argv) == 2
    assert "w.h5" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as stopped:  # argparse's own exit code 2
        lfn.main(["--epochs", "0"])
    assert stopped.value.code == 2


# ------------------------------------------------------------------ smoke runs
def smoke(
    load_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    data: Path,
    out: Path,
    name: str,
    *extra: str,
) -> str:
    argv = ["--data", str(data), "--out", str(out), "--epochs", "1", "--limit", "32"]
    code = load_script(name).main([*argv, "--quiet", "--cache-dir", "", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (out / "model.keras").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1
    assert {"val", "test"} <= set(summary)
    return captured.out


@pytest.mark.parametrize("name", [s for s in SCRIPTS if s.startswith("lfn")])
def test_lfn_attempts_run_end_to_end(
    load_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    study_data: Path,
    tmp_path: Path,
    study: ModuleType,
    name: str,
) -> None:
    out = tmp_path / name
    printed = smoke(load_script, capsys, study_data, out, name, "--image-size", "64")
    assert f"run folder: {out}" in printed
    tag = " (balanced)" if study.ATTEMPTS[name].balanced_test else ""
    for part in ("val", "test"):
        assert f"\n{part}{tag}: balanced accuracy " in f"\n{printed}"
    plan = json.loads((out / "plan.json").read_text())
    if name == "lfn_attempt2":
        assert plan["sampling"] == "balanced" and plan["class_weight"] is None
    else:
        # The study's weights: the largest class (in training) weighs exactly 1.0.
        counts = plan["images_per_class"]
        largest = max(counts, key=counts.get)
        assert plan["class_weight"][largest] == pytest.approx(1.0)
        assert min(plan["class_weight"].values()) == pytest.approx(1.0)
    assert bool(plan["augmentations"]) is (name in ("lfn_attempt3", "lfn_attempt4"))

    # A finished run folder is never overwritten.
    again = load_script(name).main(["--data", str(study_data), "--out", str(out)])
    assert again == 2
    assert "already holds a dermkit run" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "size"),
    [("resnet50_attempt1", 32), ("resnet50_attempt2", 32), ("inception_v3_attempt1", 75)],
)
def test_backbone_attempts_run_end_to_end(
    load_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    study_data: Path,
    tmp_path: Path,
    name: str,
    size: int,
) -> None:
    out = tmp_path / name
    extra = ("--image-size", str(size), "--weights", "none", "--batch-size", "8")
    printed = smoke(load_script, capsys, study_data, out, name, *extra)
    assert f"run folder: {out}" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["weights"] is None
