"""StandardEvaluator, Report (JSON, Markdown, figures) and compare_reports."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest

from dermkit import plugins
from dermkit.core import ClassIndex, LoadedDataset, Problem, Record
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
    assert lines[0].startswith("| Run | n |")
    assert lines[2].startswith(f"| baseline | {report.metrics.n} | ")
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


# --------------------------------------------------------------------------- issue 7


def _collapsed(records: list[Record], onto: str = "nv", share: float = 1.0) -> np.ndarray:
    """Probabilities that put about ``share`` of the images on one class.

    The images left out are the first ones (records come sorted by label, so these are
    of other classes) and are predicted correctly.
    """
    probs = _probabilities(records, strength=6.0)
    keep = round((1.0 - share) * len(records))
    probs[keep:] = 0.01 / (len(CLASSES) - 1)
    probs[keep:, CLASSES.index(onto)] = 0.99
    return probs


def test_report_opens_with_the_headline_then_the_configuration(report: Report) -> None:
    md = report.to_markdown()
    headline = md.index("## Headline")
    config = md.index("## Configuration")
    assert md.startswith(f"# {report.title}\n\n## Headline")
    assert headline < config < md.index("## Data") < md.index("## Metrics")
    block = md[headline:config]
    iv = report.intervals
    assert iv is not None
    ba = iv.balanced_accuracy
    assert f"| {report.balanced_accuracy:.3f} | {ba.low:.3f} – {ba.high:.3f} |" in block
    assert f"Macro F1 | {report.macro_f1:.3f}" in block
    assert f"Macro ROC AUC (one vs rest) | {report.macro_auc:.3f}" in block
    assert f"Sensitivity for mel (recall) | {report.recall_of('mel'):.3f}" in block
    assert f"Images evaluated (n) | {sum(SIZES)}" in block
    head = report.headline()
    assert head["sensitivity_mel"] == report.recall_of("mel")
    assert head["macro_f1_ci_low"] <= report.macro_f1 <= head["macro_f1_ci_high"]


def test_headline_without_a_melanoma_class_leaves_sensitivity_out() -> None:
    classes = ClassIndex(("benign", "malignant"))
    records = [Record(path=f"{i}.jpg", label=i % 2, group=str(i)) for i in range(20)]
    probs = np.tile([[0.7, 0.3], [0.2, 0.8]], (10, 1))
    md = StandardEvaluator(n_boot=0).evaluate(probs, records, classes).to_markdown()
    headline = md[md.index("## Headline") : md.index("## Evaluation")]
    assert "Sensitivity" not in headline and "Images evaluated (n) | 20" in headline


def test_a_model_that_predicts_one_class_is_warned_about(tmp_path: Path) -> None:
    records = _records()
    rep = StandardEvaluator(n_boot=20).evaluate(_collapsed(records, share=0.96), records, CLASSES)
    rep = rep.with_context(config={"model": "lfn"})
    assert len(rep.warnings) == 1
    warning = rep.warnings[0]
    assert "predicts nv for 96%" in warning and "collapsed" in warning
    assert f"WARNING: {warning}" in rep.summary_line()
    rep.write(tmp_path, plots=False)
    md = (tmp_path / "report.md").read_text()
    assert md.index(f"**Warning:** {warning}") < md.index("## Configuration")
    assert json.loads((tmp_path / "report.json").read_text())["warnings"] == [warning]
    assert Report.read(tmp_path).warnings == rep.warnings


def test_no_single_class_warning_for_a_working_or_a_one_class_set() -> None:
    records = _records()
    fine = StandardEvaluator(n_boot=0).evaluate(_probabilities(records), records, CLASSES)
    assert fine.warnings == () and "WARNING" not in fine.summary_line()
    assert "Warning" not in fine.to_markdown()
    lopsided = StandardEvaluator(n_boot=0).evaluate(
        _collapsed(records, share=0.90), records, CLASSES
    )
    assert lopsided.warnings == ()  # below the 95% share
    nv_only = [r for r in records if r.label == CLASSES.index("nv")]
    one_class = StandardEvaluator(n_boot=0).evaluate(_collapsed(nv_only), nv_only, CLASSES)
    assert one_class.warnings == ()  # the labels have one class: nothing to collapse from


def test_evaluator_maps_record_labels_onto_the_model_classes_by_name() -> None:
    three = ClassIndex(("BCC", "mel", "nv"))  # another order and case than the model's
    records = [Record(path=f"{i}.jpg", label=i % 3, group=str(i)) for i in range(30)]
    model_labels = [CLASSES.index(three.name(r.label).lower()) for r in records]
    probs = np.full((30, 7), 0.01)
    probs[np.arange(30), model_labels] = 0.94
    evaluator = StandardEvaluator(n_boot=0)
    rep = evaluator.evaluate(probs, records, CLASSES, record_classes=three)
    support = dict(zip(rep.class_names, rep.metrics.support, strict=True))
    assert support == {"akiec": 0, "bcc": 10, "bkl": 0, "df": 0, "mel": 10, "nv": 10, "vasc": 0}
    assert rep.accuracy == 1.0
    loaded = LoadedDataset(records=tuple(records), classes=three, source="three/")
    assert evaluator.evaluate(probs, loaded, CLASSES).to_json() == rep.to_json()
    unknown = LoadedDataset(
        records=(*records, Record(path="x.jpg", label=3, group="x")),
        classes=ClassIndex(("BCC", "mel", "nv", "lentigo")),
        source="four/",
    )
    with pytest.raises(DataError, match=r"does not know: lentigo \(1 image\)") as caught:
        evaluator.evaluate(np.vstack([probs, probs[:1]]), unknown, CLASSES)
    assert caught.value.where == "four/"
    with pytest.raises(DataError, match="7 classes"):
        narrow = probs[:, :3] / probs[:, :3].sum(axis=1, keepdims=True)
        evaluator.evaluate(narrow, loaded, CLASSES)  # not the model's probabilities


def test_comparison_finds_other_test_sets_class_lists_and_settings(report: Report) -> None:
    from dermkit.evaluation import comparison

    records = _records()
    fewer = records[:-10]
    same = StandardEvaluator(n_boot=0).evaluate(_probabilities(records, seed=2), records, CLASSES)
    other = StandardEvaluator(n_boot=0).evaluate(_probabilities(fewer), fewer, CLASSES)
    key = comparison.DIGEST_KEY
    assert report.evaluation[key] == same.evaluation[key] != other.evaluation[key]
    reports = {"a": report, "b": same, "c": other}
    sets = {name: r.evaluation[key] for name, r in reports.items()}
    (warning,) = comparison.comparison_warnings(reports, sets)
    assert "different test sets" in warning and f"c (n={len(fewer)})" in warning
    assert comparison.comparison_warnings({"a": report, "b": same}, sets) == []

    two = ClassIndex(("benign", "malignant"))
    binary_records = [Record(path=f"{i}.jpg", label=i % 2, group=str(i)) for i in range(20)]
    binary = StandardEvaluator(n_boot=0).evaluate(
        np.tile([[0.7, 0.3], [0.2, 0.8]], (10, 1)), binary_records, two
    )
    warnings = comparison.comparison_warnings(
        {"a": report, "d": binary}, {"a": sets["a"], "d": None}
    )
    assert any("different class lists" in w and "benign, malignant" in w for w in warnings)
    assert any("cannot tell which images d was scored on" in w for w in warnings)

    settings = {
        "a": comparison.run_settings(report),
        "b": comparison.run_settings(
            same.with_context(config={"model": {"name": "lfn", "input_size": 224}, "seed": 0})
        ),
    }
    differences = comparison.setting_differences(settings)
    assert differences == [("model.input_size", {"a": 300, "b": 224})]
    table = comparison.render_differences(differences)
    assert "| model.input_size | 300 | 224 |" in table
    assert comparison.setting_differences({"a": {"x": 1}, "b": {}}) == [
        ("x", {"a": 1, "b": comparison.MISSING})
    ]


def test_align_records_ignores_empty_unknown_classes_and_checks_labels() -> None:
    from dermkit.evaluation import align_records

    folder = ClassIndex(("Mel", "NV", "lentigo"))  # lentigo: a folder without images
    records = [Record(path=f"{i}.jpg", label=i % 2, group=str(i)) for i in range(4)]
    aligned = align_records(records, folder, CLASSES)
    assert [r.label for r in aligned.records] == [4, 5, 4, 5]
    assert aligned.empty == ("lentigo",)
    assert align_records(records, CLASSES, CLASSES).records == tuple(records)
    with pytest.raises(DataError, match="label 3 is out of range for the 3 classes"):
        align_records([Record(path="x.jpg", label=3, group="x")], folder, CLASSES)
