"""StandardEvaluator, Report (JSON, Markdown, figures) and compare_reports."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest

from dermkit import plugins
from dermkit.core import ClassIndex, Problem, Record
from dermkit.errors import ConfigError, DataError
from dermkit.evaluation import (
    Report,
    RunContext,
    StandardEvaluator,
    compare_reports,
    count_by_class,
)
from dermkit.evaluation.plots import PLOT_FILES

CLASSES = ClassIndex.ham10000()
SIZES = (12, 15, 30, 5, 30, 120, 6)


def _records(seed: int = 0) -> list[Record]:
    labels = np.repeat(np.arange(len(SIZES)), SIZES)
    return [
        Record(path=f"img/{i}.jpg", label=int(label), group=f"lesion{i // 2}")
        for i, label in enumerate(labels)
    ]


def _probabilities(records: list[Record], strength: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.array([r.label for r in records])
    logits = rng.normal(size=(len(records), len(CLASSES)))
    logits[np.arange(len(records)), labels] += strength
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


HISTORY = {
    "loss": [1.5, 1.1, 0.9, 0.8],
    "val_loss": [1.4, 1.2, 1.1, 1.15],
    "accuracy": [0.4, 0.55, 0.62, 0.7],
    "val_accuracy": [0.45, 0.5, 0.58, 0.57],
}


@pytest.fixture(scope="module")
def report() -> Report:
    records = _records()
    base = StandardEvaluator(n_boot=300).evaluate(_probabilities(records), records, CLASSES)
    return base.with_context(
        history=HISTORY,
        config={"model": {"name": "lfn", "input_size": 300}, "seed": 0},
        data_counts=count_by_class({"train": records[:100], "test": records}, CLASSES),
        skipped=[Problem("imgs/ISIC_0001.jpg", "cannot decode image", "re-download it")],
    )


def test_evaluate_fills_every_metric(report: Report) -> None:
    m = report.metrics
    assert m.n == sum(SIZES)
    assert list(m.support) == list(SIZES)
    assert 0.0 < report.balanced_accuracy <= 1.0
    assert report.intervals is not None and report.intervals.grouped
    assert report.intervals.balanced_accuracy.contains(report.balanced_accuracy)
    assert report.intervals.accuracy.contains(report.accuracy)
    assert m.positive_class == CLASSES.index("mel")
    assert [p.target_specificity for p in m.operating_points] == [0.8, 0.9, 0.95]
    assert report.evaluation["evaluator"] == "standard"
    assert report.recall_of("mel") == m.recall[4]


def test_write_produces_all_files_and_json_round_trips(report: Report, tmp_path: Path) -> None:
    written = report.write(tmp_path / "out")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"report.json", "report.md", *PLOT_FILES.values()}
    assert set(written) == {"json", "markdown", *PLOT_FILES}
    for name in PLOT_FILES.values():
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = (tmp_path / "out" / "report.json").read_text()
    data = json.loads(text)  # strict JSON: NaN and infinity are encoded
    assert "NaN" not in text and "Infinity" in text  # the ROC's first threshold
    again = Report.read(tmp_path / "out")
    assert again.to_json() == data == report.to_json()
    assert again.dumps() == text
    assert again.history == report.history
    assert again.skipped == report.skipped
    assert again.intervals == report.intervals

    md = (tmp_path / "out" / "report.md").read_text()
    for heading in (
        "## Configuration",
        "## Data",
        "## Metrics",
        "## Per class",
        "## Sensitivity for mel",
        "## Confusion matrix",
        "## Figures",
        "## Skipped inputs",
    ):
        assert heading in md
    for name in PLOT_FILES.values():
        assert f"]({name})" in md
    assert "model.input_size | 300" in md
    assert "imgs/ISIC_0001.jpg" in md


def test_write_without_history_skips_training_curves(tmp_path: Path) -> None:
    records = _records()
    rep = StandardEvaluator(n_boot=0).evaluate(_probabilities(records), records, CLASSES)
    written = rep.write(tmp_path)
    assert "training_curves" not in written and rep.intervals is None
    assert "training_curves.png" not in (tmp_path / "report.md").read_text()
    assert Report.read(tmp_path / "report.json").intervals is None


def test_perfect_predictions_report_ones() -> None:
    records = _records()
    rep = StandardEvaluator(n_boot=100).evaluate(
        _probabilities(records, strength=40.0), records, CLASSES
    )
    assert rep.accuracy == rep.balanced_accuracy == rep.macro_f1 == rep.macro_auc == 1.0
    assert rep.metrics.ece < 1e-6
    assert rep.intervals is not None and rep.intervals.balanced_accuracy.low == 1.0


def test_balanced_test_draws_equal_counts_per_class() -> None:
    records = _records()
    probs = _probabilities(records)
    rep = StandardEvaluator(n_boot=50, balanced_test=True, per_class_test=10, seed=3).evaluate(
        probs, records, CLASSES
    )
    assert list(rep.metrics.support) == [10] * 7
    assert rep.evaluation["per_class"] == 10
    assert set(rep.evaluation["drawn_with_replacement"]) == {"df", "vasc"}
    default = StandardEvaluator(n_boot=50, balanced_test=True).evaluate(probs, records, CLASSES)
    assert list(default.metrics.support) == [min(SIZES)] * 7
    again = StandardEvaluator(n_boot=50, balanced_test=True, per_class_test=10, seed=3)
    assert again.evaluate(probs, records, CLASSES).to_json() == rep.to_json()


def test_absent_class_is_noted_and_excluded_from_balanced_accuracy(tmp_path: Path) -> None:
    records = [r for r in _records() if r.label != CLASSES.index("df")]
    rep = StandardEvaluator(n_boot=50).evaluate(_probabilities(records), records, CLASSES)
    rep.write(tmp_path)  # undefined values must not break the figures
    assert Report.read(tmp_path).to_json() == rep.to_json()
    assert np.isnan(rep.metrics.recall[CLASSES.index("df")])
    present = [r for r in rep.metrics.recall if not np.isnan(r)]
    assert rep.balanced_accuracy == pytest.approx(np.mean(present))
    assert any("df" in note for note in rep.notes)
    assert "| df | 0 |" in rep.to_markdown()


def test_evaluator_rejects_bad_input() -> None:
    records = _records()
    probs = _probabilities(records)
    evaluator = StandardEvaluator(n_boot=10)
    with pytest.raises(DataError, match="columns"):
        evaluator.evaluate(probs[:, :5], records, CLASSES)
    with pytest.raises(DataError, match="rows"):
        evaluator.evaluate(probs[:10], records, CLASSES)
    with pytest.raises(DataError, match="sum to 1"):
        evaluator.evaluate(np.log(probs), records, CLASSES)
    fake = [*records[:-1], attrs.evolve(records[-1], synthetic_source="gan-run-1")]
    with pytest.raises(DataError, match="synthetic"):
        evaluator.evaluate(probs, fake, CLASSES)
    with pytest.raises(ConfigError, match="positive_class"):
        StandardEvaluator(positive_class="melanoma").evaluate(probs, records, CLASSES)
    with pytest.raises(ConfigError):
        StandardEvaluator(per_class_test=10)
    with pytest.raises(ConfigError):
        StandardEvaluator(specificities=(0.9, 1.0))


def test_without_mel_the_operating_points_are_left_out() -> None:
    classes = ClassIndex(("benign", "malignant"))
    records = [Record(path=f"{i}.jpg", label=i % 2, group=str(i)) for i in range(20)]
    probs = np.tile([[0.7, 0.3], [0.2, 0.8]], (10, 1))
    rep = StandardEvaluator(n_boot=20).evaluate(probs, records, classes)
    assert rep.metrics.operating_points == () and rep.accuracy == 1.0
    assert any("mel" in note for note in rep.notes)
    chosen = StandardEvaluator(n_boot=20, positive_class="malignant")
    assert len(chosen.evaluate(probs, records, classes).metrics.operating_points) == 3


def test_evaluator_config_round_trips() -> None:
    evaluator = StandardEvaluator(n_boot=200, seed=4, specificities=[0.85], balanced_test=True)
    data = json.loads(json.dumps(evaluator.to_json()))
    assert StandardEvaluator(**data) == evaluator
    assert StandardEvaluator(**attrs.asdict(evaluator)) == evaluator


def test_registered_as_plugin() -> None:
    plugins.reset()
    try:
        assert plugins.lookup("evaluators", "standard") is StandardEvaluator
    finally:
        plugins.reset()


def test_compare_reports_table(report: Report) -> None:
    records = _records()
    other = StandardEvaluator(n_boot=100).evaluate(
        _probabilities(records, strength=3.0, seed=1), records, CLASSES
    )
    table = compare_reports({"baseline": report, "stronger": other})
    lines = table.strip().splitlines()
    assert len(lines) == 4
    assert "Balanced accuracy (95% CI)" in lines[0] and "Recall mel" in lines[0]
    assert lines[2].startswith("| baseline | ")
    assert f"{other.balanced_accuracy:.3f} (" in lines[3]
    assert compare_reports({}).startswith("_No reports")


def test_read_rejects_foreign_json(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"format": "something-else"}')
    with pytest.raises(DataError, match="not a dermkit report"):
        Report.read(tmp_path)
    with pytest.raises(DataError, match="no report"):
        Report.read(tmp_path / "missing")


def test_run_context_and_headline(tmp_path: Path) -> None:
    records = _records()
    rep = StandardEvaluator(n_boot=50).evaluate(_probabilities(records), records, CLASSES)
    context = RunContext(
        config={"model": "lfn"},
        part="test",
        counts={"train": [1, 2, 3, 4, 5, 6, 7], "test": list(SIZES)},
        skipped=[{"source": "x.jpg", "reason": "unreadable", "hint": ""}],
        history=HISTORY,
        notes=["class_weights (balanced)"],
    )
    written = rep.write(tmp_path, context=context)
    assert "training_curves" in written
    again = Report.read(tmp_path)
    assert again.data_counts["train"]["vasc"] == 7
    assert again.skipped == (Problem("x.jpg", "unreadable"),)
    assert again.evaluation["part"] == "test" and "test part" in again.title
    assert "class_weights (balanced)" in again.notes
    head = rep.headline()
    assert head["balanced_accuracy"] == rep.balanced_accuracy and head["n"] == sum(SIZES)
    assert head["balanced_accuracy_ci_low"] <= rep.balanced_accuracy
    assert f"{rep.balanced_accuracy:.3f}" in rep.summary_line()
    with pytest.raises(DataError, match="counts"):
        rep.with_run_context(RunContext(counts={"train": [1, 2]}))
