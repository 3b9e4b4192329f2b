"""A finished run folder, loaded back for prediction and evaluation.

``dermkit train`` leaves everything a later prediction needs in the run folder: the
best model (``model.keras``, loaded in Keras' safe mode, so no pickled code runs), the
class index (``classes.json``), the image settings the model was trained with
(``config.json``) and a temperature fitted on the validation part
(``temperature.json``). :func:`load_run` reads them together, so that ``evaluate``,
``predict`` and notebooks resize images exactly as training did and name the output
columns correctly::

    run = load_run("runs/lfn")
    probabilities = run.predict(["lesion.jpg"], tta=True, calibrated=True)
    dict(zip(run.classes, probabilities[0]))

    report = run.evaluate("data/isic2018-test")   # classes matched by name
    print(report.summary_line())

:func:`load_run` also takes a model written by ``dermkit export`` (a ``.tflite`` or
``.onnx`` file, a SavedModel folder): its class names, image settings, temperature
and run configuration travel with it, and its
:class:`~dermkit.export.ExportedModel` predicts through the same calls as the Keras
model, so everything below works on either kind of *predictor*. Only Grad-CAM needs
the Keras model itself (:meth:`LoadedRun.keras_model`).

TensorFlow is imported only when the model is loaded or used.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit.core import ClassIndex, Record
from dermkit.errors import ConfigError, DataError, DermkitError
from dermkit.run_folder import CONFIG_FILE, read_json

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.core import Dataset, LoadedDataset
    from dermkit.data.images import ImageSettings
    from dermkit.data.loader import ImageLoader
    from dermkit.evaluation.calibration import TemperatureScaling
    from dermkit.evaluation.report import Report
    from dermkit.features.predict import StoredTail

CLASSES_FILE = "classes.json"
MODEL_FILE = "model.keras"
TEMPERATURE_FILE = "temperature.json"

PathOrRecord = Record | str | os.PathLike[str]


def _require(run_dir: Path, name: str, message: str, hint: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise ConfigError(f"no {name}: {message}", where=str(run_dir), hint=hint)
    return path


def _image_settings(config: Mapping[str, Any], run_dir: Path) -> ImageSettings:
    """The run's image settings; an unset size is the model factory's default input size."""
    from dermkit.config import build_component
    from dermkit.data.images import ImageSettings

    image = config.get("image") or {}
    if not isinstance(image, Mapping):
        raise ConfigError("config.json: 'image' is not an object", where=str(run_dir))
    size = image.get("size")
    if size is None:
        if "model" not in config:
            raise ConfigError(
                "config.json names neither an image size nor a model",
                where=str(run_dir / CONFIG_FILE),
                hint="is this a dermkit run folder?",
            )
        size = int(build_component("models", config["model"]).default_input_size)
    options = {k: v for k, v in image.items() if k != "size" and v is not None}
    try:
        return ImageSettings.from_config({"size": int(size), **options})
    except DermkitError as error:
        raise ConfigError(
            error.message, where=str(run_dir / CONFIG_FILE), hint=error.hint
        ) from None


def _model_input_size(model: Any) -> tuple[int | None, int | None]:
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):  # pragma: no cover - every dermkit model has one
        return None, None
    if len(shape) != 4:
        return None, None
    return shape[1], shape[2]


def _load_model(path: Path, *, trust_code: bool = False) -> Any:
    """The model, in Keras safe mode, with dermkit's custom layers registered first."""
    from dermkit.models import load_model

    if not zipfile.is_zipfile(path):
        raise ConfigError(
            "model.keras is not a Keras archive (the file is damaged or cut short)",
            where=str(path),
            hint="copy the run folder again from where it was trained",
        )
    return load_model(path, compile=False, trust_code=trust_code)


@attrs.frozen
class LoadedRun:
    """A finished run, ready to predict: what :func:`load_run` returns.

    ``model`` is the best epoch's Keras model, or for an exported model (``exported``
    is its path) an :class:`~dermkit.export.ExportedModel` with the same prediction
    calls; ``run_dir`` is then the run it was exported from if that folder is here,
    else the folder that holds the export. ``temperature`` is ``None`` when the run
    had no validation part to fit it on.
    """

    run_dir: Path
    config: Mapping[str, Any]
    classes: ClassIndex
    settings: ImageSettings
    model: Any
    temperature: TemperatureScaling | None = None
    exported: Path | None = None
    _tails: dict[tuple[Any, str], StoredTail | None] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )
    """:func:`~dermkit.features.predict.stored_tail` per image settings and cache folder."""

    @property
    def name(self) -> str:
        if self.exported is not None:
            return self.exported.name
        return self.run_dir.resolve().name or str(self.run_dir)

    @property
    def run_dirs(self) -> tuple[Path, ...]:
        """``(run_dir,)``: the folders whose splits say which images the model saw."""
        return (self.run_dir,)

    @property
    def model_path(self) -> Path:
        """The file (or SavedModel folder) the model was loaded from."""
        return self.exported if self.exported is not None else self.run_dir / MODEL_FILE

    def keras_model(self) -> Any:
        """The Keras model, for what an exported model cannot do (Grad-CAM)."""
        if self.exported is not None:
            raise ConfigError(
                "this needs the run's Keras model, and this is an exported model",
                where=str(self.exported),
                hint=f"pass the run folder instead (it was exported from {self.run_dir})",
            )
        return self.model

    def loader(self, *, cache: bool = True) -> ImageLoader:
        """An image loader that resizes as training did, with the decoded-image cache.

        The cache is the run's own ``cache_dir`` when it named one, else the default
        one (``$DERMKIT_CACHE``); ``cache=False`` turns it off.
        """
        from dermkit.data.cache import ImageCache
        from dermkit.data.loader import ImageLoader

        if not cache:
            return ImageLoader(self.settings, None)
        # an export may be used far from where it was trained: not its cache folder
        folder = self.config.get("cache_dir") if self.exported is None else None
        return ImageLoader(self.settings, ImageCache(folder or None))

    def scaler(self) -> TemperatureScaling:
        """The fitted temperature, or a :class:`ConfigError` saying why there is none."""
        if self.temperature is None:
            raise ConfigError(
                f"no {TEMPERATURE_FILE}: this run has no fitted temperature",
                where=str(self.run_dir),
                hint="it is fitted on the validation part when training ends; "
                "drop --calibrated, or train with a validation part",
            )
        return self.temperature

    def predict(
        self,
        items: Sequence[PathOrRecord],
        *,
        tta: bool | str = False,
        calibrated: bool = False,
        batch_size: int = 32,
        loader: ImageLoader | None = None,
        progress: bool | None = None,
        feature_cache: bool = True,
    ) -> np.ndarray:
        """Class probabilities ``(len(items), len(classes))``, rows in input order.

        ``items`` are image paths or records. Images go through the same ``tf.data``
        pipeline as in training, in batches of ``batch_size``. ``tta`` averages over
        the eight flips and right-angle turns (or a preset name of
        :data:`dermkit.evaluation.tta.PRESETS`); ``calibrated`` applies the run's
        temperature. A bad image raises a :class:`DataError` that names it.
        Scoring a thousand images with TTA takes minutes on a CPU, so ``progress``
        counts images with rate and time left (``None``: a redrawn line on a terminal,
        a line a minute in a log; jobs of a second or less print nothing).

        Images whose frozen-prefix activations training stored (in every view asked
        for) are scored by the model's tail alone (:mod:`dermkit.features.predict`):
        the same probabilities up to float16 rounding, several times faster with TTA.
        ``feature_cache=False`` runs the whole model on every image.
        """
        if batch_size < 1:
            raise ConfigError(
                f"batch size must be at least 1, got {batch_size}", where="batch_size"
            )
        scaler = self.scaler() if calibrated else None
        if not items:
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        from dermkit.data.verify import Progress
        from dermkit.evaluation.tta import resolve_transforms

        records = [
            item if isinstance(item, Record) else Record(path=os.fspath(item), label=0, group="")
            for item in items
        ]
        loader = loader or self.loader()
        preset = (tta if isinstance(tta, str) else "dihedral") if tta else "none"
        transforms = resolve_transforms(preset)
        label = f"{self.name}: images" + (
            f" ({len(transforms)} views each)" if len(transforms) > 1 else ""
        )
        counter = Progress(label, len(records), enabled=progress)
        try:
            probabilities = self._predict_records(
                records, loader, transforms, batch_size, counter.update, feature_cache
            )
        finally:
            counter.close()
        self._check_width(probabilities, len(records))
        if scaler is not None:
            probabilities = scaler.apply(probabilities)
        return probabilities

    def _predict_records(
        self,
        records: list[Record],
        loader: ImageLoader,
        transforms: tuple[str, ...],
        batch_size: int,
        on_batch: Callable[[int], None],
        feature_cache: bool,
    ) -> np.ndarray:
        """Stored activations where there are any, the whole model on pixels for the rest."""
        from dermkit.data.pipeline import surface_data_errors
        from dermkit.evaluation.tta import predict_tta
        from dermkit.features.predict import predict_cached
        from dermkit.training.stream import evaluation_stream

        tail = self._stored_tail(loader) if feature_cache else None
        cached = None
        if tail is not None:
            paths = [str(r.path) for r in records]
            cached = predict_cached(
                tail, paths, transforms, batch_size=batch_size, on_found=on_batch
            )
        if cached is not None and cached.found.all():
            return cached.probabilities
        rest = (
            records
            if cached is None
            else [r for r, f in zip(records, cached.found, strict=True) if not f]
        )
        stream = evaluation_stream(rest, loader, batch_size=batch_size)
        with surface_data_errors():
            pixels = predict_tta(
                self.model, stream, transforms, batch_size=batch_size, on_batch=on_batch
            )
        if cached is None:
            return pixels
        self._check_width(pixels, len(rest))
        merged = cached.probabilities
        merged[~cached.found] = pixels
        return merged

    def _stored_tail(self, loader: ImageLoader) -> StoredTail | None:
        from dermkit.features.predict import stored_tail

        if self.exported is not None:
            return None
        cache = getattr(loader, "cache", None)
        memo = (loader.settings, str(cache.root) if cache is not None else "")
        if memo not in self._tails:
            self._tails[memo] = stored_tail(self.model, loader)
        return self._tails[memo]

    def _check_width(self, probabilities: np.ndarray, n: int) -> None:
        """One column per class of ``classes.json``, or the columns would be misnamed."""
        if probabilities.shape != (n, len(self.classes)):
            raise DataError(
                f"the model returned {probabilities.shape} for {n} images "
                f"of {len(self.classes)} classes ({', '.join(self.classes)})",
                where=str(self.model_path),
                hint="the model and classes.json come from different runs",
            )

    def predict_images(
        self,
        images: np.ndarray,
        *,
        tta: bool | str = False,
        calibrated: bool = False,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Like :meth:`predict`, for images already loaded: ``(n, size, size, 3)`` RGB.

        For callers that decode images themselves, e.g. to skip unreadable files one
        by one instead of stopping a whole ``tf.data`` stream at the first of them.
        """
        if batch_size < 1:
            raise ConfigError(
                f"batch size must be at least 1, got {batch_size}", where="batch_size"
            )
        scaler = self.scaler() if calibrated else None
        batch = np.asarray(images, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != self.settings.shape:
            raise DataError(
                f"expected images shaped (n, {self.settings.size}, {self.settings.size}, 3), "
                f"got {batch.shape}",
                where="images",
                hint="load them with LoadedRun.images() or LoadedRun.loader()",
            )
        if batch.shape[0] == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        if tta:
            from dermkit.evaluation.tta import predict_tta

            preset = tta if isinstance(tta, str) else "dihedral"
            probabilities = predict_tta(self.model, batch, preset, batch_size=batch_size)
        else:
            probabilities = np.asarray(
                self.model.predict(batch, batch_size=batch_size, verbose=0), np.float64
            )
        self._check_width(probabilities, batch.shape[0])
        return scaler.apply(probabilities) if scaler is not None else probabilities

    def evaluate(
        self,
        dataset: Dataset | LoadedDataset | str | os.PathLike[str],
        *,
        tta: bool = False,
        calibrated: bool = False,
        balanced_test: bool = False,
        batch_size: int | None = None,
    ) -> Report:
        """The run's model scored on a labelled set: a full :class:`Report`.

        ``dataset`` is a path (format detected, as ``dermkit evaluate`` does), a
        :class:`~dermkit.core.Dataset` or an already loaded
        :class:`~dermkit.core.LoadedDataset`. Its classes are matched to the run's by
        name, never by position: a folder of ``bcc, mel, nv`` is scored as those three
        of the run's classes, and images of a class the run does not know raise a
        :class:`DataError`. Warnings (images the run trained on, a model that predicts
        one class) are issued as Python warnings and kept in the report. Save it with
        ``report.write(folder)``.
        """
        from dermkit.evaluation.run_scoring import evaluate_and_warn

        return evaluate_and_warn(
            self,
            dataset,
            tta=tta,
            calibrated=calibrated,
            balanced_test=balanced_test,
            batch_size=batch_size,
        )

    def images(
        self, items: Sequence[PathOrRecord], loader: ImageLoader | None = None
    ) -> np.ndarray:
        """The images exactly as the model sees them: ``(n, size, size, 3)`` uint8."""
        load = loader or self.loader()
        paths = [item.path if isinstance(item, Record) else Path(item) for item in items]
        return load.load_batch(paths)


def load_exported(path: str | os.PathLike[str]) -> LoadedRun:
    """A model written by ``dermkit export``, with everything it carries, as a run."""
    from dermkit.data.images import ImageSettings
    from dermkit.evaluation.calibration import TemperatureScaling
    from dermkit.export.exported import open_exported

    model = open_exported(path)
    info = model.info
    where = str(model.path)
    try:
        classes = ClassIndex(info.classes)
        settings = ImageSettings.from_config(info.image)
        temperature = None if info.temperature is None else TemperatureScaling(info.temperature)
    except (DermkitError, TypeError, ValueError) as error:
        message = error.message if isinstance(error, DermkitError) else str(error)
        raise ConfigError(f"bad export description: {message}", where=where) from None
    source = Path(info.source_run) if info.source_run else None
    run_dir = source if source is not None and source.is_dir() else model.path.parent
    return LoadedRun(
        run_dir=run_dir,
        config=info.config,
        classes=classes,
        settings=settings,
        model=model,
        temperature=temperature,
        exported=model.path,
    )


def load_run(run_dir: str | os.PathLike[str], *, trust_code: bool = False) -> LoadedRun:
    """Read a finished run folder, or an exported model; a :class:`ConfigError` names
    what is missing.

    A folder whose training never finished an epoch has no ``model.keras`` yet; the
    error says how to resume it. A ``.tflite`` or ``.onnx`` file, a SavedModel folder
    or the ``.dermkit.json`` beside one of them is read by :func:`load_exported`.
    ``trust_code`` allows a model whose Lambda layers run Python code (see
    :func:`dermkit.models.load_model`): only for files you trust.
    """
    from dermkit.export.exported import is_exported

    if is_exported(run_dir):
        return load_exported(run_dir)
    folder = Path(run_dir)
    if not folder.exists():
        raise ConfigError("no such run folder", where=str(folder), hint="check the path")
    if not folder.is_dir():
        raise ConfigError(
            "not a folder", where=str(folder), hint="pass the folder `dermkit train --out` wrote"
        )
    config_path = _require(
        folder,
        CONFIG_FILE,
        "this is not a dermkit run folder",
        "pass the folder that `dermkit train --out` wrote",
    )
    config = read_json(config_path)
    if not isinstance(config, Mapping):
        raise ConfigError("config.json does not hold a JSON object", where=str(config_path))
    classes_path = _require(
        folder,
        CLASSES_FILE,
        "the run stopped before it loaded its data",
        f"resume it with `dermkit resume {folder}`",
    )
    names = read_json(classes_path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError("classes.json is not a list of class names", where=str(classes_path))
    try:
        classes = ClassIndex(names)
    except DataError as error:
        raise ConfigError(error.message, where=str(classes_path)) from None
    model_path = _require(
        folder,
        MODEL_FILE,
        "the run did not finish an epoch",
        f"resume it with `dermkit resume {folder}`",
    )
    settings = _image_settings(config, folder)
    model = _load_model(model_path, trust_code=trust_code)
    outputs = int(model.output_shape[-1])
    if outputs != len(classes):
        raise ConfigError(
            f"the model predicts {outputs} classes but classes.json lists {len(classes)}",
            where=str(folder),
            hint="the run folder was mixed up with another run's files",
        )
    height, width = _model_input_size(model)
    if (height, width) != (None, None) and (height, width) != (settings.size, settings.size):
        raise ConfigError(
            f"the model takes {height}x{width} images but config.json says {settings.size}",
            where=str(folder),
            hint="the run folder was mixed up with another run's files",
        )
    temperature = None
    temperature_path = folder / TEMPERATURE_FILE
    if temperature_path.is_file():
        from dermkit.evaluation.calibration import TemperatureScaling

        try:
            temperature = TemperatureScaling.load(temperature_path)
        except DataError as error:
            raise ConfigError(error.message, where=error.where, hint=error.hint) from None
    return LoadedRun(
        run_dir=folder,
        config=config,
        classes=classes,
        settings=settings,
        model=model,
        temperature=temperature,
    )
