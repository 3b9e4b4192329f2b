"""The generator and the projection discriminator: small SNGAN/BigGAN-style ResNets.

Generator: ``z`` → spectrally normalised dense → 4×4 map → one residual up-sampling
block per doubling of the resolution (class-conditional BatchNorm → ReLU → nearest
up-sampling → 3×3 conv → CBN → ReLU → 3×3 conv, plus a 1×1-conv, up-sampled shortcut) → CBN →
ReLU → 3×3 conv to RGB → tanh. The class enters through the per-class gain and shift
of every BatchNorm (SNGAN's categorical conditional BatchNorm).

Discriminator: one residual down-sampling block per halving of the resolution (the
first without a leading ReLU, as in SNGAN), a last block at 4×4 without pooling, ReLU,
global *sum* pooling, then a linear score plus the projection term ``<embed(y), h>``
(Miyato & Koyama 2018). Every weight is spectrally normalised.

Both are Keras functional models with two inputs, ``z``/``image`` and ``label`` (int
class index), built only from registered layers, so the generator saves to and loads
from a ``.keras`` file in safe mode. Images are float32 in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dermkit.errors import DataError
from dermkit.gan.config import GanConfig

if TYPE_CHECKING:  # pragma: no cover
    import keras


def _generator_block(x: Any, label: Any, filters: int, num_classes: int, name: str) -> Any:
    from keras import layers

    from dermkit.gan.layers import ConditionalBatchNorm, SNConv2D

    h = ConditionalBatchNorm(num_classes, name=f"{name}_cbn1")([x, label])
    h = layers.ReLU(name=f"{name}_relu1")(h)
    h = layers.UpSampling2D(2, name=f"{name}_up")(h)
    h = SNConv2D(filters, 3, name=f"{name}_conv1")(h)
    h = ConditionalBatchNorm(num_classes, name=f"{name}_cbn2")([h, label])
    h = layers.ReLU(name=f"{name}_relu2")(h)
    h = SNConv2D(filters, 3, name=f"{name}_conv2")(h)
    # 1×1 conv before nearest up-sampling equals the usual order and up-samples
    # fewer channels (the 64×64 up-samplings are a fifth of the generator's time).
    shortcut = SNConv2D(filters, 1, name=f"{name}_skip_conv")(x)
    shortcut = layers.UpSampling2D(2, name=f"{name}_skip_up")(shortcut)
    return layers.Add(name=f"{name}_add")([h, shortcut])


def build_generator(config: GanConfig) -> keras.Model:
    """A fresh generator ``[z (batch, z_dim), label (batch,)] -> images in [-1, 1]``."""
    import keras
    from keras import layers

    from dermkit.gan.layers import ConditionalBatchNorm, SNConv2D, SNDense

    num_classes = len(config.classes)
    widths = config.generator_widths()
    z = keras.Input(shape=(config.z_dim,), name="z")
    label = keras.Input(shape=(), dtype="int32", name="label")
    x = SNDense(4 * 4 * widths[0], name="g_dense")(z)
    x = layers.Reshape((4, 4, widths[0]), name="g_reshape")(x)
    for index, filters in enumerate(widths, start=1):
        x = _generator_block(x, label, filters, num_classes, f"g_block{index}")
    x = ConditionalBatchNorm(num_classes, name="g_out_cbn")([x, label])
    x = layers.ReLU(name="g_out_relu")(x)
    x = SNConv2D(3, 3, name="g_out_conv")(x)
    image = layers.Activation("tanh", name="g_image")(x)
    return keras.Model([z, label], image, name="generator")


def _discriminator_block(x: Any, filters: int, *, down: bool, first: bool, name: str) -> Any:
    from keras import layers

    from dermkit.gan.layers import SNConv2D

    h = x if first else layers.ReLU(name=f"{name}_relu0")(x)
    h = SNConv2D(filters, 3, name=f"{name}_conv1")(h)
    h = layers.ReLU(name=f"{name}_relu1")(h)
    h = SNConv2D(filters, 3, name=f"{name}_conv2")(h)
    if down:
        h = layers.AveragePooling2D(2, name=f"{name}_pool")(h)
    shortcut = x
    if first:  # pool first, then project: cheaper, and SNGAN's optimised first block
        shortcut = layers.AveragePooling2D(2, name=f"{name}_skip_pool")(shortcut)
        shortcut = SNConv2D(filters, 1, name=f"{name}_skip_conv")(shortcut)
    elif down or int(x.shape[-1]) != filters:
        shortcut = SNConv2D(filters, 1, name=f"{name}_skip_conv")(shortcut)
        if down:
            shortcut = layers.AveragePooling2D(2, name=f"{name}_skip_pool")(shortcut)
    return layers.Add(name=f"{name}_add")([h, shortcut])


def build_discriminator(config: GanConfig) -> keras.Model:
    """A fresh discriminator ``[image (batch, s, s, 3), label (batch,)] -> score (batch, 1)``."""
    import keras
    from keras import layers

    from dermkit.gan.layers import ClassProjection, SNDense

    size = config.image_size
    widths = config.discriminator_widths()
    image = keras.Input(shape=(size, size, 3), name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    x = image
    for index, filters in enumerate(widths, start=1):
        down = index <= config.levels
        x = _discriminator_block(x, filters, down=down, first=index == 1, name=f"d_block{index}")
    x = layers.ReLU(name="d_out_relu")(x)
    x = layers.GlobalAveragePooling2D(name="d_pool")(x)
    h = layers.Rescaling(16.0, name="d_sum_pool")(x)  # 4×4 average → sum, as in SNGAN
    score = SNDense(1, name="d_linear")(h)
    projection = ClassProjection(len(config.classes), name="d_projection")([h, label])
    output = layers.Add(name="d_score")([score, projection])
    return keras.Model([image, label], output, name="discriminator")


def save_generator(generator: keras.Model, path: Path) -> None:
    """Write ``generator`` as a ``.keras`` archive, atomically."""
    from dermkit import atomic

    atomic.write_with(path, generator.save, suffix=".keras")


def load_generator(path: str | Path) -> keras.Model:
    """Load a generator saved by :func:`save_generator`, in Keras safe mode."""
    import keras

    from dermkit.gan.layers import CUSTOM_OBJECTS

    source = Path(path)
    if not source.is_file():
        raise DataError(
            "no generator file here",
            where=str(source),
            hint="train one with `dermkit gan train` (an interrupted run saves one too)",
        )
    try:
        model: keras.Model = keras.models.load_model(
            source, custom_objects=CUSTOM_OBJECTS, compile=False, safe_mode=True
        )
    except Exception as error:
        raise DataError(
            f"could not load the generator: {type(error).__name__}: {error}",
            where=str(source),
            hint="the file must be a generator.keras written by `dermkit gan train`",
        ) from error
    return model
