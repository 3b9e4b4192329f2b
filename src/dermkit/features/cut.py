"""Split a functional Keras model at a layer into a frozen prefix and a trainable tail.

The tail is built from the *same layer objects* as the model, called on a new input
that stands for the cut tensor. Fitting the tail therefore trains the model itself:
after training on cached activations, ``cut.model`` is the finished network, ready to
be saved and to predict from raw pixels, with no weights copied anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from dermkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import keras


@attrs.frozen
class ModelCut:
    """``model`` split at layer ``layer``: ``prefix`` maps pixels to the cut activations,
    ``tail`` maps those activations to the model's output; both share ``model``'s layers."""

    model: Any
    layer: str
    prefix: Any
    tail: Any

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one image's activations at the cut (no batch axis)."""
        return tuple(int(d) for d in self.prefix.output.shape[1:])


def split_at(model: keras.Model, layer: str) -> ModelCut:
    """Cut ``model`` after ``layer`` (a name from ``ModelFactory.frozen_prefix_end``).

    Raises :class:`ConfigError` when the layer is unknown or when a layer after the cut
    reads a tensor from before it (a residual shortcut across the cut), because then
    the cached activations alone could not feed the tail.
    """
    import keras

    try:
        cut_tensor = model.get_layer(layer).output
    except ValueError:
        raise ConfigError(
            f"the model has no layer {layer!r} to cut at",
            where=f"model {model.name}",
            hint="frozen_prefix_end must name one of the model's top-level layers",
        ) from None
    if isinstance(cut_tensor, (list, tuple)):
        raise ConfigError(
            f"layer {layer!r} has several outputs and cannot be a cut point",
            where=f"model {model.name}",
        )
    prefix = keras.Model(model.inputs, cut_tensor, name=f"{model.name}_prefix")
    try:
        tail = keras.Model(cut_tensor, model.outputs, name=f"{model.name}_tail")
    except ValueError as error:
        raise ConfigError(
            f"the model cannot be cut after {layer!r}: {error}",
            where=f"model {model.name}",
            hint="cut at a block output that every later layer depends on alone",
        ) from None
    return ModelCut(model=model, layer=layer, prefix=prefix, tail=tail)
