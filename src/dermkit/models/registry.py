"""One-call model creation by registered name, in the manner of timm's ``create_model``.

Names are resolved through the plugin registry (``dermkit_models`` hook), so a model
from a third-party plugin is created exactly like a built-in one.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, cast

import attrs

from dermkit import plugins
from dermkit.core import ModelFactory
from dermkit.errors import ConfigError, DermkitError

if TYPE_CHECKING:  # pragma: no cover
    import keras


def _option_names(factory: Any) -> list[str]:
    if attrs.has(factory):
        return [field.name for field in attrs.fields(factory) if field.init]
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return []
    return [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def model_factory(name: str, **options: Any) -> ModelFactory:
    """The factory registered as ``name``, configured with ``options``.

    An option the factory does not have is a :class:`ConfigError` that lists the valid
    ones, so a typo (``dropuot=0.5``) never passes silently.
    """
    factory = plugins.lookup("models", name)
    valid = _option_names(factory)
    unknown = sorted(set(options) - set(valid)) if valid else []
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            where=f"model {name}",
            hint=f"valid options of {name} are: {', '.join(valid)}",
        )
    try:
        instance = factory(**options)
    except DermkitError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"invalid options {options!r}: {error}",
            where=f"model {name}",
            hint=f"valid options of {name} are: {', '.join(valid) or 'see its documentation'}",
        ) from error
    return cast(ModelFactory, instance)


def create_model(
    name: str, num_classes: int, *, input_size: int | None = None, **options: Any
) -> keras.Model:
    """Build the model registered as ``name`` in one call.

    ``create_model("resnet50", 7, weights=None, trainable_layers=4)`` is
    ``model_factory("resnet50", weights=None, trainable_layers=4).build(7)``; the input
    size defaults to the factory's ``default_input_size``.
    """
    return model_factory(name, **options).build(num_classes, input_size)
