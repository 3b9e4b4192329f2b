"""``dermkit gan train/sample/evaluate`` and the ``gan_oversampling`` balancer.

One tiny generator run is trained once for the module, through the command line, on a
HAM10000-shaped synthetic dataset (df and vasc small, nv larger): 16×16 images, four
steps. The balancer tests then check what matters for honest results: synthetic
records are flagged, never reach validation or test, and a generator trained on
another split is refused.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import write_ham10000
from dermkit.cli import main as cli_main
from dermkit.core import BalanceContext, TrainingPlan
from dermkit.errors import ConfigError

GAN_MODULE = "dermkit.cli.gan_cmd"
SIZE = 16
# Every HAM10000 class has images: training refuses a class without any.
LESIONS = {"df": 10, "vasc": 10, "nv": 18, "akiec": 3, "bcc": 3, "bkl": 3, "mel": 3}


def _rows() -> list[dict[str, str]]:
    rows = []
    for dx, lesions in LESIONS.items():
        for lesion in range(lesions):
            for image in range(2 if lesion < 3 else 1):
                rows.append(
                    {
                        "lesion_id": f"HAM_{dx}_{lesion:02d}",
                        "image_id": f"ISIC_{dx}_{lesion:02d}_{image}",
                        "dx": dx,
                    }
                )
    return rows


@pytest.fixture(scope="module")
def gan_cli() -> Iterator[None]:
    """The ``gan`` command group in ``dermkit``'s parser (until main.py lists it itself)."""
    with pytest.MonkeyPatch.context() as patch:
        if GAN_MODULE not in cli_main.COMMAND_MODULES:
            patch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, GAN_MODULE))
        yield


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


TRAIN_ARGS = (
    "--image-size", str(SIZE), "--steps", "4", "--classes", "df", "vasc",
    "--g-width", "4", "--d-width", "4", "--batch-size", "4", "--z-dim", "8",
    "--sample-every", "2", "--checkpoint-every", "2", "--kid-every", "0",
    "--cache-dir", "", "--quiet",
)  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ham10000(tmp_path_factory.mktemp("gan-data") / "ham", _rows(), size=32)


@pytest.fixture(scope="module")
def gan_run(gan_cli: None, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gans") / "rare"
    code = cli_main.main(["gan", "train", "--data", str(dataset), "--out", str(out), *TRAIN_ARGS])
    assert code == 0
    return out


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _split(dataset: Path, seed: int) -> tuple[Any, Any]:
    from dermkit.data.open import open_dataset
    from dermkit.data.splits import GroupedStratifiedSplit

    loaded = open_dataset(dataset).load()
    return loaded, GroupedStratifiedSplit(val=0.15, test=0.15, seed=seed).split(
        loaded.records, loaded.classes
    )


# ----------------------------------------------------------------------------- train


def test_train_writes_a_generator_run_from_the_training_part_only(
    gan_run: Path, dataset: Path
) -> None:
    for name in ("gan.json", "split.csv", "training_images.csv", "generator.keras",
                 "generator.json", "state.json", "log.csv", "losses.png", "samples/latest.png",
                 "samples/step_000002.png", "checkpoints/last.npz", "problems.json"):  # fmt: skip
        assert (gan_run / name).is_file(), name
    settings = json.loads((gan_run / "gan.json").read_text())
    assert settings["config"]["classes"] == ["df", "vasc"]
    assert settings["split"] == {"val": 0.15, "test": 0.15, "seed": 0}
    assert json.loads((gan_run / "generator.json").read_text())["step"] == 4

    split_rows = _csv(gan_run / "split.csv")
    assert {row["part"] for row in split_rows} == {"train", "val", "test"}
    assert {row["class"] for row in split_rows} == set(LESIONS)  # the whole dataset's split
    expected = {
        os.path.realpath(row["path"])
        for row in split_rows
        if row["part"] == "train" and row["class"] in ("df", "vasc")
    }
    trained = {row["path"] for row in _csv(gan_run / "training_images.csv")}
    assert trained == expected
    _, split = _split(dataset, seed=0)  # the same split `dermkit train --seed 0` makes
    held_out = {os.path.realpath(r.path) for r in (*split.val, *split.test)}
    assert not trained & held_out


def test_train_refuses_a_used_folder_without_resume(
    gan_run: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "gan", "train", "--data", str(dataset), "--out", str(gan_run), *TRAIN_ARGS
    )
    assert code == 2 and "already holds a GAN run" in err and "--resume" in err


def test_resume_of_a_finished_run_trains_no_further(
    gan_run: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (gan_run / "checkpoints" / "last.npz").read_bytes()
    code, _, err = run_cli(
        capsys, "gan", "train", "--data", str(dataset), "--out", str(gan_run), "--resume",
        *TRAIN_ARGS,
    )  # fmt: skip
    assert code == 0 and "already ran 4 steps" in err
    assert (gan_run / "checkpoints" / "last.npz").read_bytes() == before


def test_a_second_writer_to_a_busy_generator_run_is_refused(
    gan_run: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dermkit import runlock

    before = (gan_run / "checkpoints" / "last.npz").read_bytes()
    with runlock.hold(gan_run):  # as if another `dermkit gan train` were writing it
        code, _, err = run_cli(
            capsys, "gan", "train", "--data", str(dataset), "--out", str(gan_run), "--resume",
            *TRAIN_ARGS, "--steps", "6",
        )  # fmt: skip
    assert code == 2 and "another" in err.lower()
    assert (gan_run / "checkpoints" / "last.npz").read_bytes() == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--classes", "mel", "dermatofibroma"), "not in the dataset"),
        (("--image-size", "48"), "power of two"),
        (("--augment", "rotate"), "DiffAugment"),
        (("--max-minutes", "0"), "positive number of minutes"),
        (("--d-steps", "0"), "d_steps must be a positive whole number"),
    ],
)
def test_train_bad_options_exit_2_and_write_nothing(
    gan_cli: None,
    dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    message: str,
) -> None:
    out = tmp_path / "never"
    code, _, err = run_cli(
        capsys, "gan", "train", "--data", str(dataset), "--out", str(out), *TRAIN_ARGS, *extra
    )
    assert code == 2 and message in err
    assert not out.exists()


# ----------------------------------------------------------------------------- sample


def test_sample_writes_pngs_and_a_manifest_marking_them_synthetic(
    gan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dermkit.data.images import read_image

    out = tmp_path / "synthetic"
    code, stdout, _ = run_cli(
        capsys, "gan", "sample", str(gan_run), "--class", "df", "--n", "5", "--out", str(out)
    )
    assert code == 0 and "manifest.csv" in stdout
    rows = _csv(out / "manifest.csv")
    assert len(rows) == 5
    sha = json.loads((gan_run / "generator.json").read_text())["sha256"]
    for row in rows:
        assert row["synthetic"] == "1" and row["class"] == "df"
        assert row["synthetic_source"] == os.path.realpath(gan_run)
        assert row["generator_sha256"] == sha and row["generator_step"] == "4"
        assert read_image(out / row["path"]).shape == (SIZE, SIZE, 3)
    first = {row["path"]: (out / row["path"]).read_bytes() for row in rows}

    code, _, _ = run_cli(
        capsys, "gan", "sample", str(gan_run), "--class", "df", "--class", "vasc",
        "--n", "7", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    rows = _csv(out / "manifest.csv")
    assert Counter(row["class"] for row in rows) == {"df": 7, "vasc": 7}
    for name, data in first.items():  # the first five are the same images, reused
        assert (out / name).read_bytes() == data


def test_sample_refuses_an_unknown_class_or_folder(
    gan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "gan", "sample", str(gan_run), "--class", "nv", "--out", str(tmp_path / "s")
    )
    assert code == 2 and "does not know class 'nv'" in err
    assert not (tmp_path / "s").exists()
    code, _, err = run_cli(
        capsys, "gan", "sample", str(tmp_path), "--class", "df", "--out", str(tmp_path / "s")
    )
    assert code == 2 and "not a generator run" in err


def test_sampling_is_deterministic_for_a_seed(gan_run: Path) -> None:
    from dermkit.gan.sample import open_generator

    generator = open_generator(gan_run)
    four = generator.images("df", 4, seed=3)
    np.testing.assert_array_equal(four, generator.images("df", 4, seed=3))
    np.testing.assert_array_equal(four[2:], generator.images("df", 2, seed=3, start=2))
    assert not np.array_equal(four, generator.images("df", 4, seed=4))
    assert not np.array_equal(four, generator.images("vasc", 4, seed=3))


# ----------------------------------------------------------------------------- evaluate


def _colour_features(images: np.ndarray) -> np.ndarray:
    pixels = images.astype(np.float64).reshape(len(images), -1, 3) / 64.0
    return np.concatenate([pixels.mean(axis=1), pixels.std(axis=1)], axis=1)


def test_evaluate_prints_the_quality_table_with_floors(
    gan_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.gan import quality

    monkeypatch.setattr(
        quality, "resolve_extractor", lambda *args: (_colour_features, "colour statistics")
    )
    code, stdout, err = run_cli(capsys, "gan", "evaluate", str(gan_run))
    assert code == 0
    assert "colour statistics" in stdout and "KID/floor" in stdout
    assert "df: " in err and "real training images" in err  # progress while it works
    assert [line.split("|")[1].strip() for line in stdout.splitlines() if line.startswith("| ")][
        1:
    ] == ["df", "vasc", "all"]
    saved = json.loads((gan_run / "quality.json").read_text())
    assert [row["name"] for row in saved["classes"]] == ["df", "vasc", "all"]
    assert (gan_run / "quality.md").is_file()


def test_quality_benchmark_prints_the_machine_and_kid_against_its_references(
    gan_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import sys

    from dermkit.gan import quality

    monkeypatch.setattr(
        quality, "resolve_extractor", lambda *args: (_colour_features, "colour statistics")
    )
    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))
    spec = importlib.util.spec_from_file_location("gan_quality", folder / "gan_quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gan_quality", module)
    spec.loader.exec_module(module)

    assert module.main([str(gan_run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# CPU: ") and "# instruction sets: " in out
    summary = [line for line in out.splitlines() if line.startswith(f"| {gan_run} |")]
    assert [line.split("|")[3].strip() for line in summary] == ["df", "vasc", "all"]
    saved = json.loads((gan_run / "quality.json").read_text())
    for line, row in zip(summary, saved["classes"], strict=True):
        cells = [cell.strip() for cell in line.split("|")]
        assert float(cells[4]) == pytest.approx(row["kid"] * 1e3, abs=0.06)
        assert float(cells[7]) == pytest.approx(row["kid"] / row["kid_noise"], abs=0.006)


def test_evaluate_without_features_says_what_to_do(
    gan_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "gan", "evaluate", str(gan_run), "--features", "none")
    assert code == 2 and "--classifier" in err


# ----------------------------------------------------------------------------- balancer


def test_balancer_is_registered_and_round_trips_through_its_config(gan_run: Path) -> None:
    from dermkit.balancers.gan_oversampling import GanOversampling
    from dermkit.config import build_component, component_config

    balancer = build_component(
        "balancers", {"name": "gan_oversampling", "generator": str(gan_run), "target": 10}
    )
    assert isinstance(balancer, GanOversampling)
    assert build_component("balancers", component_config(balancer)) == balancer
    with pytest.raises(ConfigError, match="neither a ratio"):
        GanOversampling(generator=str(gan_run), target=1.5)


def test_balancer_tops_up_minority_classes_with_flagged_synthetic_records(
    gan_run: Path, dataset: Path
) -> None:
    from dermkit.balancers.gan_oversampling import GanOversampling

    loaded, split = _split(dataset, seed=0)
    plan = TrainingPlan(records=split.train)
    context = BalanceContext(classes=loaded.classes, batch_size=4, seed=0)
    balanced = GanOversampling(generator=str(gan_run)).apply(plan, context)

    counts = Counter(loaded.classes.name(r.label) for r in balanced.records)
    assert counts["df"] == counts["vasc"] == counts["nv"]  # target 1.0: the largest class
    synthetic = balanced.synthetic_records
    assert len(synthetic) == len(balanced.records) - len(split.train) > 0
    assert {r.synthetic_source for r in synthetic} == {os.path.realpath(gan_run)}
    assert {loaded.classes.name(r.label) for r in synthetic} == {"df", "vasc"}
    assert all(Path(r.path).is_file() and str(gan_run) in str(r.path) for r in synthetic)
    real_groups = {r.group for r in split.train}
    assert not real_groups & {r.group for r in synthetic}
    added = Counter(loaded.classes.name(r.label) for r in synthetic)
    assert balanced.notes[-1].endswith(f"df +{added['df']}, vasc +{added['vasc']} synthetic images")

    stamps = {r.path: os.stat(r.path).st_mtime_ns for r in synthetic}
    again = GanOversampling(generator=str(gan_run)).apply(plan, context)
    assert again.records == balanced.records  # same generator and seed: the cached images
    assert {r.path: os.stat(r.path).st_mtime_ns for r in again.synthetic_records} == stamps


def test_balancer_count_target_and_class_choice(gan_run: Path, dataset: Path) -> None:
    from dermkit.balancers.gan_oversampling import GanOversampling

    loaded, split = _split(dataset, seed=0)
    plan = TrainingPlan(records=split.train)
    context = BalanceContext(classes=loaded.classes, batch_size=4, seed=0)
    balanced = GanOversampling(generator=str(gan_run), target=20, classes="df").apply(plan, context)
    counts = Counter(loaded.classes.name(r.label) for r in balanced.records)
    assert counts["df"] == 20
    assert {loaded.classes.name(r.label) for r in balanced.synthetic_records} == {"df"}
    with pytest.raises(ConfigError, match="not trained on class 'nv'"):
        GanOversampling(generator=str(gan_run), classes=("nv",)).apply(plan, context)


def test_a_generator_trained_on_another_split_is_refused(gan_run: Path, dataset: Path) -> None:
    from dermkit.balancers.gan_oversampling import GanOversampling

    loaded, other = _split(dataset, seed=1)
    _, own = _split(dataset, seed=0)
    assert {r.path for r in other.train} != {r.path for r in own.train}  # the premise
    plan = TrainingPlan(records=other.train)
    context = BalanceContext(classes=loaded.classes, batch_size=4, seed=1)
    with pytest.raises(ConfigError) as caught:
        GanOversampling(generator=str(gan_run)).apply(plan, context)
    assert "not in this run's training part" in caught.value.message
    assert "validation or test" in caught.value.message
    assert "--seed" in (caught.value.hint or "")


def test_synthetic_records_never_reach_validation_or_test(
    gan_run: Path, dataset: Path, tmp_path: Path
) -> None:
    from dermkit.balancers.gan_oversampling import GanOversampling
    from dermkit.data.splits import GroupedStratifiedSplit, read_split_manifest
    from dermkit.experiment import Experiment
    from dermkit.models.lfn import LFN
    from dermkit.training.config import Training

    experiment = Experiment(
        data=str(dataset),
        split=GroupedStratifiedSplit(val=0.15, test=0.15, seed=0),
        model=LFN(dense=(8,)),
        balancer=[GanOversampling(generator=str(gan_run), target=1.0)],
        training=Training(epochs=1, batch_size=8, verbose=0, seed=0),
        image_size=64,
        cache_dir="",
    )
    run = tmp_path / "run"
    experiment.run(run)

    split = read_split_manifest(run / "split.csv")
    assert not any(r.is_synthetic or "synthetic" in str(r.path) for r in split.val + split.test)
    plan = json.loads((run / "plan.json").read_text())
    assert plan["synthetic"] > 0 and "gan_oversampling" in plan["notes"][-1]
    assert len(np.load(run / "probabilities_val.npy")) == len(split.val)
    assert len(np.load(run / "probabilities_test.npy")) == len(split.test)
    assert json.loads((run / "config.json").read_text())["balancers"][0]["generator"] == str(
        gan_run
    )

    # and a splitter given synthetic records refuses them outright
    loaded = experiment.load_data()
    balanced = experiment.make_plan(split.train, loaded.classes)
    with pytest.raises(ConfigError, match="synthetic"):
        GroupedStratifiedSplit().split(balanced.records, loaded.classes)
