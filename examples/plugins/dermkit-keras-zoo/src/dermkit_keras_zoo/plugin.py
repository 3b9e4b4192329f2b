"""The module named by the entry point: it tells dermkit which models this package adds.

dermkit calls ``dermkit_models()`` when a model is looked up by name, exactly as it
calls the hook of its own built-in models, and lists the names under this plugin's
name (``dermkit-keras-zoo:keras_zoo``) in ``dermkit plugins``.
"""

from __future__ import annotations

from dermkit import hookimpl
from dermkit.hookspecs import Factories

from dermkit_keras_zoo.models import ZOO


@hookimpl
def dermkit_models() -> Factories:
    return {factory.name: factory for factory in ZOO}
