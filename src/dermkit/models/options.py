"""Validation of model options, shared by the factories.

Options arrive from Python, from a JSON run configuration or from the command line,
so converters accept JSON's lists where a tuple is meant, and every bad value is a
:class:`~dermkit.errors.ConfigError` that names the option and says what is allowed,
raised when the factory is created rather than deep inside Keras.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import attrs

from dermkit.errors import ConfigError

Pooling = Literal["flatten", "avg"]
POOLINGS: tuple[str, ...] = ("flatten", "avg")


def _where(instance: object, attribute: attrs.Attribute[Any]) -> str:
    name = getattr(type(instance), "name", type(instance).__name__)
    return f"model {name}, option {attribute.name}"


def to_widths(value: Iterable[int] | int) -> tuple[int, ...]:
    """``dense=512``, ``[512, 512]`` (JSON) and ``(512,)`` all mean what they say."""
    if isinstance(value, int):  # bool too: check_widths then rejects it by name
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        raise ConfigError(
            f"dense must be a list of layer widths, not {value!r}", hint="e.g. dense=[512, 512]"
        ) from None


def check_widths(instance: object, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    for width in value:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ConfigError(
                f"every dense width must be a positive integer, got {width!r}",
                where=_where(instance, attribute),
                hint="e.g. dense=[512] or dense=[] for no hidden layer",
            )


def check_rate(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ConfigError(
            f"a dropout rate must be a number in [0, 1), got {value!r}",
            where=_where(instance, attribute),
        )


def check_pooling(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in POOLINGS:
        raise ConfigError(
            f"unknown pooling {value!r}",
            where=_where(instance, attribute),
            hint=f"use one of {', '.join(POOLINGS)}",
        )


def check_bool(instance: object, attribute: attrs.Attribute[Any], value: bool) -> None:
    if not isinstance(value, bool):
        raise ConfigError(
            f"expected true or false, got {value!r}", where=_where(instance, attribute)
        )


def check_trainable_layers(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ConfigError(
            f"trainable_layers must be an integer >= -1, got {value!r}",
            where=_where(instance, attribute),
            hint="0 freezes the whole backbone, N trains its last N layers, -1 trains all of it",
        )


def check_weights(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(
            f"weights must be 'imagenet', a path to a weights file, or None, got {value!r}",
            where=_where(instance, attribute),
        )


def check_build_args(model: str, num_classes: int, input_size: int, min_size: int) -> None:
    """Catch impossible sizes before Keras fails with a shape error far from the cause."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(
            f"num_classes must be an integer >= 2, got {num_classes!r}", where=f"model {model}"
        )
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < min_size:
        raise ConfigError(
            f"input_size {input_size!r} is too small",
            where=f"model {model}",
            hint=f"{model} needs images of at least {min_size}x{min_size} pixels",
        )
