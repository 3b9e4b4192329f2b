"""ImageNet backbones from ``keras.applications`` with the study's heads and freezing.

The backbone is built on top of dermkit's input and preprocessing layers (through
``input_tensor=``), so the finished model is one flat functional graph:
``image → preprocessing → backbone layers → head``. Every backbone layer is then a
top-level layer of the model, which keeps :meth:`frozen_prefix_end` a plain layer name
that ``model.get_layer`` understands, and lets a frozen-feature cache cut the model
anywhere without reaching into a nested sub-model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from dermkit.models import options
from dermkit.models.freezing import freeze_all_but_last, frozen_prefix_end, is_random_layer
from dermkit.models.heads import INPUT_NAME, OUTPUT_NAME, build_head
from dermkit.models.weights import load_backbone_weights, resolve_weights

if TYPE_CHECKING:  # pragma: no cover
    import keras


@attrs.frozen(slots=True)
class _Backbone:
    """How to build one ``keras.applications`` backbone."""

    application: str
    """Attribute of ``keras.applications`` that builds it."""
    preprocessing: str
    """Class in :mod:`dermkit.models.preprocessing` that does its input scaling."""
    min_input: int


_PREPROCESSING = "dermkit.models.preprocessing"

_BACKBONES: dict[str, _Backbone] = {
    "resnet50": _Backbone("ResNet50", "CaffeImageNet", 32),
    "inception_v3": _Backbone("InceptionV3", "ScaleToSymmetric", 75),
}


def _build(
    model: str,
    *,
    weights: str | None,
    trainable_layers: int,
    pooling: str,
    dense: tuple[int, ...],
    dropout: float,
    num_classes: int,
    input_size: int,
) -> keras.Model:
    import keras

    from dermkit.models import preprocessing

    spec = _BACKBONES[model]
    options.check_build_args(model, num_classes, input_size, spec.min_input)
    weights_path = resolve_weights(model, weights)  # fail on a bad path before building

    image = keras.Input(shape=(input_size, input_size, 3), dtype="float32", name=INPUT_NAME)
    preprocess_cls = getattr(preprocessing, spec.preprocessing)
    preprocess = preprocess_cls(name=f"{model}_preprocess")
    application: Callable[..., keras.Model] = getattr(keras.applications, spec.application)
    backbone = application(
        include_top=False,
        weights=None,
        input_tensor=preprocess(image),
        input_shape=(input_size, input_size, 3),
    )
    if weights_path is not None:
        load_backbone_weights(backbone, weights_path, model)

    own_layers = [
        layer
        for layer in backbone.layers
        if layer is not preprocess and not isinstance(layer, keras.layers.InputLayer)
    ]
    freeze_all_but_last(own_layers, trainable_layers, model=model)

    outputs = build_head(
        backbone.output, num_classes, pooling=pooling, dense=dense, dropout=dropout
    )
    return keras.Model(image, outputs, name=model)


def backbone_layers(model: keras.Model) -> list[Any]:
    """The backbone's own layers of a built model, in model order: no input, no
    preprocessing, no head; what ``trainable_layers`` = N counts back from.

    Stochastic-depth Dropout layers are left out: they have no weights, and counting
    them would change which layers ``trainable_layers`` = N names when they are added.
    """
    layers: list[Any] = []
    for layer in model.layers:
        if layer.name.startswith("head_") or layer.name == OUTPUT_NAME:
            break
        if type(layer).__name__ == "InputLayer" or type(layer).__module__ == _PREPROCESSING:
            continue
        if is_random_layer(layer):
            continue
        layers.append(layer)
    return layers


class BackboneFactory:
    """What every backbone factory with the study's options shares: build from the
    options, find the frozen prefix.

    ResNet50 and InceptionV3 differ only in their registry name, default input size and
    default head; another family (EfficientNet-Lite) overrides :meth:`network_builder`.
    """

    name: ClassVar[str]
    default_input_size: ClassVar[int]
    weights: str | None
    trainable_layers: int
    pooling: options.Pooling
    dense: tuple[int, ...]
    dropout: float

    def network_builder(self) -> Callable[..., keras.Model]:
        """The function that builds the network from the name and the options."""
        return _build

    def build(self, num_classes: int, input_size: int | None = None) -> keras.Model:
        return self.network_builder()(
            self.name,
            weights=self.weights,
            trainable_layers=self.trainable_layers,
            pooling=self.pooling,
            dense=self.dense,
            dropout=self.dropout,
            num_classes=num_classes,
            input_size=self.default_input_size if input_size is None else input_size,
            **self.build_options(),
        )

    def build_options(self) -> dict[str, Any]:
        """Options of this family's builder beyond the study's ones (none here)."""
        return {}

    def frozen_prefix_end(self, model: keras.Model) -> str | None:
        return frozen_prefix_end(model)

    def set_trainable_layers(self, model: keras.Model, trainable_layers: int) -> None:
        """Re-freeze a built or loaded model so that only its last N backbone layers train.

        What a later training stage uses to unfreeze more of the backbone; the head
        always trains. -1 trains the whole backbone.
        """
        freeze_all_but_last(backbone_layers(model), trainable_layers, model=self.name)


@attrs.frozen(slots=True)
class ResNet50(BackboneFactory):
    """ResNet50 (He et al. 2015) on ImageNet weights, with caffe-style preprocessing inside.

    ``trainable_layers`` = N trains the last N backbone layers and freezes the rest
    (0: the whole backbone is frozen, -1: nothing is). ``weights`` is ``"imagenet"``,
    a path to a weights file, or ``None`` for random initialisation. The defaults are
    the study's head (Flatten → Dense 256 → Dropout 0.4).
    """

    name: ClassVar[str] = "resnet50"
    default_input_size: ClassVar[int] = 224

    weights: str | None = attrs.field(default="imagenet", validator=options.check_weights)
    trainable_layers: int = attrs.field(default=0, validator=options.check_trainable_layers)
    pooling: options.Pooling = attrs.field(default="flatten", validator=options.check_pooling)
    dense: tuple[int, ...] = attrs.field(
        default=(256,), converter=options.to_widths, validator=options.check_widths
    )
    dropout: float = attrs.field(default=0.4, validator=options.check_rate)


@attrs.frozen(slots=True)
class InceptionV3(BackboneFactory):
    """InceptionV3 ("GoogLeNet" in the study) on ImageNet weights, input scaled to [-1, 1] inside.

    Options as for :class:`ResNet50`; the defaults are the study's head
    (Flatten → Dense 512 → Dropout 0.35) on a fully frozen backbone.
    """

    name: ClassVar[str] = "inception_v3"
    default_input_size: ClassVar[int] = 299

    weights: str | None = attrs.field(default="imagenet", validator=options.check_weights)
    trainable_layers: int = attrs.field(default=0, validator=options.check_trainable_layers)
    pooling: options.Pooling = attrs.field(default="flatten", validator=options.check_pooling)
    dense: tuple[int, ...] = attrs.field(
        default=(512,), converter=options.to_widths, validator=options.check_widths
    )
    dropout: float = attrs.field(default=0.35, validator=options.check_rate)
