"""The zoo's model factories: ``keras.applications`` backbones with dermkit's options.

A dermkit model factory is a small attrs class. Its fields are its options, so a run's
``config.json`` can re-create it; its ``name`` class attribute is the name it is
registered under; ``build(num_classes, input_size)`` returns a ``keras.Model`` that
takes raw RGB pixels in [0, 255]; ``frozen_prefix_end(model)`` says how much of the
model a frozen-feature cache may compute once. Everything below serves those four.

Every model is one flat functional graph: ``image`` → input scaling (if the backbone
needs it) → the backbone's own layers → head → ``probabilities``. The backbone is
built on dermkit's input through ``input_tensor=``, so its layers are top-level
layers of the model, which keeps the frozen prefix a plain layer name.

Importing this module does not import TensorFlow (``dermkit plugins`` stays fast):
Keras is imported inside :meth:`KerasApplication.build`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs
from dermkit import ConfigError
from dermkit.models.freezing import freeze_all_but_last, frozen_prefix_end
from dermkit.models.heads import INPUT_NAME, build_head

if TYPE_CHECKING:  # pragma: no cover
    import keras

    Attribute = attrs.Attribute[Any]

Scaling = Literal["builtin", "tf", "torch"]
"""What a backbone's ImageNet weights expect of raw [0, 255] RGB input.

``builtin``: the Keras model scales its input itself (EfficientNet, EfficientNetV2,
MobileNetV3, ConvNeXt), so dermkit adds nothing. ``tf``: [-1, 1] (Xception).
``torch``: [0, 1], minus the ImageNet mean, over its standard deviation (DenseNet).
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@attrs.frozen
class Backbone:
    """How to build one ``keras.applications`` backbone."""

    application: str
    """The function in ``keras.applications`` that builds it."""
    scaling: Scaling
    min_input: int
    """The smallest input size Keras accepts for it, in pixels."""
    imagenet_file: str
    """The file Keras downloads for ``weights="imagenet"``; named in the offline hint."""
    file_variance_is_std: bool = False
    """Keras' EfficientNet (v1) files store the ImageNet standard deviation where its
    ``Normalization`` layer expects the variance; Keras corrects for it with an extra
    layer only when built with ``weights="imagenet"`` (tensorflow/tensorflow#49930)."""


# ---------------------------------------------------------------------------- options
def _where(instance: object, attribute: Attribute) -> str:
    return f"model {getattr(instance, 'name', '?')}, option {attribute.name}"


def _check_weights(instance: object, attribute: Attribute, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(
            f"weights must be 'imagenet', a path to a weights file, or None, got {value!r}",
            where=_where(instance, attribute),
        )


def _check_trainable_layers(instance: object, attribute: Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ConfigError(
            f"trainable_layers must be an integer >= -1, got {value!r}",
            where=_where(instance, attribute),
            hint="0 freezes the whole backbone, N trains its last N layers, -1 trains all of it",
        )


def _check_pooling(instance: object, attribute: Attribute, value: object) -> None:
    if value not in ("flatten", "avg"):
        raise ConfigError(
            f"unknown pooling {value!r}",
            where=_where(instance, attribute),
            hint="use flatten or avg",
        )


def _to_widths(value: Iterable[int] | int) -> tuple[int, ...]:
    """``dense=512`` (command line), ``[512, 512]`` (JSON) and ``(512,)`` all mean what they say."""
    return (value,) if isinstance(value, int) else tuple(value)


def _check_widths(instance: object, attribute: Attribute, value: tuple[object, ...]) -> None:
    for width in value:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ConfigError(
                f"every dense width must be a positive integer, got {width!r}",
                where=_where(instance, attribute),
                hint="e.g. dense=512,512 or dense=[] for no hidden layer",
            )


def _check_rate(instance: object, attribute: Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ConfigError(
            f"dropout must be a number in [0, 1), got {value!r}", where=_where(instance, attribute)
        )


# ---------------------------------------------------------------------------- the factory
# --8<-- [start:factory]
@attrs.frozen
class KerasApplication:
    """A ``keras.applications`` backbone with a dermkit head, frozen except its last layers.

    The options are those of dermkit's built-in ``resnet50``:

    - ``weights``: ``"imagenet"`` (Keras downloads the file once), the path of a local
      weights file (the one Keras would download, or a ``.weights.h5`` saved from
      ``keras.applications.<Backbone>(include_top=False)``), or ``None`` (random start).
    - ``trainable_layers``: N trains the backbone's last N layers; 0 freezes all of it,
      -1 none of it.
    - ``pooling`` (``"avg"`` or ``"flatten"``), ``dense`` (hidden widths) and
      ``dropout``: the head. Average pooling is the default here because these
      backbones end in wide feature maps that a Flatten would turn into a huge layer.
    """

    name: ClassVar[str]
    default_input_size: ClassVar[int]
    backbone: ClassVar[Backbone]

    weights: str | None = attrs.field(default="imagenet", validator=_check_weights)
    trainable_layers: int = attrs.field(default=0, validator=_check_trainable_layers)
    pooling: Literal["flatten", "avg"] = attrs.field(default="avg", validator=_check_pooling)
    dense: tuple[int, ...] = attrs.field(
        default=(256,), converter=_to_widths, validator=_check_widths
    )
    dropout: float = attrs.field(default=0.4, validator=_check_rate)

    def build(self, num_classes: int, input_size: int | None = None) -> keras.Model:
        import keras

        size = self.default_input_size if input_size is None else input_size
        self._check_sizes(num_classes, size)
        weights = self._weights_argument()  # a bad path fails here, before any building

        image = keras.Input(shape=(size, size, 3), dtype="float32", name=INPUT_NAME)
        scale = _scaling_layer(self.backbone.scaling, f"{self.name}_preprocess")
        application = getattr(keras.applications, self.backbone.application)
        try:
            backbone = application(
                include_top=False,
                weights=weights,
                input_tensor=image if scale is None else scale(image),
                input_shape=(size, size, 3),
            )
        except Exception as error:
            if weights is None:
                raise
            raise self._weights_error(weights, error) from error
        if weights not in (None, "imagenet") and self.backbone.file_variance_is_std:
            _square_stem_variance(backbone)

        own_layers = [
            layer
            for layer in backbone.layers
            if layer is not scale and not isinstance(layer, keras.layers.InputLayer)
        ]
        freeze_all_but_last(own_layers, self.trainable_layers, model=self.name)
        head = build_head(
            backbone.output,
            num_classes,
            pooling=self.pooling,
            dense=self.dense,
            dropout=self.dropout,
        )
        return keras.Model(image, head, name=self.name)

    def frozen_prefix_end(self, model: keras.Model) -> str | None:
        """The last layer a frozen-feature cache may compute once per image.

        dermkit's own rule decides: the prefix ends before the first layer with
        trainable weights or with randomness. EfficientNet and EfficientNetV2 keep
        stochastic-depth Dropout layers in their blocks, which Keras keeps random in
        training even when frozen, so their prefix ends at block 1b or 2b; DenseNet,
        MobileNetV3, ConvNeXt and Xception have no such layers.
        """
        return frozen_prefix_end(model)

    # --8<-- [end:factory]
    # ------------------------------------------------------------------ helpers
    def _check_sizes(self, num_classes: int, size: int) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ConfigError(
                f"num_classes must be an integer >= 2, got {num_classes!r}",
                where=f"model {self.name}",
            )
        if isinstance(size, bool) or not isinstance(size, int) or size < self.backbone.min_input:
            raise ConfigError(
                f"input size {size!r} is too small",
                where=f"model {self.name}",
                hint=f"{self.name} needs images of at least {self.backbone.min_input} pixels",
            )

    def _weights_argument(self) -> str | None:
        if self.weights in (None, "imagenet"):
            return self.weights
        path = Path(self.weights).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"weights file {str(path)!r} does not exist",
                where=f"model {self.name}, option weights",
                hint=f"pass an existing file, e.g. weights=/path/to/{self.backbone.imagenet_file}",
            )
        return str(path)

    def _weights_error(self, weights: str, error: Exception) -> ConfigError:
        reason = f"{type(error).__name__}: {error}"
        if weights == "imagenet":
            return ConfigError(
                f"could not download the ImageNet weights of {self.name} ({reason})",
                where=f"model {self.name}, option weights",
                hint=(
                    f"offline, copy {self.backbone.imagenet_file} from a machine with network "
                    f"access (Keras keeps it in ~/.keras/models) and pass weights=/path/to/it, "
                    f"or weights=none to start from random weights"
                ),
            )
        return ConfigError(
            f"could not load weights file {weights!r} ({reason})",
            where=f"model {self.name}, option weights",
            hint=(
                f"the file must hold keras.applications.{self.backbone.application} without its "
                f"top, e.g. {self.backbone.imagenet_file}"
            ),
        )


# --8<-- [start:scaling]
def _scaling_layer(scaling: Scaling, name: str) -> keras.layers.Layer | None:
    """The input scaling as a plain Keras layer: it saves, and loads in safe mode, as is."""
    from keras import layers

    if scaling == "tf":  # x / 127.5 - 1
        return layers.Rescaling(scale=1 / 127.5, offset=-1.0, name=name)
    if scaling == "torch":  # (x / 255 - mean) / std, written as Keras' own ConvNeXt does
        return layers.Normalization(
            mean=[255 * m for m in IMAGENET_MEAN],
            variance=[(255 * s) ** 2 for s in IMAGENET_STD],
            name=name,
        )
    return None


def _square_stem_variance(backbone: keras.Model) -> None:
    """Make a weights file's stored standard deviation the variance Normalization expects."""
    import keras
    import numpy as np

    stem = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))
    mean, std, count = stem.get_weights()
    stem.set_weights([mean, np.square(std), count])
    stem.finalize_state()  # Normalization reads its weights into constants; refresh them


# --8<-- [end:scaling]


# ---------------------------------------------------------------------------- the zoo
# --8<-- [start:densenet]
@attrs.frozen
class DenseNet121(KerasApplication):
    """DenseNet-121 (Huang et al., 2017); its ImageNet weights expect "torch" scaling."""

    name: ClassVar[str] = "densenet121"
    default_input_size: ClassVar[int] = 224
    backbone: ClassVar[Backbone] = Backbone(
        "DenseNet121", "torch", 32, "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )


# --8<-- [end:densenet]


@attrs.frozen
class EfficientNetB0(KerasApplication):
    """EfficientNet-B0 (Tan and Le, 2019); scales its own input."""

    name: ClassVar[str] = "efficientnet_b0"
    default_input_size: ClassVar[int] = 224
    backbone: ClassVar[Backbone] = Backbone(
        "EfficientNetB0", "builtin", 32, "efficientnetb0_notop.h5", file_variance_is_std=True
    )


@attrs.frozen
class EfficientNetB1(KerasApplication):
    """EfficientNet-B1; scales its own input."""

    name: ClassVar[str] = "efficientnet_b1"
    default_input_size: ClassVar[int] = 240
    backbone: ClassVar[Backbone] = Backbone(
        "EfficientNetB1", "builtin", 32, "efficientnetb1_notop.h5", file_variance_is_std=True
    )


@attrs.frozen
class EfficientNetB2(KerasApplication):
    """EfficientNet-B2; scales its own input."""

    name: ClassVar[str] = "efficientnet_b2"
    default_input_size: ClassVar[int] = 260
    backbone: ClassVar[Backbone] = Backbone(
        "EfficientNetB2", "builtin", 32, "efficientnetb2_notop.h5", file_variance_is_std=True
    )


@attrs.frozen
class EfficientNetB3(KerasApplication):
    """EfficientNet-B3; scales its own input."""

    name: ClassVar[str] = "efficientnet_b3"
    default_input_size: ClassVar[int] = 300
    backbone: ClassVar[Backbone] = Backbone(
        "EfficientNetB3", "builtin", 32, "efficientnetb3_notop.h5", file_variance_is_std=True
    )


@attrs.frozen
class EfficientNetV2B0(KerasApplication):
    """EfficientNetV2-B0 (Tan and Le, 2021); scales its own input."""

    name: ClassVar[str] = "efficientnet_v2_b0"
    default_input_size: ClassVar[int] = 224
    backbone: ClassVar[Backbone] = Backbone(
        "EfficientNetV2B0", "builtin", 32, "efficientnetv2-b0_notop.h5"
    )


@attrs.frozen
class EfficientNetV2S(KerasApplication):
    """EfficientNetV2-S; scales its own input."""

    name: ClassVar[str] = "efficientnet_v2_s"
    default_input_size: ClassVar[int] = 384
    backbone: ClassVar[Backbone] = Backbone(
        "EfficientNetV2S", "builtin", 32, "efficientnetv2-s_notop.h5"
    )


@attrs.frozen
class MobileNetV3Large(KerasApplication):
    """MobileNetV3-Large (Howard et al., 2019); scales its own input."""

    name: ClassVar[str] = "mobilenet_v3_large"
    default_input_size: ClassVar[int] = 224
    backbone: ClassVar[Backbone] = Backbone(
        "MobileNetV3Large", "builtin", 32, "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"
    )


@attrs.frozen
class ConvNeXtTiny(KerasApplication):
    """ConvNeXt-Tiny (Liu et al., 2022); scales its own input."""

    name: ClassVar[str] = "convnext_tiny"
    default_input_size: ClassVar[int] = 224
    backbone: ClassVar[Backbone] = Backbone("ConvNeXtTiny", "builtin", 32, "convnext_tiny_notop.h5")


@attrs.frozen
class Xception(KerasApplication):
    """Xception (Chollet, 2017); its ImageNet weights expect "tf" scaling to [-1, 1]."""

    name: ClassVar[str] = "xception"
    default_input_size: ClassVar[int] = 299
    backbone: ClassVar[Backbone] = Backbone(
        "Xception", "tf", 71, "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )


ZOO: tuple[type[KerasApplication], ...] = (
    DenseNet121,
    EfficientNetB0,
    EfficientNetB1,
    EfficientNetB2,
    EfficientNetB3,
    EfficientNetV2B0,
    EfficientNetV2S,
    MobileNetV3Large,
    ConvNeXtTiny,
    Xception,
)
"""Every model the zoo registers."""
