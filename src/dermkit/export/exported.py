"""Exported models that predict through the same calls as a Keras model.

dermkit's prediction code (``LoadedRun.predict``, test-time augmentation, evaluation)
calls four things on a model: ``predict(x, batch_size=, verbose=)``,
``predict_on_batch(x)``, ``input_shape`` and ``output_shape``. :class:`ExportedModel`
offers exactly those over a TFLite interpreter, a loaded SavedModel or an ONNX Runtime
session, so a run folder and an exported file are two ways to get one *predictor* and
no command needs to ask which it has. (What only a Keras model can do, such as
Grad-CAM, checks for a Keras model and says so.)

:func:`open_exported` recognises the artefact by its form (a ``.tflite`` or ``.onnx``
file, a SavedModel folder, or the ``.dermkit.json`` sidecar of any of them) and reads
its :class:`~dermkit.export.info.ExportInfo`: from inside the artefact when it is
there, else from the sidecar.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dermkit.errors import ConfigError, DataError
from dermkit.export.formats import (
    ONNX_INSTALL_HINT,
    read_saved_model_info,
    read_tflite_info,
)
from dermkit.export.info import METADATA_NAME, SIDECAR_SUFFIX, ExportInfo, sidecar_path


class ExportedModel:
    """The predicting part of ``keras.Model``'s interface, over an exported artefact.

    Inputs are float32 RGB batches ``(n, size, size, 3)`` in [0, 255]; outputs are class
    probabilities ``(n, classes)``. Subclasses implement :meth:`_run` for one batch.
    """

    kind: ClassVar[str] = ""

    def __init__(self, path: Path, info: ExportInfo) -> None:
        self.path = path
        self.info = info
        self.size = int(info.image["size"])
        self.input_shape: tuple[int | None, ...] = (None, self.size, self.size, 3)
        self.output_shape: tuple[int | None, ...] = (None, len(info.classes))
        self.name = path.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def _run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_on_batch(self, x: Any) -> np.ndarray:
        batch = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        if batch.ndim != 4 or batch.shape[1:] != (self.size, self.size, 3):
            raise DataError(
                f"expected images shaped (n, {self.size}, {self.size}, 3), got {batch.shape}",
                where=str(self.path),
            )
        if batch.shape[0] == 0:
            return np.zeros((0, len(self.info.classes)), dtype=np.float32)
        return np.asarray(self._run(batch), dtype=np.float32)

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = 0) -> np.ndarray:
        """Like ``keras.Model.predict``: an array (cut into batches) or batches (e.g. tf.data)."""
        size = batch_size or 32
        if isinstance(x, np.ndarray):
            batches: Iterable[Any] = (x[i : i + size] for i in range(0, len(x), size))
        else:
            batches = x
        outputs = [self.predict_on_batch(_images_of(b)) for b in batches]
        if not outputs:
            return np.zeros((0, len(self.info.classes)), dtype=np.float32)
        return np.concatenate(outputs, axis=0)


def _images_of(element: Any) -> Any:
    """``x`` of a dataset element that is ``x`` or ``(x, y[, w])``."""
    return element[0] if isinstance(element, tuple | list) else element


def _tflite_interpreter_class() -> Any:
    """LiteRT's interpreter when installed (``ai-edge-litert``), else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


class TFLiteModel(ExportedModel):
    """A ``.tflite`` file run by the TFLite (LiteRT) interpreter on every CPU core.

    The interpreter is not thread-safe and has a fixed batch size at a time: batches
    are run one after another under a lock, resizing the input when the size changes.
    """

    kind = "tflite"

    def __init__(self, path: Path, info: ExportInfo, content: bytes) -> None:
        super().__init__(path, info)
        interpreter_class = _tflite_interpreter_class()
        with warnings.catch_warnings():  # TensorFlow's copy warns that it is deprecated
            warnings.simplefilter("ignore")
            self.interpreter = interpreter_class(
                model_content=content, num_threads=os.cpu_count() or 1
            )
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.batch = -1
        self.lock = threading.Lock()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            if batch.shape[0] != self.batch:
                self.interpreter.resize_tensor_input(self.input_index, batch.shape)
                self.interpreter.allocate_tensors()
                self.batch = batch.shape[0]
            self.interpreter.set_tensor(self.input_index, batch)
            self.interpreter.invoke()
            return np.array(self.interpreter.get_tensor(self.output_index))


class SavedModelModel(ExportedModel):
    """A SavedModel folder, called through Keras' ``serve`` endpoint."""

    kind = "saved_model"

    def __init__(self, path: Path, info: ExportInfo) -> None:
        super().__init__(path, info)
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(path))
        serve = getattr(self.loaded, "serve", None)
        if serve is None:
            signatures = dict(self.loaded.signatures)
            if "serving_default" not in signatures:
                raise ConfigError(
                    "the SavedModel has neither a `serve` endpoint nor a serving signature",
                    where=str(path),
                    hint="export it with `dermkit export --format saved_model`",
                )
            serve = signatures["serving_default"]
        self.serve = serve

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        out = self.serve(tf.constant(batch))
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return np.asarray(out)


class OnnxModel(ExportedModel):
    """An ``.onnx`` file run by ONNX Runtime's CPU provider."""

    kind = "onnx"

    def __init__(self, path: Path, info: ExportInfo, session: Any) -> None:
        super().__init__(path, info)
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: batch})[0])


def is_exported(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like an exported model (rather than a run folder)."""
    candidate = Path(path)
    if candidate.name.endswith(SIDECAR_SUFFIX):
        return True
    if candidate.is_dir():
        return (candidate / "saved_model.pb").is_file()
    return candidate.suffix.lower() in (".tflite", ".onnx")


def _info(embedded: str | None, artefact: Path) -> ExportInfo:
    if embedded is not None:
        return ExportInfo.loads(embedded, str(artefact))
    sidecar = sidecar_path(artefact)
    if sidecar.is_file():
        return ExportInfo.loads(sidecar.read_bytes(), str(sidecar))
    raise ConfigError(
        "the exported model carries no class names or image settings",
        where=str(artefact),
        hint=f"export it with `dermkit export`, or put its {sidecar.name} next to it",
    )


def _onnx_session(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("cannot import onnxruntime", hint=ONNX_INSTALL_HINT) from None
    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:
        raise DataError(f"ONNX Runtime cannot load the model: {error}", where=str(path)) from error


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"cannot read the model: {error.strerror or error}", where=str(path)
        ) from None


def open_exported(path: str | os.PathLike[str]) -> ExportedModel:
    """Open an exported model with its description; errors name the file and the fix."""
    artefact = Path(path)
    if artefact.name.endswith(SIDECAR_SUFFIX):
        artefact = artefact.with_name(artefact.name[: -len(SIDECAR_SUFFIX)])
    if not artefact.exists():
        raise ConfigError("no such exported model", where=str(artefact), hint="check the path")
    model: ExportedModel
    if artefact.is_dir():
        if not (artefact / "saved_model.pb").is_file():
            raise ConfigError(
                "this folder is not a SavedModel (no saved_model.pb)", where=str(artefact)
            )
        info = _info(read_saved_model_info(artefact), artefact)
        model = SavedModelModel(artefact, info)
    elif artefact.suffix.lower() == ".tflite":
        content = _read(artefact)
        try:
            embedded = read_tflite_info(content)
        except Exception:  # not a flatbuffer: the interpreter below says so
            embedded = None
        info = _info(embedded, artefact)
        try:
            model = TFLiteModel(artefact, info, content)
        except (ValueError, RuntimeError) as error:
            raise DataError(
                f"the TFLite interpreter cannot load the model: {error}", where=str(artefact)
            ) from None
    elif artefact.suffix.lower() == ".onnx":
        session = _onnx_session(artefact)
        embedded = session.get_modelmeta().custom_metadata_map.get(METADATA_NAME)
        info = _info(embedded, artefact)
        model = OnnxModel(artefact, info, session)
    else:
        raise ConfigError(
            "not an exported model",
            where=str(artefact),
            hint="pass a .tflite or .onnx file, a SavedModel folder, or a run folder",
        )
    _check_shapes(model)
    return model


def _check_shapes(model: ExportedModel) -> None:
    """One prediction on a black image: the model must take the described size and
    return one probability per described class."""
    probe = np.zeros((1, model.size, model.size, 3), dtype=np.float32)
    try:
        out = model.predict_on_batch(probe)
    except DataError:
        raise
    except Exception as error:
        raise ConfigError(
            f"the model does not take {model.size}x{model.size} RGB images: {error}",
            where=str(model.path),
            hint="its description (.dermkit.json) belongs to another model",
        ) from None
    if out.shape != (1, len(model.info.classes)):
        raise ConfigError(
            f"the model gives {out.shape[-1]} outputs for {len(model.info.classes)} classes",
            where=str(model.path),
            hint="its description (.dermkit.json) belongs to another model",
        )
