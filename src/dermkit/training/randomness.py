"""Per-epoch random streams of the model's own random layers (dropout, stochastic depth).

Keras keeps each Dropout layer's random state in a "seed generator" variable: a seed,
drawn from Python's ``random`` when the layer is created, and a counter that every
training step advances. A run that stops and resumes rebuilds or reloads the model, so
its layers continued from other states than the uninterrupted run's, and the resumed
run trained on other dropout masks: "resume equals an uninterrupted run" held only for
models without dropout. Setting every seed generator at the start of each epoch from
the training seed, the layer's name and the epoch number makes the masks of an epoch
depend on nothing else, whichever process trains it.

Layers are told apart by their own names, not by the variable's path nor the names of
the models they sit in: Keras numbers seed generators per process (``seed_generator_7``)
and names unnamed models the same way, so those differ between a run and its
resumption, and between the model and the cached-feature tail that shares its layers
inside a wrapper model; a layer's own name is kept by a saved model and by the tail.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

SEED_STATE_NAME = "seed_generator_state"
_DRAWS_PER_EPOCH = 2**20
"""Counter distance between epochs: far more draws than any epoch makes per layer."""


def reseed_random_layers(model: Any, seed: int, epoch: int) -> int:
    """Set the state of every seed generator of ``model`` for ``epoch``; returns how many."""
    count = 0
    seen: dict[str, int] = {}
    counter = (epoch * _DRAWS_PER_EPOCH) % 2**31
    for name, variable in _seed_states(model):
        seen[name] = seen.get(name, -1) + 1
        where = f"{name}#{seen[name]}"
        base = zlib.crc32(f"{seed}/{where}".encode()) & 0x7FFFFFFF
        variable.assign(np.array([base, counter], dtype=variable.dtype))
        count += 1
    return count


def _seed_states(model: Any) -> list[tuple[str, Any]]:
    """(layer name, state variable) of every seed generator in ``model``'s layers, in order."""
    found: list[tuple[str, Any]] = []
    for layer in getattr(model, "layers", ()):
        if getattr(layer, "layers", None):
            found.extend(_seed_states(layer))
            continue
        found.extend((layer.name, v) for v in layer.variables if v.name == SEED_STATE_NAME)
    return found
