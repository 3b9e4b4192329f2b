"""JSON configs for components: ``{"name": ..., **options}`` and back.

Every component (dataset, splitter, model factory, balancer, evaluator) is an attrs
class whose fields are its options and whose ``name`` class attribute is its registry
name. That one convention is enough to save any component to JSON and re-create it
through the plugin registry, for built-ins and third-party plugins alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
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
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"a {kind[:-1]} is given by its name or by a JSON object with a 'name', "
            f"not by {json.dumps(config, default=str)[:80]}",
            hint=f'e.g. {{"name": "..."}}; see `dermkit plugins` for the {kind}',
        )
    if "name" not in config or not isinstance(config["name"], str):
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


# --------------------------------------------------------------------------- paths
#
# A run folder must work from any working directory: `dermkit resume RUN` run from
# elsewhere, a notebook in another folder, `--config RUN/config.json` in a new project.
# So the paths a recipe stores (the dataset's files, a split file, the image cache) are
# written *absolute*. Paths relative to the run folder were the alternative; they were
# rejected because run folders and data usually live in unrelated places (runs/ in a
# project, images on a shared disk), so they become long ../../ chains that break as
# soon as either side moves, and every other reader (evaluate, pandas, a colleague's
# script) would have to know to resolve them against the run folder.
#
# Which options are paths? For datasets, the first option is the dataset path (that is
# how `open_dataset` hands it to every reader, plugins included); beyond that, options
# named like paths (``root``, ``csv``, ``path``, ``*_dir``, ``*_root``, ``*_path``,
# ``*_file``, ``*_csv``) are. Plugin authors who need another name can list their path
# options in a ``path_options`` class attribute.

PATH_COMPONENTS: tuple[str, ...] = ("data", "split")
"""The recipe's components whose options may name files or folders."""

_PATH_NAMES = frozenset({"root", "csv", "path", "file", "folder", "directory"})
_PATH_SUFFIXES = ("_dir", "_root", "_path", "_file", "_csv", "_folder")


def _declared_path_options(kind: str, name: object) -> tuple[str, ...]:
    try:
        factory = plugins.lookup(kind, str(name))
    except Exception:  # unknown here: the recipe is checked when it is built
        return ()
    declared = getattr(factory, "path_options", ())
    return tuple(str(d) for d in declared) if isinstance(declared, (tuple, list)) else ()


def path_option_names(component: Mapping[str, Any], kind: str) -> tuple[str, ...]:
    """The options of a component config (``{"name": ..., ...}``) that hold paths."""
    options = [key for key in component if key != "name"]
    found = [key for key in options if key in _PATH_NAMES or key.endswith(_PATH_SUFFIXES)]
    if kind == "datasets" and options:
        found.insert(0, options[0])
    found.extend(_declared_path_options(kind, component.get("name")))
    return tuple(dict.fromkeys(k for k in found if k in component))


def _map_component(component: Any, kind: str, change: Any) -> Any:
    if not isinstance(component, Mapping):
        return component
    updated = dict(component)
    for option in path_option_names(component, kind):
        value = updated[option]
        if isinstance(value, str) and value:
            updated[option] = change(value)
    return updated


def _map_paths(config: Mapping[str, Any], change: Any) -> dict[str, Any]:
    """A copy of a recipe with ``change(path_text)`` applied to every stored path."""
    out = dict(config)
    for key, kind in (("data", "datasets"), ("split", "splitters")):
        if key in out:
            out[key] = _map_component(out[key], kind, change)
    balancers = out.get("balancers")
    if isinstance(balancers, list):
        out["balancers"] = [_map_component(b, "balancers", change) for b in balancers]
    cache = out.get("cache_dir")
    if isinstance(cache, str) and cache:
        out["cache_dir"] = change(cache)
    return out


def absolute_paths(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a recipe whose stored paths are absolute (relative ones: to the cwd)."""
    return _map_paths(config, os.path.abspath)


def path_bases(run_dir: str | Path) -> list[Path]:
    """Where a relative path stored by an older run may be relative to, in order.

    Older dermkit versions stored paths relative to the folder the run was started
    from. That folder is usually the current one, or one the run folder sits in
    (``runs/lfn`` started from the project folder), so those are tried in that order.
    """
    run = Path(os.path.abspath(run_dir))
    return [Path.cwd(), run, *run.parents]


def resolve_relative(text: str, bases: Sequence[Path]) -> str:
    """``text`` if absolute; else the first ``base / text`` that exists (else cwd-based)."""
    if os.path.isabs(text):
        return text
    for base in bases:
        candidate = base / text
        if candidate.exists():
            return os.path.abspath(candidate)
    return os.path.abspath(text)


def resolve_saved_paths(config: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """A saved recipe with absolute paths, also when an older run stored relative ones."""
    bases = path_bases(run_dir)
    return _map_paths(config, lambda text: resolve_relative(text, bases))


# --------------------------------------------------------------------------- differences


@attrs.frozen
class Difference:
    """One setting in which two recipes differ: its key path and both values."""

    key: tuple[str, ...]
    saved: Any
    given: Any

    @property
    def dotted(self) -> str:
        return ".".join(self.key)

    def render(self) -> str:
        return f"{self.dotted}: saved {show_value(self.saved)}, given {show_value(self.given)}"


_MISSING = object()


def show_value(value: Any) -> str:
    """A setting's value as a message shows it (JSON, strings quoted)."""
    if value is _MISSING:
        return "(not set)"
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe as JSON would give it back (tuples become lists, paths strings)."""
    result: dict[str, Any] = json.loads(json.dumps(_jsonable(config)))
    return result


def differences(saved: Any, given: Any, key: tuple[str, ...] = ()) -> list[Difference]:
    """Every leaf setting in which two recipes (JSON types) differ, by key path.

    Mappings are compared key by key; anything else (numbers, strings, lists such as
    the balancer list) as a whole, so that a list's difference is reported once.
    """
    if isinstance(saved, Mapping) and isinstance(given, Mapping):
        out: list[Difference] = []
        for name in dict.fromkeys([*saved, *given]):
            out.extend(
                differences(saved.get(name, _MISSING), given.get(name, _MISSING), (*key, name))
            )
        return out
    numbers = (int, float)
    if (
        isinstance(saved, numbers)
        and isinstance(given, numbers)
        and not isinstance(saved, bool)
        and not isinstance(given, bool)
        and float(saved) == float(given)
    ):
        return []  # 1 and 1.0 are the same setting (JSON does not keep the difference)
    return [] if saved == given else [Difference(key, saved, given)]
