"""LFN, the Lesion Feature Network: the study's compact CNN, trained from scratch.

The study published the network's parameter counts but not its convolutional trunk,
so the trunk below is a reconstruction that reproduces every published number exactly
at 300×300 and 7 classes: 315,520 trunk parameters ending in a 2,048-wide flatten,
1,368,199 parameters with the Dense-512 head and 1,630,855 with two Dense-512 layers.
docs/models.md explains how it was chosen.

Because the trunk is ours to choose, ``stem`` offers two faster trunks with the very
same parameters (docs/performance.md measures them): ``"strided"`` gives the first
convolution a stride of 2 instead of following it with a 2×2 max-pool, and
``"resnet"`` does what ResNet's stem does (a stride-2 7×7 convolution, then the
max-pool) and leaves the last stage unpooled, so the flatten is the same width. Both
keep every convolution, BatchNormalization and Dense layer, so the published counts
hold; what changes is where the downsampling happens and therefore the compute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from dermkit.errors import ConfigError
from dermkit.models import options
from dermkit.models.freezing import frozen_prefix_end
from dermkit.models.heads import INPUT_NAME, build_head

if TYPE_CHECKING:  # pragma: no cover
    import keras

LFN_TRUNK: tuple[tuple[int, int], ...] = (
    (7, 64),
    (3, 64),
    (3, 64),
    (3, 64),
    (3, 112),
    (3, 128),
)
"""(kernel size, filters) of the six stages; each is Conv (no bias) → BN → ReLU → MaxPool 2×2."""

LFN_MIN_INPUT = 2 ** len(LFN_TRUNK)
"""Six 2×2 poolings need at least 64 pixels to leave a 1×1 map."""


BN_MOMENTUM = 0.9

Stem = Literal["full", "strided", "resnet"]
STEMS: tuple[str, ...] = ("full", "strided", "resnet")

STEM_PADDING = ((2, 3), (2, 3))
"""Explicit padding of a stride-2 7×7 first convolution: the padding TensorFlow's
``"same"`` uses at even sizes, and at odd sizes an output of ``floor(size / 2)``, as
the 2×2 max-pool of the full stem gives, so every stem has the same map sizes (and
flatten width) at every input size."""


def _check_stem(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in STEMS:
        raise ConfigError(
            f"unknown stem {value!r}",
            where=f"model lfn, option {attribute.name}",
            hint=f"use one of {', '.join(STEMS)}",
        )


@attrs.frozen(slots=True)
class LFN:
    """The study's compact CNN: six conv stages, then Flatten → Dense 512 → softmax.

    ``dense`` and ``dropout`` describe the hidden Dense layers of the head (each Dense is
    followed by a Dropout of rate ``dropout`` when it is above 0); the study's attempt 4
    is ``dense=(512, 512), dropout=0.5``. ``extra_dropout`` is the study's attempt 3: one
    more Dropout, of rate ``extra_dropout_rate``, between the flattened features and
    the first Dense layer, where three quarters of the network's weights sit.
    ``pooling="avg"`` replaces the Flatten by global average pooling, which makes the
    parameter count independent of the input size (the study used Flatten).

    ``stem`` picks where the trunk downsamples (same parameters whichever):
    ``"full"`` (the reconstruction: the 7×7 convolution at full resolution, then a
    2×2 max-pool), ``"strided"`` (a stride-2 7×7 convolution, no pool in the first
    stage) or ``"resnet"`` (a stride-2 7×7 convolution and the pool, as ResNet's stem,
    with no pool after the last stage). ``fused_batchnorm`` trains BatchNormalization
    through TensorFlow's fused kernel (:mod:`dermkit.models.fused`), the same maths
    with fewer passes over memory; ``False`` builds Keras' own layer.
    """

    name: ClassVar[str] = "lfn"
    default_input_size: ClassVar[int] = 300

    dense: tuple[int, ...] = attrs.field(
        default=(512,), converter=options.to_widths, validator=options.check_widths
    )
    dropout: float = attrs.field(default=0.0, validator=options.check_rate)
    extra_dropout: bool = attrs.field(default=False, validator=options.check_bool)
    extra_dropout_rate: float = attrs.field(default=0.5, validator=options.check_rate)
    pooling: options.Pooling = attrs.field(default="flatten", validator=options.check_pooling)
    stem: Stem = attrs.field(default="full", validator=_check_stem)
    fused_batchnorm: bool = attrs.field(default=True, validator=options.check_bool)

    def build(self, num_classes: int, input_size: int | None = None) -> keras.Model:
        """A fresh, randomly initialised LFN for ``input_size``² RGB images in [0, 255]."""
        import keras
        from keras import layers

        from dermkit.models.preprocessing import ScaleToUnit

        size = self.default_input_size if input_size is None else input_size
        options.check_build_args(self.name, num_classes, size, LFN_MIN_INPUT)

        image = keras.Input(shape=(size, size, 3), dtype="float32", name=INPUT_NAME)
        x: Any = ScaleToUnit(name="scale_to_unit")(image)
        normalization = layers.BatchNormalization
        if self.fused_batchnorm:
            from dermkit.models.fused import FusedBatchNormalization

            normalization = FusedBatchNormalization
        last = len(LFN_TRUNK)
        for stage, (kernel, filters) in enumerate(LFN_TRUNK, start=1):
            strided = stage == 1 and self.stem != "full"
            if strided:
                x = layers.ZeroPadding2D(STEM_PADDING, name="stage1_pad")(x)
            x = layers.Conv2D(
                filters,
                kernel,
                strides=2 if strided else 1,
                padding="valid" if strided else "same",
                use_bias=False,
                name=f"stage{stage}_conv",
            )(x)
            # momentum 0.9 (Keras' default is 0.99): the moving statistics used at
            # inference then settle within tens of steps, not hundreds, so a short run
            # on a small dataset does not validate with stale statistics (which makes
            # the network predict a single class).
            x = normalization(momentum=BN_MOMENTUM, name=f"stage{stage}_bn")(x)
            x = layers.ReLU(name=f"stage{stage}_relu")(x)
            if self._pools(stage, last):
                x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        outputs = build_head(
            x,
            num_classes,
            pooling=self.pooling,
            dense=self.dense,
            dropout=self.dropout,
            input_dropout=self.extra_dropout_rate if self.extra_dropout else 0.0,
        )
        return keras.Model(image, outputs, name=self.name)

    def _pools(self, stage: int, last: int) -> bool:
        """Whether ``stage`` ends in a 2×2 max-pool: six halvings in all, whatever the stem."""
        if self.stem == "strided":
            return stage != 1
        if self.stem == "resnet":
            return stage != last
        return True

    def frozen_prefix_end(self, model: keras.Model) -> str | None:
        """``None`` for a model built here: LFN trains from scratch, nothing is frozen."""
        return frozen_prefix_end(model)
