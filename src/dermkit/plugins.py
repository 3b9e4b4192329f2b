"""The plugin registry: one pluggy manager, built-ins and entry points alike.

Modelled on datasette's ``plugins.py``: one :class:`pluggy.PluginManager`, the hook
specifications added, a tuple of default plugin modules registered through the same
manager as third-party ones, then every entry point of the group ``dermkit``.

A broken plugin never takes the rest down: a plugin that fails to import, or whose
hook raises, produces a :class:`PluginWarning` naming it, and the other plugins keep
working. A short name claimed by two plugins is an error that names both, raised when
that kind is looked up. Set ``DERMKIT_TRACE_HOOKS=1`` to print every hook call.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from types import ModuleType
from typing import Any

import attrs
import pluggy

from dermkit import hookspecs
from dermkit.errors import PluginError

ENTRY_POINT_GROUP = "dermkit"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "dermkit.data.plugin",
    "dermkit.models.plugin",
    "dermkit.balancers.plugin",
    "dermkit.evaluation.plugin",
    "dermkit.split_file",
)
"""Modules that provide the built-in components, registered like any other plugin."""


class PluginWarning(UserWarning):
    """A plugin could not be loaded or its hook failed; the others still work."""


@attrs.frozen(slots=True)
class Provided:
    """One named component and the plugin that provides it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str


_manager: pluggy.PluginManager | None = None
_broken: dict[str, str] = {}
_versions: dict[str, str] = {}


def _warn_broken(plugin: str, error: BaseException) -> None:
    message = (
        f"dermkit plugin {plugin!r} is broken and was skipped: {type(error).__name__}: {error}"
    )
    _broken[plugin] = f"{type(error).__name__}: {error}"
    warnings.warn(message, PluginWarning, stacklevel=3)


def _register_module(pm: pluggy.PluginManager, module: ModuleType | object, name: str) -> None:
    try:
        pm.register(module, name=name)
    except Exception as error:  # pluggy validation errors, duplicate names
        _warn_broken(name, error)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry_point, "dist", None)
        name = entry_point.name if dist is None else f"{dist.name}:{entry_point.name}"
        if pm.get_plugin(name) is not None:
            continue
        try:
            plugin = entry_point.load()
        except Exception as error:
            _warn_broken(name, error)
            continue
        _register_module(pm, plugin, name)
        if dist is not None:
            _versions[name] = dist.version


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        print(f"[dermkit hook] {hook_name}({kwargs}) -> {len(hook_impls)} impls", file=sys.stderr)

    def after(outcome: Any, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        print(f"[dermkit hook] {hook_name} done", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created on first use (plugins load lazily)."""
    global _manager
    if _manager is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        for module_name in DEFAULT_PLUGINS:
            try:
                module = importlib.import_module(module_name)
            except Exception as error:
                _warn_broken(module_name, error)
                continue
            _register_module(pm, module, module_name)
        _load_entry_points(pm)
        if os.environ.get("DERMKIT_TRACE_HOOKS"):
            _trace(pm)
        _manager = pm
    return _manager


def reset() -> None:
    """Forget the manager so the next lookup re-reads entry points (tests, notebooks)."""
    global _manager
    _manager = None
    _broken.clear()
    _versions.clear()


def register(plugin: object, name: str | None = None) -> None:
    """Register a plugin object at run time (handy in notebooks and tests)."""
    get_plugin_manager().register(plugin, name=name)


def unregister(name: str) -> None:
    pm = get_plugin_manager()
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)


def _check_kind(kind: str) -> None:
    if kind not in hookspecs.KINDS:
        raise PluginError(
            f"unknown plugin kind {kind!r}", hint=f"use one of {', '.join(hookspecs.KINDS)}"
        )


def provided(kind: str) -> dict[str, Provided]:
    """Every component of ``kind`` by name; a name claimed twice raises :class:`PluginError`."""
    _check_kind(kind)
    pm = get_plugin_manager()
    caller = getattr(pm.hook, f"dermkit_{kind}")
    found: dict[str, Provided] = {}
    for impl in reversed(caller.get_hookimpls()):  # registration order
        plugin_name = impl.plugin_name
        try:
            result = impl.function()
        except Exception as error:
            _warn_broken(plugin_name, error)
            continue
        for name, factory in _valid_entries(kind, plugin_name, result):
            if name in found:
                raise PluginError(
                    f"the {kind[:-1]} name {name!r} is claimed by two plugins: "
                    f"{found[name].plugin!r} and {plugin_name!r}",
                    hint="uninstall or rename one of them",
                )
            found[name] = Provided(kind=kind, name=name, factory=factory, plugin=plugin_name)
    return found


def _valid_entries(
    kind: str, plugin: str, result: object
) -> Iterable[tuple[str, Callable[..., Any]]]:
    """The ``(name, factory)`` pairs of a hook's result that can be used.

    A hook must return a mapping of names to callables (or ``None``). Anything else
    (a list, a string, a number) is reported and the plugin's whole result skipped;
    an entry whose name is not a string or whose factory cannot be called is reported
    and skipped alone, so a plugin's good components still work.
    """
    if result is None:
        return []
    if not isinstance(result, Mapping):
        _warn_broken(
            plugin,
            TypeError(
                f"its dermkit_{kind} hook returned a {type(result).__name__}, not a mapping "
                "of names to factories"
            ),
        )
        return []
    entries = []
    for name, factory in result.items():
        if not isinstance(name, str) or not name:
            problem = f"the name {name!r} is not a non-empty string"
        elif not callable(factory):
            problem = f"the factory of {name!r} is a {type(factory).__name__}, not callable"
        else:
            entries.append((name, factory))
            continue
        _warn_broken(
            plugin,
            TypeError(
                f"its dermkit_{kind} hook gives a bad entry: {problem}; that entry was skipped"
            ),
        )
    return entries


def available() -> dict[str, dict[str, str]]:
    """Names by kind, each with the plugin that provides it."""
    return {
        kind: {name: item.plugin for name, item in sorted(provided(kind).items())}
        for kind in hookspecs.KINDS
    }


def broken() -> dict[str, str]:
    """Plugins that failed to load or whose hooks raised, with the error."""
    get_plugin_manager()
    return dict(_broken)


def lookup(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``name`` for ``kind``; a :class:`PluginError` lists choices."""
    items = provided(kind)
    if name not in items:
        choices = ", ".join(sorted(items)) or "none"
        raise PluginError(
            f"no {kind[:-1]} named {name!r}",
            hint=f"available {kind}: {choices} (see `dermkit plugins`)",
        )
    return items[name].factory


def plugin_info() -> list[dict[str, Any]]:
    """Each registered plugin with its hooks and distribution version, like datasette's."""
    pm = get_plugin_manager()
    from dermkit import __version__

    out = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        version = __version__ if name in DEFAULT_PLUGINS else _versions.get(name)
        out.append({"name": name, "hooks": hooks, "version": version})
    return out


def component_name(obj: object) -> str:
    """The registered short name of a component instance (its ``name`` class attribute)."""
    name = getattr(type(obj), "name", None)
    if not isinstance(name, str):
        raise PluginError(f"{type(obj).__name__} has no `name` class attribute")
    return name
