"""The shape of a recipe (``config.json``), checked before anything is built from it.

A recipe is read from a file a person may have edited, so every key and type is
checked first: a misspelt key would otherwise be ignored without a word, and a value
of the wrong type would fail much later, mid-run, far from its cause. The components
(data, model, balancers...) check their own options when they are built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dermkit.errors import ConfigError

TOP_LEVEL = (
    "format_version", "data", "split", "model", "balancers", "training", "evaluator",
    "image", "limit", "strict", "cache_dir",
)  # fmt: skip
IMAGE_KEYS = ("size", "resize_mode", "interpolation")
COMPONENTS = ("data", "split", "model", "evaluator")


def _show(value: Any) -> str:
    return json.dumps(value, default=str)[:60]


def _refuse(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(
        f"must be {expected}, not {_show(value)}",
        where=key,
        hint="fix the recipe (config.json), or start from a run's own config.json",
    )


def check_recipe(config: Any, source: str | None = None) -> Mapping[str, Any]:
    """``config`` if its keys and types are a recipe's, else a :class:`ConfigError`.

    ``source`` (the file read) is named in the error, beside the key at fault.
    """
    try:
        return _check_recipe(config)
    except ConfigError as error:
        if source is None:
            raise
        where = f"{source} ({error.where})" if error.where else source
        raise ConfigError(error.message, where=where, hint=error.hint) from None


def _check_recipe(config: Any) -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"a recipe is a JSON object, not {_show(config)}", hint="see reference/configuration"
        )
    unknown = sorted(str(k) for k in config if k not in TOP_LEVEL)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in the recipe: {', '.join(unknown)}",
            hint=f"valid keys are {', '.join(TOP_LEVEL)}",
        )
    for key in COMPONENTS:
        value = config.get(key)
        if value is not None and not isinstance(value, (str, Mapping)):
            raise _refuse(key, "a name or a JSON object with a 'name'", value)
    balancers = config.get("balancers")
    if balancers is not None and not (
        isinstance(balancers, list) and all(isinstance(b, (str, Mapping)) for b in balancers)
    ):
        raise _refuse("balancers", "a list of names or JSON objects", balancers)
    training = config.get("training")
    if training is not None and not isinstance(training, Mapping):
        raise _refuse("training", "a JSON object of training options", training)
    check_image(config.get("image"))
    check_setting("limit", config.get("limit"))
    check_setting("strict", config.get("strict", False))
    check_setting("cache_dir", config.get("cache_dir"))
    version = config.get("format_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise _refuse("format_version", "a whole number", version)
    return config


def check_image(image: Any) -> None:
    if image is None:
        return
    if not isinstance(image, Mapping):
        raise _refuse("image", "a JSON object (size, resize_mode, interpolation)", image)
    unknown = sorted(str(k) for k in image if k not in IMAGE_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in image: {', '.join(unknown)}",
            where="image",
            hint=f"valid keys are {', '.join(IMAGE_KEYS)}",
        )
    check_setting("image.size", image.get("size"))
    for key in ("resize_mode", "interpolation"):
        if key in image and not isinstance(image[key], str):
            raise _refuse(f"image.{key}", "a name", image[key])


def check_setting(key: str, value: Any) -> None:
    """One of the experiment's own settings (``limit``, ``strict``, ``cache_dir``, size)."""
    if key in ("limit", "image.size", "image_size"):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise _refuse(key, "a whole number of at least 1, or null", value)
    elif key == "strict":
        if not isinstance(value, bool):
            raise _refuse(key, "true or false", value)
    elif key == "cache_dir" and value is not None and not isinstance(value, str):
        raise _refuse(key, "a folder path, '' (no cache) or null (the default)", value)


def validator(key: str) -> Any:
    """An attrs validator running :func:`check_setting` for ``key``."""

    def check(instance: object, attribute: Any, value: Any) -> None:
        check_setting(key, value)

    return check


def components_as_objects(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with each component given by name written as ``{"name": ...}``.

    Both spellings are a valid recipe; code that merges options into a component
    (the command line's flags) needs the object form.
    """
    for key in COMPONENTS:
        if isinstance(config.get(key), str):
            config[key] = {"name": config[key]}
    balancers = config.get("balancers")
    if isinstance(balancers, list):
        config["balancers"] = [{"name": b} if isinstance(b, str) else b for b in balancers]
    return config
