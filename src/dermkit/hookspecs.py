"""Hook specifications: the one place that says what a dermkit plugin can provide.

Each hook returns a mapping from short names (``"lfn"``, ``"class_weights"``) to
factories: classes (or other callables) whose keyword arguments are the component's
options. The built-in components are registered through these very hooks, so a
third-party plugin is in no way second-class. A plugin is a module (or object) with
functions marked ``@dermkit.hookimpl`` and is announced through the entry-point group
``dermkit``::

    [project.entry-points.dermkit]
    my_models = "my_package.dermkit_plugin"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

PROJECT_NAME = "dermkit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Factories = Mapping[str, Callable[..., Any]]

KINDS: tuple[str, ...] = ("datasets", "splitters", "models", "balancers", "evaluators")
"""Every kind of component a plugin can provide; ``dermkit_<kind>`` is its hook."""


@hookspec
def dermkit_datasets() -> Factories:  # type: ignore[empty-body]
    """Dataset readers: ``name -> class(root, ...)`` implementing :class:`dermkit.core.Dataset`."""


@hookspec
def dermkit_splitters() -> Factories:  # type: ignore[empty-body]
    """Splitters: ``name -> class(...)`` implementing :class:`dermkit.core.Splitter`."""


@hookspec
def dermkit_models() -> Factories:  # type: ignore[empty-body]
    """Model factories: ``name -> class(**options)``, each a :class:`dermkit.core.ModelFactory`."""


@hookspec
def dermkit_balancers() -> Factories:  # type: ignore[empty-body]
    """Balancers: ``name -> class(**options)`` implementing :class:`dermkit.core.Balancer`."""


@hookspec
def dermkit_evaluators() -> Factories:  # type: ignore[empty-body]
    """Evaluators: ``name -> class(**options)`` implementing :class:`dermkit.core.Evaluator`."""
