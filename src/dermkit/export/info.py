"""What an exported model must carry to predict on its own: classes and image settings.

A bare ``.tflite``, SavedModel or ``.onnx`` file maps pixels to seven numbers; which
number is which class, and how an image must be resized to be fed to it, live in the
run folder. :class:`ExportInfo` is that knowledge as JSON. ``dermkit export`` writes it
twice: as a sidecar ``<artefact name>.dermkit.json`` next to the artefact (easy to read
for people and other tools), and inside the artefact where the format has room for it
(TFLite metadata, ONNX ``metadata_props``, the SavedModel's ``assets.extra/``), so a
file copied on its own still predicts correctly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from dermkit.errors import ConfigError

Format = Literal["tflite", "saved_model", "onnx"]
Quantize = Literal["float16", "int8"]
FORMATS: tuple[str, ...] = ("tflite", "saved_model", "onnx")
QUANTIZATIONS: tuple[str, ...] = ("float16", "int8")

SCHEMA = 1
"""Bumped when a field changes meaning; readers refuse a newer schema."""
SIDECAR_SUFFIX = ".dermkit.json"
METADATA_NAME = "dermkit"
"""The key the JSON is stored under inside TFLite and ONNX files."""


def sidecar_path(artefact: str | Path) -> Path:
    """``model.tflite`` → ``model.tflite.dermkit.json`` (the same for a SavedModel folder)."""
    path = Path(artefact)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _classes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
        raise ValueError("classes must be a list of class names")
    return tuple(value)


@attrs.frozen
class ExportInfo:
    """Everything besides the weights that a prediction needs, and where it came from.

    ``image`` is the run's :class:`~dermkit.data.images.ImageSettings` as a mapping;
    ``config`` the run's whole ``config.json`` (so reports on the export describe the
    run as reports on the run folder do); ``temperature`` the calibration temperature
    fitted on the run's validation part (``None`` if the run had none); ``batch_size``
    the run's training batch size (the default of ``dermkit evaluate``);
    ``source_run`` the run folder it was exported from.
    """

    format: Format
    quantize: Quantize | None
    classes: tuple[str, ...] = attrs.field(converter=_classes)
    image: Mapping[str, Any]
    config: Mapping[str, Any] = attrs.field(factory=dict)
    temperature: float | None = None
    batch_size: int = 32
    source_run: str = ""
    dermkit_version: str = ""

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["classes"] = list(self.classes)
        return {"dermkit_export": SCHEMA, **data}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: Any, where: str) -> ExportInfo:
        """Parse what :meth:`to_json` wrote; anything else is a :class:`ConfigError`."""
        if not isinstance(data, Mapping) or "dermkit_export" not in data:
            raise ConfigError(
                "this is not a dermkit export description",
                where=where,
                hint="pass a model written by `dermkit export`",
            )
        schema = data["dermkit_export"]
        if not isinstance(schema, int) or schema > SCHEMA:
            raise ConfigError(
                f"export description version {schema!r} is newer than this dermkit reads",
                where=where,
                hint="upgrade dermkit",
            )
        fields = {f.name for f in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        try:
            info = cls(**values)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"bad export description: {error}", where=where) from None
        if info.format not in FORMATS or (
            info.quantize is not None and info.quantize not in QUANTIZATIONS
        ):
            raise ConfigError(
                f"unknown format {info.format!r} / quantization {info.quantize!r}",
                where=where,
            )
        if not isinstance(info.image, Mapping) or "size" not in info.image:
            raise ConfigError("the export description has no image size", where=where)
        if not isinstance(info.config, Mapping):
            raise ConfigError("the export description's config is not an object", where=where)
        return info

    @classmethod
    def loads(cls, text: str | bytes, where: str) -> ExportInfo:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"export description is not valid JSON: {error}", where=where
            ) from None
        return cls.from_json(data, where)
