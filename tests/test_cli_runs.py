"""The commands that use a finished run: evaluate, predict, compare (and ``load_run``).

One tiny run is trained once for the whole module (LFN at 64x64, one epoch on about
thirty synthetic images in class folders named like HAM10000 classes), so the ISIC
ground truth written here can name the run's classes. Commands run in-process
through ``dermkit.cli.main.main`` with their output captured.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import TINY_RUN_SIZE, train_tiny_run
from dermkit.cli.main import main
from dermkit.errors import DataError

SIZE = TINY_RUN_SIZE
RUN_CLASSES = ("bcc", "mel", "nv", "vasc")
"""The tiny run's classes: ImageFolder sorts the folder names."""

DEMO_TO_HAM = {
    "synthetic-round-brown": "nv",
    "synthetic-irregular-dark": "mel",
    "synthetic-red-lacunae": "vasc",
    "synthetic-speckled": "bcc",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("tiny-run"), rename=DEMO_TO_HAM)


@pytest.fixture(scope="module")
def images(tiny_run: Path) -> dict[str, list[Path]]:
    """The training images by class (any readable image of the right kind will do)."""
    data = tiny_run.parent / "data"
    return {name: sorted((data / name).glob("*.png")) for name in RUN_CLASSES}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_isic(
    folder: Path, images: dict[str, list[Path]], wanted: dict[str, int], extra: dict[str, int]
) -> tuple[Path, Path]:
    """An ISIC-style one-hot CSV with shuffled columns, plus its image folder.

    ``wanted`` counts images of the run's classes; ``extra`` rows of other classes
    (their images are copies of an nv image, only the label matters).
    """
    image_dir = folder / "images"
    image_dir.mkdir(parents=True)
    columns = ["VASC", "NV", "MEL", "BCC", "AKIEC", "BKL", "DF"]
    rows: list[dict[str, str]] = []
    number = 0
    for name, count in [*wanted.items(), *extra.items()]:
        for i in range(count):
            image_id = f"ISIC_{number:07d}"
            number += 1
            source = images.get(name, images["nv"])[i]
            shutil.copy(source, image_dir / f"{image_id}.png")
            row = {"image": image_id, **{c: "0.0" for c in columns}}
            row[name.upper()] = "1.0"
            rows.append(row)
    csv_path = folder / "ISIC2018_Task3_Test_GroundTruth.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", *columns])
        writer.writeheader()
        writer.writerows(rows)
    return csv_path, image_dir


# --------------------------------------------------------------------------- load_run


def test_load_run_reads_the_run_folder(tiny_run: Path) -> None:
    from dermkit.runs import load_run

    run = load_run(tiny_run)
    assert run.classes.names == RUN_CLASSES
    assert run.settings.size == SIZE
    assert run.temperature is not None  # fitted on the validation part
    paths = sorted((tiny_run.parent / "data" / "mel").glob("*.png"))[:3]
    plain = run.predict(paths, batch_size=2)
    assert plain.shape == (3, 4)
    np.testing.assert_allclose(plain.sum(axis=1), 1.0, atol=1e-5)
    same = run.predict_images(run.images(paths))
    np.testing.assert_allclose(same, plain, atol=1e-5)
    calibrated = run.predict(paths, calibrated=True, tta=True)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-6)


def test_an_unset_image_size_means_the_model_default(tiny_run: Path, tmp_path: Path) -> None:
    from dermkit.errors import ConfigError
    from dermkit.runs import load_run

    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("classes.json", "model.keras"):
        shutil.copy(tiny_run / name, copy / name)
    config = json.loads((tiny_run / "config.json").read_text())
    config["image"]["size"] = None  # LFN's default input size is 300
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=f"takes {SIZE}x{SIZE} images but config.json says 300"):
        load_run(copy)


def test_an_unfinished_run_says_how_to_resume(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "classes.json"):
        shutil.copy(tiny_run / name, unfinished / name)
    code, _, err = run_cli(capsys, "predict", str(unfinished), str(tmp_path))
    assert code == 2
    assert err.count("\n") == 1
    assert "no model.keras" in err and "dermkit resume" in err


# --------------------------------------------------------------------------- evaluate


def test_evaluate_reads_isic_columns_by_name(
    tiny_run: Path,
    images: dict[str, list[Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wanted = {"nv": 5, "mel": 3, "vasc": 2, "bcc": 1}
    csv_path, image_dir = write_isic(tmp_path, images, wanted, {})
    (image_dir / "ISIC_9999999.png").write_bytes(b"<html>not an image</html>")
    with open(csv_path, "a", encoding="utf-8") as handle:
        handle.write("ISIC_9999999,0.0,1.0,0.0,0.0,0.0,0.0,0.0\n")
    code, out, err = run_cli(
        capsys, "evaluate", str(tiny_run), "--data", str(csv_path), "--image-dir", str(image_dir)
    )
    assert code == 0, err
    report_dir = tiny_run / "eval-ISIC2018_Task3_Test_GroundTruth"
    assert "Balanced accuracy" in out and "macro F1" in out
    assert str(report_dir / "report.md") in out
    report = json.loads((report_dir / "report.json").read_text())
    assert report["class_names"] == list(RUN_CLASSES)
    support = dict(zip(report["class_names"], report["metrics"]["support"], strict=True))
    assert support == wanted
    assert [p["source"] for p in report["skipped"]] == [str(image_dir / "ISIC_9999999.png")]
    assert report["evaluation"]["format"] == "isic-gt"
    with open(report_dir / "predictions.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(wanted.values())
    assert {r["true"] for r in rows} == set(wanted)


def test_evaluate_with_tta_calibration_and_balanced_test(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "report"
    code, _, err = run_cli(
        capsys,
        "evaluate",
        str(tiny_run),
        "--data",
        str(tiny_run.parent / "data"),
        "--tta",
        "--calibrated",
        "--balanced-test",
        "--out",
        str(out_dir),
    )
    assert code == 0, err
    assert "were used by this run" in err  # the run's own images: a warning, and a note
    report = json.loads((out_dir / "report.json").read_text())
    assert any("overstate" in note for note in report["notes"])
    evaluation = report["evaluation"]
    assert evaluation["tta"] and evaluation["calibrated"] and evaluation["balanced_test"]
    assert evaluation["temperature"] > 0
    # balanced test: the smallest class (4 images) sets the draw for every class
    assert report["metrics"]["support"] == [evaluation["per_class"]] * 4


def test_evaluate_refuses_classes_the_model_does_not_know(
    tiny_run: Path,
    images: dict[str, list[Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv_path, image_dir = write_isic(tmp_path, images, {"nv": 2, "mel": 1}, {"akiec": 2})
    code, _, err = run_cli(
        capsys, "evaluate", str(tiny_run), "--data", str(csv_path), "--image-dir", str(image_dir)
    )
    assert code == 2
    assert err.count("\n") == 1
    assert "does not know: akiec (2 images)" in err
    assert "bcc, mel, nv, vasc" in err


def test_evaluate_on_a_missing_folder_is_one_line(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-data"
    code, out, err = run_cli(capsys, "evaluate", str(tiny_run), "--data", str(missing))
    assert code == 2
    assert out == ""
    assert err.startswith("dermkit: error:") and err.count("\n") == 1
    assert str(missing) in err


# --------------------------------------------------------------------------- class index


@pytest.fixture(scope="module")
def three_classes(tiny_run: Path) -> Path:
    """A folder of three of the run's classes: ImageFolder numbers them mel 0, nv 1, vasc 2."""
    folder = tiny_run.parent / "three"
    if not folder.exists():
        for name in ("mel", "nv", "vasc"):
            shutil.copytree(tiny_run.parent / "data" / name, folder / name)
    return folder


def _support(report: Any) -> dict[str, int]:
    return dict(zip(report.class_names, report.metrics.support, strict=True))


def test_the_evaluator_scores_a_three_class_folder_by_class_name(
    tiny_run: Path, three_classes: Path
) -> None:
    """Issue 7.2: mel/nv/vasc images were scored as bcc/mel/nv, by position."""
    from dermkit.data.folder import ImageFolder
    from dermkit.evaluation import StandardEvaluator
    from dermkit.runs import load_run

    run = load_run(tiny_run)
    loaded = ImageFolder(three_classes).load()
    assert loaded.classes.names == ("mel", "nv", "vasc") != run.classes.names
    counts = dict(zip(loaded.classes, loaded.counts(), strict=True))
    probabilities = run.predict(loaded.records)
    evaluator = StandardEvaluator(n_boot=0)
    report = evaluator.evaluate(probabilities, loaded, run.classes)
    assert _support(report) == {"bcc": 0, **counts}
    named = evaluator.evaluate(
        probabilities, loaded.records, run.classes, record_classes=loaded.classes
    )
    assert named.to_json() == report.to_json()
    with pytest.raises(DataError, match="columns but the model's class index has 3 classes"):
        evaluator.evaluate(probabilities, loaded, loaded.classes)


@pytest.mark.filterwarnings("ignore:the model predicts:UserWarning")  # a one-epoch model
def test_run_evaluate_scores_any_dataset_by_class_name(
    tiny_run: Path, three_classes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dermkit.data.folder import ImageFolder
    from dermkit.evaluation import Report
    from dermkit.runs import load_run

    run = load_run(tiny_run)
    counts = dict(zip(*_names_and_counts(three_classes), strict=True))
    by_path = run.evaluate(three_classes)
    by_dataset = run.evaluate(ImageFolder(three_classes), tta=True, calibrated=True)
    by_loaded = run.evaluate(ImageFolder(three_classes).load())
    for report in (by_path, by_dataset, by_loaded):
        assert _support(report) == {"bcc": 0, **counts}
    assert by_path.to_json()["metrics"] == by_loaded.to_json()["metrics"]
    assert by_dataset.evaluation["tta"] and by_dataset.evaluation["calibrated"]
    assert by_path.title == f"Evaluation report: {run.name} on three"

    out = tmp_path / "cli"
    code, _, err = run_cli(
        capsys, "evaluate", str(tiny_run), "--data", str(three_classes), "--out", str(out)
    )
    assert code == 0, err
    cli = Report.read(out)
    assert cli.to_json()["metrics"] == by_path.to_json()["metrics"]  # the CLI is the same call

    unknown = tmp_path / "unknown"
    shutil.copytree(three_classes, unknown)
    shutil.copytree(three_classes / "nv", unknown / "akiec")
    with pytest.raises(DataError, match=r"does not know: akiec \(\d+ images\)"):
        run.evaluate(unknown)


def _names_and_counts(folder: Path) -> tuple[list[str], list[int]]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    return names, [len(list((folder / n).glob("*.png"))) for n in names]


@pytest.fixture(scope="module")
def collapsed_run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny run whose model answers nv for every image (output bias only)."""
    from dermkit.models import load_model

    folder = tmp_path_factory.mktemp("collapsed") / "run"
    shutil.copytree(tiny_run, folder, ignore=shutil.ignore_patterns("eval-*", "checkpoints"))
    model = load_model(folder / "model.keras", compile=False)
    head = [layer for layer in model.layers if layer.weights][-1]
    kernel, bias = head.get_weights()
    bias[:] = 0.0
    bias[RUN_CLASSES.index("nv")] = 50.0
    head.set_weights([np.zeros_like(kernel), bias])
    model.save(folder / "model.keras")
    return folder


@pytest.mark.filterwarnings("ignore:.*were used by this run:UserWarning")
def test_a_model_that_predicts_one_class_is_warned_about_everywhere(
    tiny_run: Path, collapsed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 7.7: `dermkit evaluate`, `run.evaluate` and `Experiment.evaluate_run`."""
    from dermkit.data.splits import read_split_manifest
    from dermkit.experiment import Experiment
    from dermkit.runs import load_run

    data = tiny_run.parent / "data"
    out = tmp_path / "report"
    code, stdout, err = run_cli(
        capsys, "evaluate", str(collapsed_run), "--data", str(data), "--out", str(out)
    )
    assert code == 0, err
    assert "dermkit: warning: the model predicts nv for 100%" in err
    assert "WARNING: the model predicts nv for 100%" in stdout  # the summary line
    md = (out / "report.md").read_text()
    assert md.index("**Warning:** the model predicts nv") < md.index("## Configuration")

    with pytest.warns(UserWarning, match="predicts nv for 100%"):
        report = load_run(collapsed_run).evaluate(data)
    assert report.warnings and "collapsed" in report.warnings[0]

    experiment = Experiment.from_run(collapsed_run)
    loaded = experiment.load_data()
    split = read_split_manifest(collapsed_run / "split.csv")
    experiment.evaluate_run(
        collapsed_run,
        split,
        loaded.classes,
        experiment.image_loader(),
        loaded,
        experiment.make_plan(split.train, loaded.classes),
        {},
    )
    err = capsys.readouterr().err
    assert "dermkit: val: " in err and "WARNING: the model predicts nv" in err
    md = (collapsed_run / "report_test" / "report.md").read_text()
    assert "**Warning:** the model predicts nv for 100%" in md


# --------------------------------------------------------------------------- predict


@pytest.fixture
def inputs(images: dict[str, list[Path]], tmp_path: Path) -> dict[str, Any]:
    """Three good images (one in a nested folder), a corrupt one and a stray text file."""
    folder = tmp_path / "inputs"
    (folder / "nested").mkdir(parents=True)
    good = [
        Path(shutil.copy(images["mel"][0], folder / "a.png")),
        Path(shutil.copy(images["nv"][0], folder / "b.png")),
        Path(shutil.copy(images["vasc"][0], folder / "nested" / "a.png")),
    ]
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (folder / "notes.txt").write_text("not an image")
    return {"folder": folder, "good": good, "corrupt": corrupt}


def test_predict_json_lists_probabilities_top_k_and_errors(
    tiny_run: Path, inputs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "predict", str(tiny_run), str(inputs["folder"]), "--json", "--top-k", "2"
    )
    assert code == 0, err
    items = json.loads(out)
    errors = [item for item in items if "error" in item]
    assert [item["image"] for item in errors] == [str(inputs["corrupt"])]
    assert "truncated" in errors[0]["error"] or "corrupt" in errors[0]["error"]
    assert str(inputs["corrupt"]) in err  # also reported on stderr
    predictions = [item for item in items if "error" not in item]
    assert sorted(item["image"] for item in predictions) == sorted(map(str, inputs["good"]))
    for item in predictions:
        probabilities = item["probabilities"]
        assert list(probabilities) == list(RUN_CLASSES)
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        top = item["top_k"]
        assert len(top) == 2
        assert top[0]["probability"] >= top[1]["probability"]
        ranked = sorted(probabilities.values(), reverse=True)
        assert [t["probability"] for t in top] == pytest.approx(ranked[:2])
        assert top[0]["class"] == max(probabilities, key=probabilities.__getitem__)


def test_predict_csv_and_table(
    tiny_run: Path, inputs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    good = [str(p) for p in inputs["good"]]
    code, out, _ = run_cli(capsys, "predict", str(tiny_run), *good, "--csv", "--batch-size", "2")
    assert code == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["image", *RUN_CLASSES]
    assert [r[0] for r in rows[1:]] == good
    for row in rows[1:]:
        assert sum(float(v) for v in row[1:]) == pytest.approx(1.0, abs=1e-4)

    code, out, _ = run_cli(capsys, "predict", str(tiny_run), *good, "--tta", "--calibrated")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["image", "top", "1", "top", "2", "top", "3"]
    assert [line.split()[0] for line in lines[1:]] == good
    for line in lines[1:]:
        values = [float(v) for v in line.split()[2::2]]
        assert values == sorted(values, reverse=True)


def test_predict_with_only_bad_images_exits_2(
    tiny_run: Path, inputs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "predict", str(tiny_run), str(inputs["corrupt"]), str(tmp_path / "missing.png")
    )
    assert code == 2
    assert out == ""
    assert "no such file" in err and str(inputs["corrupt"]) in err
    assert "no image could be predicted" in err


def test_predict_writes_gradcam_overlays(
    tiny_run: Path, inputs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cams"
    code, out, _ = run_cli(
        capsys, "predict", str(tiny_run), str(inputs["folder"]), "--gradcam", str(out_dir), "--json"
    )
    assert code == 0
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["a-2_gradcam.png", "a_gradcam.png", "b_gradcam.png"]  # no temp files
    items = [item for item in json.loads(out) if "error" not in item]
    assert {Path(item["gradcam"]).name for item in items} == set(written)


def test_gradcam_figure_is_the_original_size_beside_the_overlay(
    tiny_run: Path,
    images: dict[str, list[Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not the 64x64 input the model saw: the photo as it is, and the overlay on it."""
    import cv2

    from dermkit.evaluation.gradcam_figure import gap_width

    picture = cv2.resize(cv2.imread(str(images["mel"][0])), (150, 100))  # 150 wide, 100 high
    source = tmp_path / "wide.png"
    cv2.imwrite(str(source), picture)
    out_dir = tmp_path / "cams"
    code, out, _ = run_cli(
        capsys, "predict", str(tiny_run), str(source), "--gradcam", str(out_dir), "--json"
    )
    assert code == 0
    (item,) = json.loads(out)
    figure = cv2.imread(item["gradcam"])
    assert figure is not None
    banner = figure.shape[0] - 100
    assert banner > 0 and figure.shape[1] == 150 + gap_width(150) + 150
    np.testing.assert_array_equal(figure[banner:, :150], picture)
    assert not np.array_equal(figure[banner:, -150:], picture)
    assert figure[:banner].min() < 100  # the class and probability are written on top
    top = max(item["probabilities"], key=item["probabilities"].__getitem__)
    assert item["top_k"][0]["class"] == top


# --------------------------------------------------------------------------- compare


def test_compare_tables_every_run(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-run"
    shutil.copytree(tiny_run / "report_test", other / "report_test")
    code, out, _ = run_cli(capsys, "compare", str(tiny_run), str(other))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("| Run | n | Balanced accuracy (95% CI)")
    assert "Recall mel" in lines[0]
    assert lines[2].startswith(f"| {tiny_run} |") and lines[3].startswith(f"| {other} |")

    code, _, err = run_cli(capsys, "compare", str(tiny_run), str(other), "--part", "val")
    assert code == 2 and f"no report_val/report.json in {other}" in err
    code, out, _ = run_cli(capsys, "compare", str(tiny_run), str(other), "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["run"] for r in rows] == [str(tiny_run), str(other)]
    assert set(rows[0]["recall"]) == set(RUN_CLASSES)


def test_compare_names_runs_without_a_report(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty-run"
    empty.mkdir()
    code, out, err = run_cli(capsys, "compare", str(tiny_run), str(empty))
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert str(empty) in err and str(tiny_run) + "," not in err


def test_compare_warns_about_other_test_sets_and_shows_what_differs(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = tmp_path / "same-test-set"
    shutil.copytree(tiny_run / "report_test", same / "report_test")
    data = json.loads((same / "report_test" / "report.json").read_text())
    data["config"]["training"]["batch_size"] = 16
    data["config"]["training"]["optimizer"] = "adamax"
    (same / "report_test" / "report.json").write_text(json.dumps(data))
    code, out, err = run_cli(capsys, "compare", str(tiny_run), str(same))
    assert code == 0
    assert "test sets" not in err and "class lists" not in err  # same images and classes
    assert f"| {tiny_run} | {data['metrics']['n']} |" in out  # n per run
    assert "Settings that differ:" in out
    assert '| training.optimizer | "adam" | "adamax" |' in out
    assert "| training.batch_size | 8 | 16 |" in out

    external = tmp_path / "external"
    code, _, err = run_cli(
        capsys,
        "evaluate",
        str(tiny_run),
        "--data",
        str(tiny_run.parent / "data"),
        "--out",
        str(external),
    )
    assert code == 0, err
    code, out, err = run_cli(capsys, "compare", str(tiny_run), str(external), "--json")
    assert code == 0
    assert "dermkit: warning: the runs were scored on different test sets" in err
    rows = json.loads(out)
    assert rows[0]["test_set"] != rows[1]["test_set"]
    assert rows[1]["images"] > rows[0]["images"]
    assert rows[0]["differing_settings"] == {"evaluation.part": "test"}
    assert rows[1]["differing_settings"] == {"evaluation.part": None}


def test_compare_warns_about_other_class_lists(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dermkit.core import ClassIndex, Record
    from dermkit.evaluation import StandardEvaluator

    classes = ClassIndex(("benign", "malignant"))
    records = [Record(path=f"{i}.jpg", label=i % 2, group=str(i)) for i in range(20)]
    probabilities = np.tile([[0.7, 0.3], [0.2, 0.8]], (10, 1))
    report = StandardEvaluator(n_boot=0).evaluate(probabilities, records, classes)
    report.write(tmp_path / "binary", plots=False)
    code, out, err = run_cli(capsys, "compare", str(tiny_run), str(tmp_path / "binary"))
    assert code == 0
    assert "different class lists" in err and "benign, malignant" in err
    assert "different test sets" in err
    assert "Recall benign" in out.splitlines()[0] and "Recall mel" in out.splitlines()[0]


def test_compare_on_a_folder_that_does_not_exist_says_so(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-run"
    code, out, err = run_cli(capsys, "compare", str(tiny_run), str(missing))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"no such run folder: {missing}" in err


def test_evaluate_part_scores_the_runs_own_test_images(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "test-part"
    code, _, err = run_cli(
        capsys, "evaluate", str(tiny_run), "--part", "test", "--out", str(out_dir)
    )
    assert code == 0, err
    assert "were used by this run" not in err  # held-out images only
    again = json.loads((out_dir / "report.json").read_text())
    original = json.loads((tiny_run / "report_test" / "report.json").read_text())
    assert again["metrics"]["support"] == original["metrics"]["support"]
    assert again["metrics"]["balanced_accuracy"] == pytest.approx(
        original["metrics"]["balanced_accuracy"]
    )
    code, _, err = run_cli(capsys, "evaluate", str(tiny_run))
    assert code == 2 and "give either --data or --part" in err
