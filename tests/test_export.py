"""``dermkit export``: exported models predict like the run's Keras model.

One tiny LFN run (64x64, one epoch on synthetic class folders) is trained for the
module. Each format is exported, opened back through :func:`open_exported` and
compared with the Keras model on images the run did not train on: probabilities
within a tolerance per format, and the same top class wherever the Keras model's
choice is not a near tie (a margin larger than twice the tolerance). With
``DERMKIT_HAM10000`` set, a small run on real HAM10000 images checks the top-1
agreement of float16 and int8 exports on its test part.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import TINY_RUN_SIZE, train_tiny_run
from dermkit.errors import ConfigError, DataError

SIZE = TINY_RUN_SIZE
TOLERANCE = {None: 1e-5, "float16": 1e-3, "int8": 0.02}
"""Largest probability difference allowed against Keras, by quantisation (seen: about
6e-8, 2e-5 and 2e-3 for this run, whose one epoch leaves margins of 0.01-0.02)."""
AGREEMENT = {None: 1.0, "float16": 1.0, "int8": 0.95}
"""Smallest top-1 agreement with Keras over all images, by quantisation."""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("export-run"), n_boot=20)


@pytest.fixture(scope="module")
def loaded(tiny_run: Path) -> Any:
    from dermkit.runs import load_run

    return load_run(tiny_run)


@pytest.fixture(scope="module")
def held_out(loaded: Any, tiny_run: Path) -> np.ndarray:
    """Every synthetic image of the run's data, in all eight flips and quarter turns:
    about 220 inputs the model sees as it would in use, not only the 14 held out."""
    from dermkit.evaluation.tta import TRANSFORMS

    paths = sorted((tiny_run.parent / "data").rglob("*.png"))
    images = loaded.images(paths).astype(np.float32)
    return np.concatenate([transform(images) for transform in TRANSFORMS.values()])


def assert_agrees(
    keras_model: Any, exported: Any, images: np.ndarray, quantize: str | None
) -> None:
    """Probabilities within the tolerance; the same top class on (nearly) every image,
    and on every image whose Keras margin between the two top classes exceeds twice
    the tolerance (no rounding that small could flip it)."""
    tolerance = TOLERANCE[quantize]
    expected = np.asarray(keras_model.predict(images, verbose=0), dtype=np.float64)
    got = exported.predict(images, batch_size=5)  # batches of another size than Keras'
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=tolerance)
    same = got.argmax(axis=1) == expected.argmax(axis=1)
    assert same.mean() >= AGREEMENT[quantize], same.mean()
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * tolerance
    assert same[clear].all()


@pytest.mark.parametrize("quantize", [None, "float16", "int8"])
def test_tflite_predicts_like_keras(
    tmp_path: Path, loaded: Any, held_out: np.ndarray, quantize: str | None
) -> None:
    from dermkit.export import export_run, open_exported, sidecar_path

    out = tmp_path / "lfn.tflite"
    result = export_run(loaded, "tflite", quantize=quantize, out=out)  # type: ignore[arg-type]
    assert result.path == out and out.is_file() and sidecar_path(out).is_file()
    assert result.check is not None and result.check.images > 0
    exported = open_exported(out)
    assert exported.kind == "tflite"
    assert exported.info.classes == loaded.classes.names
    assert exported.info.image == loaded.settings.to_config()
    assert exported.info.quantize == quantize
    assert_agrees(loaded.model, exported, held_out, quantize)
    if quantize == "int8":
        train = len(loaded_part(loaded, "train"))
        assert result.calibration_images == min(200, train)


def loaded_part(loaded: Any, part: str) -> tuple[Any, ...]:
    from dermkit.export.calibration import run_part

    return run_part(loaded.run_dir, part)


def test_int8_with_percentile_ranges_predicts_like_keras(
    tmp_path: Path, loaded: Any, held_out: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.export import activation_ranges, export_run, open_exported

    used: list[dict[int, tuple[float, float]]] = []
    original = activation_ranges.with_ranges

    def spy(content: bytes, ranges: Any) -> bytes:
        used.append(dict(ranges))
        return original(content, ranges)

    monkeypatch.setattr(activation_ranges, "with_ranges", spy)
    out = tmp_path / "p.tflite"
    export_run(loaded, "tflite", quantize="int8", out=out, activation_percentile=99.9)
    assert len(used) == 1 and used[0]  # the ranges were replaced before quantising
    assert_agrees(loaded.model, open_exported(out), held_out, "int8")
    with pytest.raises(ConfigError, match="int8 only"):
        export_run(loaded, "tflite", quantize="float16", activation_percentile=99.9)
    with pytest.raises(ConfigError, match="activation percentile"):
        export_run(loaded, "tflite", quantize="int8", activation_percentile=40.0)


def test_int8_calibrates_on_the_training_images_only(
    tmp_path: Path, loaded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.export import calibration, export_run

    seen: list[Any] = []
    original = calibration.load_images

    def spy(records: Any, loader: Any, *, wanted: int) -> Any:
        images, unreadable = original(records, loader, wanted=wanted)
        seen.append(list(records)[: len(images) + unreadable])
        return images, unreadable

    monkeypatch.setattr(calibration, "load_images", spy)
    export_run(loaded, "tflite", quantize="int8", out=tmp_path / "q.tflite", check_images=0)
    train = {str(r.path) for r in loaded_part(loaded, "train")}
    assert len(seen) == 1 and seen[0]
    assert {str(r.path) for r in seen[0]} <= train


def test_int8_converts_a_bias_corrected_copy_and_leaves_the_run_model_alone(
    tmp_path: Path, loaded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.export import bias_correction, export_run

    calls: list[int] = []
    original = bias_correction.corrected_copy

    def spy(model: Any, images: np.ndarray) -> Any:
        assert model is loaded.model
        calls.append(len(images))
        return original(model, images)

    monkeypatch.setattr(bias_correction, "corrected_copy", spy)
    before = [np.array(w) for w in loaded.model.get_weights()]
    result = export_run(
        loaded, "tflite", quantize="int8", out=tmp_path / "q.tflite", check_images=0
    )
    assert calls == [result.calibration_images]
    assert result.corrected_layers > 0  # LFN: every Conv2D via its BN, and the Dense layers
    for old, new in zip(before, loaded.model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    float16 = export_run(loaded, "tflite", quantize="float16", out=tmp_path / "h.tflite")
    assert calls == [result.calibration_images] and float16.corrected_layers == 0


def test_saved_model_predicts_like_keras(tmp_path: Path, loaded: Any, held_out: np.ndarray) -> None:
    from dermkit.export import export_run, open_exported

    out = tmp_path / "sm"
    export_run(loaded, "saved_model", out=out, check_images=0)
    exported = open_exported(out)
    assert exported.kind == "saved_model"
    assert_agrees(loaded.model, exported, held_out, None)
    # exporting again replaces the folder whole
    export_run(loaded, "saved_model", out=out, check_images=0)
    assert open_exported(out).info.classes == loaded.classes.names


def test_the_description_travels_inside_the_file(tmp_path: Path, loaded: Any) -> None:
    from dermkit.export import export_run, open_exported, sidecar_path

    tflite = export_run(loaded, "tflite", out=tmp_path / "a.tflite", check_images=0).path
    saved = export_run(loaded, "saved_model", out=tmp_path / "b", check_images=0).path
    for path in (tflite, saved):
        sidecar_path(path).unlink()
        assert open_exported(path).info.classes == loaded.classes.names
    # a file without either description is refused with a hint
    bare = tmp_path / "bare.tflite"
    import tensorflow as tf

    shutil.copy(tflite, bare)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    bare.write_bytes(converter.convert())
    with pytest.raises(ConfigError, match="no class names") as caught:
        open_exported(bare)
    assert "bare.tflite.dermkit.json" in (caught.value.hint or "")
    # the sidecar alone also works, and can be passed instead of the model
    (tmp_path / "bare.tflite.dermkit.json").write_text(
        open_exported(tflite).info.dumps(), encoding="utf-8"
    )
    assert open_exported(tmp_path / "bare.tflite.dermkit.json").kind == "tflite"


def test_a_description_for_another_model_is_refused(tmp_path: Path, loaded: Any) -> None:
    import attrs

    from dermkit.export import export_run, open_exported, sidecar_path
    from dermkit.export.formats import embed_tflite_info

    path = export_run(loaded, "tflite", out=tmp_path / "m.tflite", check_images=0).path
    info = open_exported(path).info
    wrong = attrs.evolve(info, classes=(*info.classes, "extra"))
    path.write_bytes(embed_tflite_info(path.read_bytes(), wrong.dumps()))
    sidecar_path(path).write_text(wrong.dumps(), encoding="utf-8")
    with pytest.raises(ConfigError, match="outputs for 5 classes"):
        open_exported(path)


def test_onnx_predicts_like_keras_or_says_what_to_install(
    tmp_path: Path, loaded: Any, held_out: np.ndarray
) -> None:
    from dermkit.export import export_run, open_exported

    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="cannot import") as caught:
            export_run(loaded, "onnx", out=tmp_path / "m.onnx")
        assert "dermkit[onnx]" in (caught.value.hint or "")
        pytest.skip("tf2onnx/onnxruntime not installed: checked the error instead")
    result = export_run(loaded, "onnx", out=tmp_path / "m.onnx")
    assert result.check is not None and result.check.top1_agreement == 1.0
    exported = open_exported(result.path)
    assert exported.kind == "onnx"
    assert_agrees(loaded.model, exported, held_out, None)


def test_missing_onnx_converter_is_a_clear_error(
    tmp_path: Path, loaded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.export import export_run

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="tf2onnx") as caught:
        export_run(loaded, "onnx", out=tmp_path / "m.onnx")
    assert "pip install" in (caught.value.hint or "")
    assert not (tmp_path / "m.onnx").exists()


def test_int8_without_the_training_images_is_a_data_error(tmp_path: Path, tiny_run: Path) -> None:
    from dermkit.export import export_run

    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    (copy / "split.csv").unlink()
    with pytest.raises(DataError, match=r"split\.csv"):
        export_run(copy, "tflite", quantize="int8", out=tmp_path / "q.tflite")
    # float16 needs no images: it exports, and skips the check it cannot make
    result = export_run(copy, "tflite", quantize="float16", out=tmp_path / "h.tflite")
    assert result.path.is_file() and result.check is None


# --------------------------------------------------------------------------- CLI


def export_cli(*argv: str) -> int:
    """``dermkit export`` through ``main`` once main.py registers it, else its own parser."""
    from dermkit.cli import export_cmd, main

    if export_cmd.__name__ in main.COMMAND_MODULES:
        return main.main(["export", *argv])
    parser = argparse.ArgumentParser(prog="dermkit")
    export_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    from dermkit.errors import DermkitError

    try:
        return int(args.handler(args))
    except DermkitError as error:
        print(f"dermkit: error: {error.render()}", file=sys.stderr)
        return 2


def test_cli_exports_and_reports_the_agreement(
    tmp_path: Path, tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.tflite"
    code = export_cli(
        str(tiny_run), "--format", "tflite", "--quantize", "float16", "--out", str(out)
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"wrote {out}" in printed and "cli.tflite.dermkit.json" in printed
    assert "top-1 agreement with the Keras model" in printed
    assert out.is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--format", "saved_model", "--quantize", "int8"],
            "--quantize applies to --format tflite",
        ),
        (["--format", "tflite", "--check-images", "-1"], "--check-images"),
        (["--format", "tflite", "--quantize", "int8", "--calibration-images", "0"], "at least 1"),
        (["--format", "tflite", "--int8-classifier"], "applies to --quantize int8 only"),
    ],
)
def test_cli_refuses_bad_choices(
    tmp_path: Path,
    tiny_run: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code = export_cli(str(tiny_run), *argv, "--out", str(tmp_path / "x"))
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export_cli(str(tmp_path), "--format", "tflite") == 2
    assert "not a dermkit run folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- predict / evaluate


@pytest.fixture(scope="module")
def exported_int8(tiny_run: Path, loaded: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.export import export_run

    out = tmp_path_factory.mktemp("exports") / "lfn-int8.tflite"
    return export_run(loaded, "tflite", quantize="int8", out=out, check_images=0).path


def weight_types(path: Path, kind: str) -> list[int]:
    """The TFLite tensor type of each ``kind`` operator's weights, in graph order."""
    from tensorflow.lite.tools import flatbuffer_utils

    from dermkit.export.float_classifier import op_name

    model = flatbuffer_utils.read_model(str(path))
    graph = model.subgraphs[0]
    return [
        int(graph.tensors[int(op.inputs[1])].type)
        for op in graph.operators
        if op_name(model.operatorCodes[op.opcodeIndex]) == kind
    ]


def test_int8_keeps_the_classifier_float_unless_asked(
    tmp_path: Path, loaded: Any, exported_int8: Path, held_out: np.ndarray
) -> None:
    """The default int8 export has every convolution in int8 and only the last dense
    layer float, so its probabilities are not on int8's 1/256 grid; with
    ``float_classifier=False`` every dense layer is int8 and they are."""
    from tensorflow.lite.python import schema_py_generated as schema

    from dermkit.export import export_run, open_exported

    int8, float32 = schema.TensorType.INT8, schema.TensorType.FLOAT32
    assert set(weight_types(exported_int8, "CONV_2D")) == {int8}
    dense = weight_types(exported_int8, "FULLY_CONNECTED")
    assert dense[-1] == float32 and set(dense[:-1]) <= {int8}
    probabilities = open_exported(exported_int8).predict(held_out[:64], batch_size=32)
    assert not np.allclose(probabilities * 256, np.round(probabilities * 256), atol=1e-3)

    out = tmp_path / "all-int8.tflite"
    export_run(loaded, "tflite", quantize="int8", out=out, check_images=0, float_classifier=False)
    assert set(weight_types(out, "FULLY_CONNECTED")) == {int8}
    probabilities = open_exported(out).predict(held_out[:64], batch_size=32)
    np.testing.assert_allclose(probabilities * 256, np.round(probabilities * 256), atol=1e-3)
    assert_agrees(loaded.model, open_exported(out), held_out, "int8")


def test_load_run_takes_an_exported_model(tiny_run: Path, loaded: Any, exported_int8: Path) -> None:
    from dermkit.export import ExportedModel
    from dermkit.runs import load_run

    run = load_run(exported_int8)
    assert isinstance(run.model, ExportedModel)
    assert run.exported == exported_int8 and run.name == "lfn-int8.tflite"
    assert run.run_dir == tiny_run  # the source run is here: its split.csv is found
    assert run.classes == loaded.classes and run.settings == loaded.settings
    assert run.temperature == loaded.temperature
    assert run.config == loaded.config
    paths = sorted((tiny_run.parent / "data").rglob("*.png"))[:6]
    for options in ({}, {"tta": True, "calibrated": True}):
        np.testing.assert_allclose(
            run.predict(paths, **options), loaded.predict(paths, **options), atol=0.02
        )
    with pytest.raises(ConfigError, match="Keras model") as caught:
        run.keras_model()
    assert str(tiny_run) in (caught.value.hint or "")


def test_predict_cli_takes_an_exported_model(
    tiny_run: Path, exported_int8: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dermkit.cli.main import main

    images = sorted((tiny_run.parent / "data").rglob("*.png"))[:4]
    argv = [*map(str, images), "--json"]
    assert main(["predict", str(tiny_run), *argv]) == 0
    from_run = json.loads(capsys.readouterr().out)
    assert main(["predict", str(exported_int8), *argv]) == 0
    from_export = json.loads(capsys.readouterr().out)
    assert [item["image"] for item in from_export] == [item["image"] for item in from_run]
    for a, b in zip(from_run, from_export, strict=True):
        assert a["probabilities"].keys() == b["probabilities"].keys()
        for name, p in a["probabilities"].items():
            assert abs(p - b["probabilities"][name]) < 0.02
    # Grad-CAM needs the Keras model: refused before any work, pointing at the run
    code = main(["predict", str(exported_int8), str(images[0]), "--gradcam", "cams"])
    err = capsys.readouterr().err
    assert code == 2 and "exported model" in err and str(tiny_run) in err
    assert not Path("cams").exists()


def test_evaluate_cli_takes_an_exported_model(
    tiny_run: Path, exported_int8: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dermkit.cli.main import main

    data = str(tiny_run.parent / "data")
    code = main(["evaluate", str(exported_int8), "--data", data, "--calibrated"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "were used by this run" in captured.err  # the source run's split.csv is read
    report_dir = exported_int8.parent / "lfn-int8.tflite-eval-data-calibrated"
    assert str(report_dir / "report.md") in captured.out
    report = json.loads((report_dir / "report.json").read_text())
    assert report["class_names"] == list(open_exported_classes(exported_int8))
    assert "lfn-int8.tflite" in (report_dir / "report.md").read_text()
    assert not (tiny_run / "eval-data-calibrated").exists()  # the run's own reports untouched


def open_exported_classes(path: Path) -> tuple[str, ...]:
    from dermkit.export import open_exported

    return open_exported(path).info.classes


def test_an_export_moved_away_from_its_run_still_predicts(
    tmp_path: Path, tiny_run: Path, exported_int8: Path
) -> None:
    import attrs

    from dermkit.export import open_exported
    from dermkit.export.formats import embed_tflite_info
    from dermkit.runs import load_run

    moved = tmp_path / "elsewhere" / "m.tflite"
    moved.parent.mkdir()
    info = attrs.evolve(open_exported(exported_int8).info, source_run=str(tmp_path / "gone"))
    moved.write_bytes(embed_tflite_info(exported_int8.read_bytes(), info.dumps()))
    run = load_run(moved)  # no sidecar: the description inside the file is enough
    assert run.run_dir == moved.parent  # the source run is not here
    image = sorted((tiny_run.parent / "data").rglob("*.png"))[0]
    assert run.predict([image]).shape == (1, len(run.classes))


# --------------------------------------------------------------------------- real images


@pytest.mark.ham10000
def test_quantised_tflite_agrees_with_keras_on_ham10000(tmp_path: Path) -> None:
    root = os.environ.get("DERMKIT_HAM10000")
    if not root:
        pytest.skip("DERMKIT_HAM10000 is not set (folder of the HAM10000 images and metadata)")
    from dermkit.data.ham10000 import HAM10000
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.evaluation.evaluator import StandardEvaluator
    from dermkit.experiment import Experiment
    from dermkit.export import agreement, export_run, open_exported
    from dermkit.export.calibration import run_part
    from dermkit.models.lfn import LFN
    from dermkit.runs import load_run
    from dermkit.training.config import Training

    Experiment(
        data=HAM10000(root, verify=False),
        split=GroupedStratifiedSplit(val=0.2, test=0.3, seed=0),
        model=LFN(dense=(32,)),
        training=Training(epochs=1, batch_size=16, verbose=0),
        evaluator=StandardEvaluator(n_boot=20),
        image_size=SIZE,
        limit=240,
        cache_dir="",
    ).run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    test_images = run.images(run_part(run.run_dir, "test")).astype(np.float32)
    assert len(test_images) >= 40
    for quantize, needed in (("float16", 0.99), ("int8", 0.90)):
        path = export_run(run, "tflite", quantize=quantize, out=tmp_path / f"{quantize}.tflite")
        found = agreement(run.model, open_exported(path.path), test_images)
        assert found.top1_agreement >= needed, (quantize, found)
