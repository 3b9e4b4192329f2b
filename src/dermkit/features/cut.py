"""Split a functional Keras model into a frozen prefix and a trainable tail.

The tail is built from the *same layer objects* as the model, called on new inputs
that stand for the cut tensors. Fitting the tail therefore trains the model itself:
after training on cached activations, ``cut.model`` is the finished network, ready to
be saved and to predict from raw pixels, with no weights copied anywhere.

The factory names a single-tensor cut (``frozen_prefix_end``: a block output every
later layer depends on alone). Frozen layers often follow it: in ResNet50 with its last
4 layers trainable, the cut is ``conv5_block2_out`` but two of the three convolutions
of ``conv5_block3`` are frozen too, and they cost five times what the trainable tail
does. :func:`split_at` therefore pushes the cut forward through every frozen,
deterministic layer after it and caches the *frontier*: each prefix tensor a tail
layer reads (there, ``conv5_block3_2_relu`` and the shortcut ``conv5_block2_out``).
Several tensors are stored flattened side by side, one vector per image and view.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from dermkit.errors import ConfigError
from dermkit.models.freezing import is_frozen_and_deterministic, parent_positions

if TYPE_CHECKING:  # pragma: no cover
    import keras


@attrs.frozen
class ModelCut:
    """``model`` split after layer ``layer``: ``prefix`` maps pixels to the cut
    activations, ``tail`` maps those activations to the model's output; both share
    ``model``'s layers. With several frontier tensors (``frontier`` names their layers)
    ``prefix`` still returns one array, the tensors flattened side by side, and ``tail``
    takes that array."""

    model: Any
    layer: str
    prefix: Any
    tail: Any
    frontier: tuple[str, ...] = ()

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one image's activations at the cut (no batch axis)."""
        return tuple(int(d) for d in self.prefix.output.shape[1:])


def split_at(model: keras.Model, layer: str) -> ModelCut:
    """Cut ``model`` after ``layer`` (a name from ``ModelFactory.frozen_prefix_end``),
    pushed forward through the frozen, deterministic layers that follow it.

    Raises :class:`ConfigError` when the layer is unknown or when the model cannot be
    cut there (a layer with several outputs, or a graph Keras cannot split).
    """
    import keras

    layers = list(model.layers)
    names = [item.name for item in layers]
    if layer not in names:
        raise ConfigError(
            f"the model has no layer {layer!r} to cut at",
            where=f"model {model.name}",
            hint="frozen_prefix_end must name one of the model's top-level layers",
        )
    start = names.index(layer)
    end, frontier = _pushed_cut(model, layers, start)
    tensors = [layers[index].output for index in frontier]
    if any(isinstance(t, (list, tuple)) for t in tensors):
        raise ConfigError(
            f"a layer at the cut after {layers[end].name!r} has several outputs",
            where=f"model {model.name}",
        )
    try:
        if len(tensors) == 1:
            prefix = keras.Model(model.inputs, tensors[0], name=f"{model.name}_prefix")
            tail = keras.Model(tensors[0], model.outputs, name=f"{model.name}_tail")
            return ModelCut(model=model, layer=layers[end].name, prefix=prefix, tail=tail)
        shapes = [tuple(int(d) for d in t.shape[1:]) for t in tensors]
        flat = keras.layers.Concatenate(axis=-1)([keras.layers.Flatten()(t) for t in tensors])
        prefix = keras.Model(model.inputs, flat, name=f"{model.name}_prefix")
        inner = keras.Model(tensors, model.outputs)
        stacked = keras.Input(shape=(sum(math.prod(s) for s in shapes),), name="frontier")
        tail = keras.Model(stacked, inner(_unflatten(stacked, shapes)), name=f"{model.name}_tail")
    except ValueError as error:
        raise ConfigError(
            f"the model cannot be cut after {layers[end].name!r}: {error}",
            where=f"model {model.name}",
            hint="cut at a block output that every later layer depends on alone",
        ) from None
    return ModelCut(
        model=model,
        layer=layers[end].name,
        prefix=prefix,
        tail=tail,
        frontier=tuple(layers[index].name for index in frontier),
    )


def _pushed_cut(model: Any, layers: list[Any], start: int) -> tuple[int, list[int]]:
    """The last position of the pushed-forward prefix and its frontier's positions.

    Falls back to the factory's own single-tensor cut at ``start`` when the frontier
    would include the model's input (a later layer reading raw pixels).
    """
    outputs = {id(t) for t in model.outputs}
    end = start
    while (
        end + 1 < len(layers)
        and is_frozen_and_deterministic(layers[end + 1])
        and id(layers[end + 1].output) not in outputs
    ):
        end += 1
    read_after_end = {p for parents in parent_positions(layers)[end + 1 :] for p in parents}
    frontier = [i for i in range(end + 1) if i == end or i in read_after_end]
    inputs = {id(t) for t in model.inputs}
    if any(id(layers[i].output) in inputs for i in frontier):
        return start, [start]
    return end, frontier


def _unflatten(stacked: Any, shapes: list[tuple[int, ...]]) -> list[Any]:
    """The frontier tensors back from their flattened concatenation."""
    import keras

    parts, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        parts.append(keras.layers.Reshape(shape)(stacked[:, start : start + size]))
        start += size
    return parts
