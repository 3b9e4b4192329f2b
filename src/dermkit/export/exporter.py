"""Export a finished run's best model, and check the export against the Keras model.

::

    from dermkit.export import export_run, open_exported

    result = export_run("runs/lfn", "tflite", quantize="int8")
    model = open_exported(result.path)     # predicts like the run's Keras model
    result.check                           # top-1 agreement on the run's validation images
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from dermkit import __version__, atomic
from dermkit.errors import ConfigError, DataError
from dermkit.export import activation_ranges, bias_correction, calibration, formats
from dermkit.export.exported import ExportedModel, open_exported
from dermkit.export.info import FORMATS, QUANTIZATIONS, ExportInfo, Format, Quantize, sidecar_path

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.runs import LoadedRun

EXPORT_FOLDER = "export"
DEFAULT_CHECK_IMAGES = 64


@attrs.frozen
class Agreement:
    """How closely an export predicts like the Keras model on the same images."""

    images: int
    top1_agreement: float
    max_abs_difference: float

    def line(self) -> str:
        return (
            f"top-1 agreement with the Keras model {self.top1_agreement:.1%} on "
            f"{self.images} image(s), largest probability difference {self.max_abs_difference:.2g}"
        )


@attrs.frozen
class ExportResult:
    path: Path
    info: ExportInfo
    calibration_images: int = 0
    corrected_layers: int = 0
    """int8: layers whose weights were rounded (each rounding chosen to keep the layer's
    output error small) and bias-corrected before conversion."""
    check: Agreement | None = None


def default_output(run_dir: Path, format: str, quantize: str | None) -> Path:
    """``RUN/export/model[-float16|-int8].tflite``, ``.../saved_model`` or ``.../model.onnx``."""
    folder = run_dir / EXPORT_FOLDER
    if format == "saved_model":
        return folder / "saved_model"
    stem = "model" if quantize is None else f"model-{quantize}"
    return folder / f"{stem}.{format}"


def _check_choice(format: str, quantize: str | None) -> None:
    if format not in FORMATS:
        raise ConfigError(
            f"unknown export format {format!r}", hint=f"use one of {', '.join(FORMATS)}"
        )
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(
            f"unknown quantization {quantize!r}", hint=f"use one of {', '.join(QUANTIZATIONS)}"
        )
    if quantize is not None and format != "tflite":
        raise ConfigError(
            f"--quantize applies to --format tflite, not {format}",
            hint="export the float model in this format, or choose --format tflite",
        )


def _info(run: LoadedRun, format: Format, quantize: Quantize | None) -> ExportInfo:
    training = run.config.get("training") or {}
    return ExportInfo(
        format=format,
        quantize=quantize,
        classes=tuple(run.classes.names),
        image=run.settings.to_config(),
        config=dict(run.config),
        temperature=None if run.temperature is None else float(run.temperature.temperature),
        batch_size=int(training.get("batch_size") or 32),
        source_run=str(Path(run.run_dir).resolve()),
        dermkit_version=__version__,
    )


def export_run(
    run: LoadedRun | str | os.PathLike[str],
    format: Format,
    *,
    quantize: Quantize | None = None,
    out: str | os.PathLike[str] | None = None,
    calibration_images: int = calibration.DEFAULT_COUNT,
    check_images: int = DEFAULT_CHECK_IMAGES,
    seed: int = 0,
    activation_percentile: float | None = None,
    float_classifier: bool = True,
) -> ExportResult:
    """Write the run's best model as ``format`` with its description inside and beside it.

    ``int8`` calibrates on up to ``calibration_images`` of the run's training images,
    after rounding the weights to int8 (to minimise each layer's output error) with bias
    correction, both measured on the first of them
    (:mod:`dermkit.export.rounding`, :mod:`dermkit.export.bias_correction`).
    With ``check_images`` above 0 the export is then loaded back and compared with the
    Keras model on that many of the run's validation images (training images if it has
    no validation part); the check is skipped when those images are not readable here.
    ``activation_percentile`` (int8 only) sets each activation's range to that
    percentile of its calibration values instead of their min and max
    (:mod:`dermkit.export.activation_ranges`). ``float_classifier`` (int8 only) keeps
    the last dense layer and its softmax float, so that probabilities within 1/256 of
    each other do not tie (:mod:`dermkit.export.float_classifier`).
    """
    from dermkit.runs import load_run

    _check_choice(format, quantize)
    loaded = run if not isinstance(run, str | os.PathLike) else load_run(run)
    if loaded.exported is not None:
        raise ConfigError(
            "this is an exported model already",
            where=str(loaded.run_dir),
            hint="export from the run folder that `dermkit train` wrote",
        )
    activation_ranges.check_percentile(activation_percentile)
    if activation_percentile is not None and quantize != "int8":
        raise ConfigError(
            "an activation percentile applies to --quantize int8 only",
            where="activation_percentile",
            hint="add --quantize int8, or leave the percentile out",
        )
    if not float_classifier and quantize != "int8":
        raise ConfigError(
            "quantising the classifier applies to --quantize int8 only",
            where="float_classifier",
            hint="add --quantize int8, or leave --int8-classifier out",
        )
    if calibration_images < 1:
        raise ConfigError(f"calibration images must be at least 1, got {calibration_images}")
    run_dir = Path(loaded.run_dir)
    target = Path(out) if out is not None else default_output(run_dir, format, quantize)
    info = _info(loaded, format, quantize)
    text = info.dumps()
    loader = loaded.loader()
    calibrated = corrected = 0
    if format == "saved_model":
        formats.write_saved_model(loaded.model, target, text)
    elif format == "onnx":
        formats.write_onnx(loaded.model, target, loaded.settings.size, text)
    else:
        representative = None
        model = loaded.model
        if quantize == "int8":
            train = calibration.run_part(run_dir, "train")
            images, _ = calibration.load_images(
                calibration.sample(train, len(train), seed), loader, wanted=calibration_images
            )
            calibrated = len(images)
            representative = functools.partial(calibration.representative_dataset, images)
            model, corrected = bias_correction.corrected_copy(model, images)

        staging = Path(tempfile.mkdtemp(prefix=f".export{atomic.TEMP_MARKER}"))
        try:
            saved = staging / "saved_model"
            model.export(str(saved), format="tf_saved_model", verbose=False)
            content = formats.tflite_bytes(
                saved, quantize, representative, activation_percentile, float_classifier
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        formats.write_tflite(formats.embed_tflite_info(content, text), target)
    atomic.write_text(sidecar_path(target), text)
    check = None
    if check_images > 0:
        check = _check(loaded, target, check_images, seed)
    return ExportResult(
        path=target,
        info=info,
        calibration_images=calibrated,
        corrected_layers=corrected,
        check=check,
    )


def _check(run: LoadedRun, target: Path, count: int, seed: int) -> Agreement | None:
    """Compare the export with the Keras model on the run's validation images."""
    try:
        records = calibration.run_part(Path(run.run_dir), "val") or calibration.run_part(
            Path(run.run_dir), "train"
        )
        images, _ = calibration.load_images(
            calibration.sample(records, len(records), seed + 1), run.loader(), wanted=count
        )
    except DataError:
        return None
    exported = open_exported(target)
    return agreement(run.model, exported, images)


def agreement(reference: object, candidate: ExportedModel, images: np.ndarray) -> Agreement:
    """Top-1 agreement and largest probability difference of two models on ``images``."""
    batch = images.astype(np.float32)
    expected = np.asarray(reference.predict(batch, batch_size=32, verbose=0))  # type: ignore[attr-defined]
    got = candidate.predict(batch, batch_size=32)
    return Agreement(
        images=len(batch),
        top1_agreement=float(np.mean(expected.argmax(axis=1) == got.argmax(axis=1))),
        max_abs_difference=float(np.max(np.abs(expected - got))),
    )
