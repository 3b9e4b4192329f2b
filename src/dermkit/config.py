"""JSON configs for components: ``{"name": ..., **options}`` and back.

Every component (dataset, splitter, model factory, balancer, evaluator) is an attrs
class whose fields are its options and whose ``name`` class attribute is its registry
name. That one convention is enough to save any component to JSON and re-create it
through the plugin registry, for built-ins and third-party plugins alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dermkit import plugins
from dermkit.errors import ConfigError


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _from_json(value: Any) -> Any:
    """JSON has no tuples; options in dermkit are tuples wherever they are sequences."""
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


def component_config(component: object) -> dict[str, Any]:
    """``{"name": <registry name>, <option>: <value>, ...}`` for an attrs component."""
    cls = type(component)
    if not attrs.has(cls):
        raise ConfigError(
            f"{type(component).__name__} is not an attrs class, so its options cannot be saved",
            hint="define plugin components with @attrs.frozen and options as fields",
        )
    options = {
        field.name: _jsonable(getattr(component, field.name))
        for field in attrs.fields(cls)
        if field.init
    }
    return {"name": plugins.component_name(component), **options}


def build_component(kind: str, config: Mapping[str, Any] | str) -> Any:
    """Create a component of ``kind`` from a name or a ``component_config`` mapping."""
    if isinstance(config, str):
        config = {"name": config}
    if "name" not in config:
        raise ConfigError(f"a {kind[:-1]} configuration needs a 'name'", where=str(dict(config)))
    options = {k: _from_json(v) for k, v in config.items() if k != "name"}
    factory = plugins.lookup(kind, str(config["name"]))
    try:
        return factory(**options)
    except TypeError as error:
        valid = (
            ", ".join(f.name for f in attrs.fields(factory) if f.init)
            if isinstance(factory, type) and attrs.has(factory)
            else "see its documentation"
        )
        raise ConfigError(
            f"invalid options for {kind[:-1]} {config['name']!r}: {error}",
            hint=f"valid options: {valid}",
        ) from None
    except ValueError as error:
        raise ConfigError(f"invalid options for {kind[:-1]} {config['name']!r}: {error}") from None
