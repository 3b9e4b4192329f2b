"""EfficientNet-Lite0 to Lite4: EfficientNet-B0's design, made for CPUs and small devices.

Lite is EfficientNet without squeeze-and-excitation, with ReLU6 instead of swish, and
with the stem (32 channels) and the head convolution (1280 channels) kept fixed when
the network is scaled. One builder makes all five from the family's width, depth and
resolution multipliers, exactly as the original code scales them (channels rounded to
multiples of 8 by ``round_filters``, repeats rounded up, the first and last stage keep
one block), so that the ImageNet weights of Lite0, Lite1 and Lite2 (PyTorch tensors
saved as ``.npz``; see :mod:`dermkit.models.lite_weights`) load into it unchanged.

The model is one flat functional graph, like the ResNet50 of
:mod:`dermkit.models.applications`: ``image → CenterAt127 → stem → blocks → top →
head``, every layer top-level. Layer names say where a layer sits (``block7_add``,
``block15_project_bn``, ``top_relu``) and block numbers are the original's
(``_blocks.7`` is ``block7_*``), so a block output is easy to name as a cut point for
:func:`~dermkit.models.freezing.frozen_prefix_end`. The 1×1 convolution before pooling
is ``top_conv`` (Keras' EfficientNet name), not ``head_conv``: ``head_*`` names belong
to the classification head of :func:`~dermkit.models.heads.build_head`.

Padding is Keras' ``"same"``, which is TensorFlow's: a stride-2 convolution pads one
pixel more at the bottom and right when the total is odd. The original PyTorch port
pads the same way (``Conv2dStaticSamePadding``), and the exactness test against its
outputs would fail with symmetric padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from dermkit.errors import ConfigError
from dermkit.models import lite_weights, options
from dermkit.models.applications import BackboneFactory, backbone_layers
from dermkit.models.freezing import freeze_all_but_last
from dermkit.models.heads import INPUT_NAME, build_head

if TYPE_CHECKING:  # pragma: no cover
    import keras

STEM_CHANNELS = 32
TOP_CHANNELS = 1280
BN_EPSILON = 1e-3
"""The original's BatchNormalization epsilon (Keras' default is also 1e-3; PyTorch's is not)."""
CHANNEL_DIVISOR = 8
MIN_INPUT = 32
"""Five stride-2 steps take 32 pixels to a 1×1 feature map."""
PREPROCESS_NAME = "lite_preprocess"
IMAGENET_CLASSES = 1000


@attrs.frozen(slots=True)
class Stage:
    """One row of EfficientNet-B0's block table, before scaling."""

    repeats: int
    kernel: int
    stride: int
    expansion: int
    out_channels: int


BASE_STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)
"""The stages of Lite0 (= EfficientNet-B0's, without squeeze-and-excitation)."""


@attrs.frozen(slots=True)
class Variant:
    """How one member of the family scales the base network."""

    name: str
    width: float
    depth: float
    resolution: int
    dropout: float
    """The original classifier's dropout rate before its final Dense layer."""


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant("efficientnet_lite0", 1.0, 1.0, 224, 0.2),
        Variant("efficientnet_lite1", 1.0, 1.1, 240, 0.2),
        Variant("efficientnet_lite2", 1.1, 1.2, 260, 0.3),
        Variant("efficientnet_lite3", 1.2, 1.4, 280, 0.3),
        Variant("efficientnet_lite4", 1.4, 1.8, 300, 0.3),
    )
}


def round_filters(filters: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """The original ``round_filters``: scale, round to a multiple of ``divisor``, never
    lose more than 10% (then round up one step instead)."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    return math.ceil(depth * repeats)


@attrs.frozen(slots=True)
class Block:
    """One MBConv block of a scaled network, numbered as in the original (``_blocks.N``)."""

    index: int
    kernel: int
    stride: int
    expansion: int
    in_channels: int
    out_channels: int

    @property
    def has_skip(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    @property
    def output_name(self) -> str:
        """The layer whose output is the block's output (the cut point after this block)."""
        return f"block{self.index}_add" if self.has_skip else f"block{self.index}_project_bn"


def blocks(variant: Variant) -> tuple[Block, ...]:
    """Every block of ``variant`` in order: the block table of the weights README."""
    found: list[Block] = []
    in_channels = STEM_CHANNELS
    last = len(BASE_STAGES) - 1
    for position, stage in enumerate(BASE_STAGES):
        out_channels = round_filters(stage.out_channels, variant.width)
        keep = position in (0, last)
        repeats = stage.repeats if keep else round_repeats(stage.repeats, variant.depth)
        for repeat in range(repeats):
            found.append(
                Block(
                    index=len(found),
                    kernel=stage.kernel,
                    stride=stage.stride if repeat == 0 else 1,
                    expansion=stage.expansion,
                    in_channels=in_channels,
                    out_channels=out_channels,
                )
            )
            in_channels = out_channels
    return tuple(found)


def torch_names(variant: Variant) -> dict[str, str]:
    """Keras layer name → prefix of its tensors in the original PyTorch state dict."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0"}
    for block in blocks(variant):
        keras_prefix, torch_prefix = f"block{block.index}", f"_blocks.{block.index}"
        if block.expansion != 1:
            names[f"{keras_prefix}_expand_conv"] = f"{torch_prefix}._expand_conv"
            names[f"{keras_prefix}_expand_bn"] = f"{torch_prefix}._bn0"
        names[f"{keras_prefix}_depthwise_conv"] = f"{torch_prefix}._depthwise_conv"
        names[f"{keras_prefix}_depthwise_bn"] = f"{torch_prefix}._bn1"
        names[f"{keras_prefix}_project_conv"] = f"{torch_prefix}._project_conv"
        names[f"{keras_prefix}_project_bn"] = f"{torch_prefix}._bn2"
    names["top_conv"] = "_conv_head"
    names["top_bn"] = "_bn1"
    return names


IMAGENET_LOGITS = "imagenet_logits"
"""Name of the 1000-way Dense layer of :func:`imagenet_classifier` (PyTorch ``_fc``)."""


def _conv_initializer() -> Any:
    """The original's convolution initialiser: normal, variance 2 / fan-out.

    Keras' default (Glorot) shrinks the signal in every layer; through 50 layers whose
    BatchNormalization is frozen at its initial statistics (``weights=None`` with a
    frozen prefix) activations fell to about 1e-10, so the frozen prefix produced
    nothing a tail could learn from.
    """
    import keras

    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="normal")


def _conv_bn(x: Any, filters: int, kernel: int, stride: int, name: str, *, relu: bool) -> Any:
    from keras import layers

    x = layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer=_conv_initializer(),
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _mbconv(x: Any, block: Block, drop_rate: float = 0.0) -> Any:
    from keras import layers

    name = f"block{block.index}"
    inputs = x
    if block.expansion != 1:
        x = _conv_bn(x, block.in_channels * block.expansion, 1, 1, f"{name}_expand", relu=True)
    x = layers.DepthwiseConv2D(
        block.kernel,
        strides=block.stride,
        padding="same",
        depthwise_initializer=_conv_initializer(),
        use_bias=False,
        name=f"{name}_depthwise_conv",
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_depthwise_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_depthwise_relu")(x)
    x = _conv_bn(x, block.out_channels, 1, 1, f"{name}_project", relu=False)
    if block.has_skip:
        if drop_rate > 0:
            # Stochastic depth ("drop connect" in the original code): in training, drop
            # the whole residual branch of an image with probability ``drop_rate``.
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def build_features(
    image: Any, variant: Variant, drop_rates: Mapping[int, float] | None = None
) -> Any:
    """``image`` (raw [0, 255] RGB) → preprocessing → stem → blocks → top: the feature map.

    ``drop_rates`` maps block numbers to their stochastic-depth rate (none by default).
    """
    from dermkit.models.preprocessing import CenterAt127

    rates = drop_rates or {}
    x = CenterAt127(name=PREPROCESS_NAME)(image)
    x = _conv_bn(x, STEM_CHANNELS, 3, 2, "stem", relu=True)
    for block in blocks(variant):
        x = _mbconv(x, block, rates.get(block.index, 0.0))
    return _conv_bn(x, TOP_CHANNELS, 1, 1, "top", relu=True)


def drop_connect_rates(
    variant: Variant, drop_connect: float, trainable_blocks: Iterable[int]
) -> dict[int, float]:
    """Stochastic-depth rate of each trainable residual block, as the original scales it:
    ``drop_connect`` × block number / number of blocks, so deeper blocks drop more.

    Only trainable blocks get one. A Dropout layer in the frozen part would end the
    frozen prefix there (it is random in training), and frozen-feature caching could
    no longer skip the frozen blocks.
    """
    every = blocks(variant)
    wanted = set(trainable_blocks)
    return {
        block.index: drop_connect * block.index / len(every)
        for block in every
        if block.has_skip and block.index in wanted and drop_connect > 0
    }


def _trainable_blocks(variant: Variant, trainable_layers: int, input_size: int) -> list[int]:
    """Numbers of the blocks with a trainable layer once the last ``trainable_layers``
    backbone layers train: read off a throwaway build of the same network."""
    import keras

    image = keras.Input(shape=(input_size, input_size, 3), dtype="float32")
    probe = keras.Model(image, build_features(image, variant))
    layers = backbone_layers(probe)
    freeze_all_but_last(layers, trainable_layers, model=variant.name)
    return [
        block.index
        for block in blocks(variant)
        if probe.get_layer(f"block{block.index}_project_bn").trainable
    ]


def _variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown EfficientNet-Lite variant {name!r}",
            hint=f"use one of {', '.join(VARIANTS)}",
        ) from None


def build_lite(
    name: str,
    *,
    weights: str | None,
    trainable_layers: int,
    pooling: str,
    dense: tuple[int, ...],
    dropout: float,
    num_classes: int,
    input_size: int,
    drop_connect: float = 0.0,
) -> keras.Model:
    """One Lite model with dermkit's head; the options are those of :class:`EfficientNetLite0`."""
    import keras

    variant = _variant(name)
    options.check_build_args(name, num_classes, input_size, MIN_INPUT)
    weights_path = lite_weights.resolve(name, weights)  # fail on a bad path before building

    rates: dict[int, float] = {}
    if drop_connect > 0 and trainable_layers != 0:
        trainable = _trainable_blocks(variant, trainable_layers, input_size)
        rates = drop_connect_rates(variant, drop_connect, trainable)
    image = keras.Input(shape=(input_size, input_size, 3), dtype="float32", name=INPUT_NAME)
    features = build_features(image, variant, rates)
    # The original classifier is pooling → Dropout → Dense: ``dropout`` goes before the
    # first Dense layer, and after each hidden one when ``dense`` asks for any.
    outputs = build_head(
        features,
        num_classes,
        pooling=pooling,
        dense=dense,
        dropout=dropout,
        input_dropout=dropout,
    )
    model = keras.Model(image, outputs, name=name)
    if weights_path is not None:
        lite_weights.load(model, weights_path, torch_names(variant), model_name=name)
    freeze_all_but_last(backbone_layers(model), trainable_layers, model=name)
    return model


def imagenet_classifier(
    name: str = "efficientnet_lite0",
    weights: str | None = "imagenet",
    input_size: int | None = None,
) -> keras.Model:
    """The original ImageNet network, to check a port or a weights file.

    Outputs a dict: ``features`` (the 1280 pooled features) and ``logits`` (the 1000
    ImageNet class scores of the original ``_fc`` layer, before softmax), for raw
    [0, 255] RGB input. Without dropout: this model is for inference. It is not a
    dermkit factory (those end in a ``probabilities`` softmax over the task's classes).
    """
    import keras
    from keras import layers

    variant = _variant(name)
    size = variant.resolution if input_size is None else input_size
    options.check_build_args(name, IMAGENET_CLASSES, size, MIN_INPUT)
    weights_path = lite_weights.resolve(name, weights)

    image = keras.Input(shape=(size, size, 3), dtype="float32", name=INPUT_NAME)
    pooled = layers.GlobalAveragePooling2D(name="avg_pool")(build_features(image, variant))
    logits = layers.Dense(IMAGENET_CLASSES, dtype="float32", name=IMAGENET_LOGITS)(pooled)
    model = keras.Model(image, {"features": pooled, "logits": logits}, name=f"{name}_imagenet")
    if weights_path is not None:
        layer_names = {**torch_names(variant), IMAGENET_LOGITS: "_fc"}
        lite_weights.load(model, weights_path, layer_names, model_name=name)
    return model


class _LiteFactory(BackboneFactory):
    """What the five factories share; they differ in name, input size and dropout."""

    drop_connect: float

    def network_builder(self) -> Callable[..., keras.Model]:
        return build_lite

    def build_options(self) -> dict[str, Any]:
        return {"drop_connect": self.drop_connect}


@attrs.frozen(slots=True)
class EfficientNetLite0(_LiteFactory):
    """EfficientNet-Lite0 (224×224) on ImageNet weights, input normalised inside.

    ``weights`` is ``"imagenet"`` (the file ``efficientnet_lite0_imagenet.npz`` from the
    folder in ``DERMKIT_WEIGHTS`` or the Keras cache), a path to such an ``.npz`` file,
    or ``None``. ``trainable_layers`` = N trains the last N backbone layers (0: frozen,
    -1: all). The default head is the original classifier's: average pooling →
    Dropout → Dense softmax, with no hidden layer (``dense=()``); ``dropout`` is the
    rate of that Dropout and of one after each hidden Dense layer ``dense`` adds.
    ``drop_connect`` > 0 adds stochastic depth to the trainable residual blocks (the
    original trained with 0.2): a regulariser for the blocks that learn from few images;
    0, the default, leaves the network exactly the original.
    """

    name: ClassVar[str] = "efficientnet_lite0"
    default_input_size: ClassVar[int] = 224

    weights: str | None = attrs.field(default="imagenet", validator=options.check_weights)
    trainable_layers: int = attrs.field(default=0, validator=options.check_trainable_layers)
    pooling: options.Pooling = attrs.field(default="avg", validator=options.check_pooling)
    dense: tuple[int, ...] = attrs.field(
        default=(), converter=options.to_widths, validator=options.check_widths
    )
    dropout: float = attrs.field(default=0.2, validator=options.check_rate)
    drop_connect: float = attrs.field(default=0.0, validator=options.check_rate)


@attrs.frozen(slots=True)
class EfficientNetLite1(_LiteFactory):
    """EfficientNet-Lite1 (240×240); options as for :class:`EfficientNetLite0`."""

    name: ClassVar[str] = "efficientnet_lite1"
    default_input_size: ClassVar[int] = 240

    weights: str | None = attrs.field(default="imagenet", validator=options.check_weights)
    trainable_layers: int = attrs.field(default=0, validator=options.check_trainable_layers)
    pooling: options.Pooling = attrs.field(default="avg", validator=options.check_pooling)
    dense: tuple[int, ...] = attrs.field(
        default=(), converter=options.to_widths, validator=options.check_widths
    )
    dropout: float = attrs.field(default=0.2, validator=options.check_rate)
    drop_connect: float = attrs.field(default=0.0, validator=options.check_rate)


@attrs.frozen(slots=True)
class EfficientNetLite2(_LiteFactory):
    """EfficientNet-Lite2 (260×260, head dropout 0.3); options as for :class:`EfficientNetLite0`."""

    name: ClassVar[str] = "efficientnet_lite2"
    default_input_size: ClassVar[int] = 260

    weights: str | None = attrs.field(default="imagenet", validator=options.check_weights)
    trainable_layers: int = attrs.field(default=0, validator=options.check_trainable_layers)
    pooling: options.Pooling = attrs.field(default="avg", validator=options.check_pooling)
    dense: tuple[int, ...] = attrs.field(
        default=(), converter=options.to_widths, validator=options.check_widths
    )
    dropout: float = attrs.field(default=0.3, validator=options.check_rate)
    drop_connect: float = attrs.field(default=0.0, validator=options.check_rate)


@attrs.frozen(slots=True)
class EfficientNetLite3(_LiteFactory):
    """EfficientNet-Lite3 (280×280); no ImageNet weights here, so ``weights=None`` by default."""

    name: ClassVar[str] = "efficientnet_lite3"
    default_input_size: ClassVar[int] = 280

    weights: str | None = attrs.field(default=None, validator=options.check_weights)
    trainable_layers: int = attrs.field(default=-1, validator=options.check_trainable_layers)
    pooling: options.Pooling = attrs.field(default="avg", validator=options.check_pooling)
    dense: tuple[int, ...] = attrs.field(
        default=(), converter=options.to_widths, validator=options.check_widths
    )
    dropout: float = attrs.field(default=0.3, validator=options.check_rate)
    drop_connect: float = attrs.field(default=0.0, validator=options.check_rate)


@attrs.frozen(slots=True)
class EfficientNetLite4(_LiteFactory):
    """EfficientNet-Lite4 (300×300); no ImageNet weights here, so ``weights=None`` by default."""

    name: ClassVar[str] = "efficientnet_lite4"
    default_input_size: ClassVar[int] = 300

    weights: str | None = attrs.field(default=None, validator=options.check_weights)
    trainable_layers: int = attrs.field(default=-1, validator=options.check_trainable_layers)
    pooling: options.Pooling = attrs.field(default="avg", validator=options.check_pooling)
    dense: tuple[int, ...] = attrs.field(
        default=(), converter=options.to_widths, validator=options.check_widths
    )
    dropout: float = attrs.field(default=0.3, validator=options.check_rate)
    drop_connect: float = attrs.field(default=0.0, validator=options.check_rate)


FACTORIES: dict[str, type[_LiteFactory]] = {
    factory.name: factory
    for factory in (
        EfficientNetLite0,
        EfficientNetLite1,
        EfficientNetLite2,
        EfficientNetLite3,
        EfficientNetLite4,
    )
}
"""Every Lite factory by its registered name."""
