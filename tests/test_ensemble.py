"""Ensembles of finished runs: ``load_ensemble`` and ``dermkit evaluate RUN RUN``.

One tiny run is trained for the module; its copy with a shifted output bias is the
second member, so the two predict differently and the mean is checkable exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import train_tiny_run
from dermkit.cli.main import main
from dermkit.errors import ConfigError


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from dermkit.models import load_model

    base = tmp_path_factory.mktemp("ensemble")
    first = train_tiny_run(base)
    second = base / "second"
    shutil.copytree(first, second)
    model = load_model(second / "model.keras", compile=False)
    dense = model.layers[-1]
    while not dense.weights:  # the last layer with weights: the output Dense
        dense = model.layers[model.layers.index(dense) - 1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + np.linspace(-1.0, 1.0, bias.shape[0])])
    model.save(second / "model.keras")
    return first, second


def test_ensemble_predicts_the_mean_of_its_members(runs: tuple[Path, Path]) -> None:
    from dermkit.ensemble import load_ensemble
    from dermkit.runs import load_run

    first, second = (load_run(r) for r in runs)
    images = sorted((runs[0].parent / "data").rglob("*.png"))[:6]
    one = first.predict(images)
    two = second.predict(images)
    assert not np.allclose(one, two, atol=1e-3)  # the members really differ
    ensemble = load_ensemble(runs)
    np.testing.assert_allclose(ensemble.predict(images), (one + two) / 2, atol=1e-6)
    assert ensemble.classes == first.classes
    assert set(ensemble.run_dirs) == set(runs)


def test_ensemble_refuses_one_member_and_other_classes(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    from dermkit.ensemble import load_ensemble

    with pytest.raises(ConfigError, match="at least two runs"):
        load_ensemble(runs[:1])
    other = tmp_path / "other"
    shutil.copytree(runs[1], other)
    names = json.loads((other / "classes.json").read_text())
    (other / "classes.json").write_text(json.dumps(list(reversed(names))))
    with pytest.raises(ConfigError, match="predicts classes") as error:
        load_ensemble([runs[0], other])
    assert str(other) in str(error.value)


def test_evaluate_ensemble_on_the_shared_test_part(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(["evaluate", str(runs[0]), str(runs[1]), "--part", "test", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "were used by this run" not in captured.err  # held out by both members
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["ensemble"]["members"] == [str(r / "model.keras") for r in runs]
    assert "Probabilities averaged over 2 runs" in (out / "report.md").read_text()
    rows = (out / "predictions.csv").read_text().splitlines()
    single = json.loads((runs[0] / "report_test" / "report.json").read_text())
    assert len(rows) - 1 == sum(single["metrics"]["support"])


def _with_parts(run: Path, copy: Path, moved: dict[str, str]) -> Path:
    """A copy of ``run`` whose split.csv has the first image of each key part moved to
    the value part: another fold of the same data."""
    shutil.copytree(run, copy)
    lines = (copy / "split.csv").read_text().splitlines()
    part = lines[0].split(",").index("part")
    first = {
        source: next(i for i, row in enumerate(lines) if row.split(",")[part] == source)
        for source in moved
    }
    for source, target in moved.items():
        index = first[source]
        cells = lines[index].split(",")
        cells[part] = target
        lines[index] = ",".join(cells)
    (copy / "split.csv").write_text("\n".join(lines) + "\n")
    return copy


def test_evaluate_ensemble_of_folds_on_their_common_test_part(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # cross-validation folds: training and validation parts differ, the test part is common
    fold = _with_parts(runs[1], tmp_path / "fold", {"train": "val", "val": "train"})
    out = tmp_path / "report"
    code = main(["evaluate", str(runs[0]), str(fold), "--part", "test", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "were used by this run" not in captured.err
    single = json.loads((runs[0] / "report_test" / "report.json").read_text())
    assert len((out / "predictions.csv").read_text().splitlines()) - 1 == sum(
        single["metrics"]["support"]
    )
    # their validation parts differ: each member's val images may be the other's training
    code = main(["evaluate", str(runs[0]), str(fold), "--part", "val"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "val parts differ (2 images in one but not the other)" in err
    assert "training images" in err


def test_evaluate_ensemble_refuses_members_of_different_splits(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-split"
    shutil.copytree(runs[1], other)
    lines = (other / "split.csv").read_text().splitlines()
    # drop the last test image from the manifest: the splits now differ
    part = lines[0].split(",").index("part")
    dropped = max(i for i, row in enumerate(lines) if row.split(",")[part] == "test")
    (other / "split.csv").write_text("\n".join(lines[:dropped] + lines[dropped + 1 :]) + "\n")
    code = main(["evaluate", str(runs[0]), str(other), "--part", "test"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "test parts differ (1 images in one but not the other)" in err
    # on --data, images any member trained on are flagged
    data = runs[0].parent / "data"
    out = tmp_path / "on-data"
    code = main(["evaluate", str(runs[0]), str(other), "--data", str(data), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "were used by this run" in err
