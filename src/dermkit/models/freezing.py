"""Freezing a backbone, and finding where a model's frozen prefix ends.

Freezing uses Keras 3's per-layer ``trainable`` flag and nothing else. A BatchNormalization
layer with ``trainable=False`` runs in inference mode (moving statistics, no updates)
even when the model is called with ``training=True``, while the backbone's trainable
tail, BatchNormalization included, trains normally. Calling the backbone with
``training=False`` instead would also pin the *trainable* tail's BatchNormalization
layers to inference mode, which is not what "the last N layers train" means.

The frozen prefix is what frozen-feature caching may compute once per image: every
layer from the input up to a cut point that has no trainable weights and no
randomness (no dropout, no noise, no random augmentation). The cut must be a single
tensor that everything after it depends on alone, so that cached activations can
stand in for the prefix; in a residual network that is a block output, never a layer
inside a block whose shortcut skips past it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dermkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import keras

_RANDOM_LAYER_MARKERS: tuple[str, ...] = ("Dropout", "Noise", "Random")


def freeze_all_but_last(layers: Sequence[Any], trainable_layers: int, *, model: str) -> None:
    """Make only the last ``trainable_layers`` of ``layers`` trainable (-1: all of them)."""
    count = len(layers)
    if trainable_layers > count:
        raise ConfigError(
            f"trainable_layers={trainable_layers} but the backbone has only {count} layers",
            where=f"model {model}",
            hint=f"use a number up to {count}, or -1 to train the whole backbone",
        )
    first_trainable = 0 if trainable_layers == -1 else count - trainable_layers
    for index, layer in enumerate(layers):
        layer.trainable = index >= first_trainable


def freeze_batch_normalization(model: Any) -> int:
    """Freeze every BatchNormalization layer of ``model`` (nested models too); returns how many.

    A frozen BatchNormalization layer normalises with its moving statistics and keeps
    its scale and shift, in training as in inference. What a fine-tuning stage wants:
    the layers after it were fitted to activations normalised exactly that way.
    """
    count = 0
    for layer in getattr(model, "layers", ()):
        if "BatchNormalization" in type(layer).__name__:
            if layer.trainable:
                layer.trainable = False
                count += 1
        else:
            count += freeze_batch_normalization(layer)
    return count


def is_random_layer(layer: Any) -> bool:
    """Whether a layer draws random numbers in training (dropout, noise, random augmentation)."""
    name = type(layer).__name__
    return any(marker in name for marker in _RANDOM_LAYER_MARKERS)


def is_frozen_and_deterministic(layer: Any) -> bool:
    """A layer a frozen prefix may hold: nothing in it trains and nothing in it is random."""
    return not layer.trainable_weights and not is_random_layer(layer)


def parent_positions(layers: Sequence[Any]) -> list[list[int]]:
    """For each of ``layers`` (a functional model's, in order), the positions it reads."""
    position = {id(layer): index for index, layer in enumerate(layers)}
    return [_parents(layer, position) for layer in layers]


def _parents(layer: Any, known: dict[int, int]) -> list[int]:
    """Positions (in ``known``) of the layers whose outputs ``layer`` consumes."""
    found: list[int] = []
    for node in getattr(layer, "_inbound_nodes", ()):
        for parent in node.parent_nodes:
            position = known.get(id(parent.operation))
            if position is not None:
                found.append(position)
    return found


def frozen_prefix_end(model: keras.Model) -> str | None:
    """Name of the last layer of the model's frozen prefix, or ``None`` if nothing is frozen.

    Works on any functional model, including one loaded from disk: it reads only the
    layers' ``trainable`` flags and the graph. ``model.layers`` of a functional model is
    in topological order, so a position ``i`` is a valid cut when no layer after ``i``
    reads the output of a layer before ``i``.
    """
    layers = list(model.layers)
    parents = parent_positions(layers)

    prefix_length = len(layers)
    for index, layer in enumerate(layers):
        if not is_frozen_and_deterministic(layer):
            prefix_length = index
            break

    # earliest_read[i]: the smallest position read by any layer at or after position i.
    earliest_read = [len(layers)] * (len(layers) + 1)
    for index in range(len(layers) - 1, -1, -1):
        earliest_read[index] = min([earliest_read[index + 1], *parents[index]])

    has_frozen_weights = False
    cut: str | None = None
    for index in range(prefix_length):
        layer = layers[index]
        has_frozen_weights = has_frozen_weights or bool(layer.weights)
        if has_frozen_weights and earliest_read[index + 1] >= index:
            cut = layer.name
    return cut
