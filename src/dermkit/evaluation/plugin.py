"""The built-in evaluator, registered through the same hook third-party plugins use."""

from __future__ import annotations

from dermkit.evaluation.evaluator import StandardEvaluator
from dermkit.hookspecs import Factories, hookimpl


@hookimpl
def dermkit_evaluators() -> Factories:
    return {StandardEvaluator.name: StandardEvaluator}
