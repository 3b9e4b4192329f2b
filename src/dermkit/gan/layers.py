"""The GAN's own Keras layers: spectrally normalised convolutions, conditional BatchNorm,
the projection head.

They are registered Keras classes (package ``dermkit_gan``), not ``Lambda`` layers, so a
saved generator loads in Keras safe mode (:func:`dermkit.gan.networks.load_generator`).

Why not ``keras.layers.SpectralNormalization``: that wrapper writes the normalised
kernel back over the raw one on every training call, so no gradient ever flows through
the spectral norm σ(W). Miyato et al.'s spectral normalisation (SNGAN, and BigGAN after
it) keeps the raw kernel and differentiates through ``W / σ(W)``, with σ estimated by
one power iteration per step on a persistent vector ``u``. That is what
:class:`SNConv2D` and :class:`SNDense` do; ``u`` is a non-trainable weight, so it is
saved and restored with the model and a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

PACKAGE = "dermkit_gan"
EPSILON = 1e-12


def _l2_normalize(x: Any) -> Any:
    return ops.divide(x, ops.sqrt(ops.sum(ops.square(x)) + EPSILON))


class _SpectralKernel(keras.layers.Layer):  # type: ignore[misc]
    """Holds a kernel whose largest singular value is divided out on every call."""

    def __init__(self, power_iterations: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.power_iterations = int(power_iterations)

    def _make_u(self, out_dim: int) -> None:
        self.u = self.add_weight(
            name="sn_u",
            shape=(1, out_dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
        )

    def normalized_kernel(self, training: bool | None) -> Any:
        """``kernel / σ(kernel)``; during training also advances the power iteration."""
        kernel = self.kernel
        out_dim = kernel.shape[-1]
        matrix = ops.reshape(kernel, (-1, out_dim))
        u = self.u.value
        v = u
        for _ in range(self.power_iterations):
            v = _l2_normalize(ops.matmul(u, ops.transpose(matrix)))
            u = _l2_normalize(ops.matmul(v, matrix))
        u = ops.stop_gradient(u)
        v = ops.stop_gradient(v)
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        if training:
            self.u.assign(ops.cast(u, self.u.dtype))
        return ops.divide(kernel, sigma)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config["power_iterations"] = self.power_iterations
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SNConv2D(_SpectralKernel):
    """A 2-D convolution (stride 1, "same" padding) with spectral normalisation."""

    def __init__(
        self, filters: int, kernel_size: int = 3, use_bias: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.use_bias = bool(use_bias)

    def build(self, input_shape: Any) -> None:
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, channels, self.filters),
            initializer=keras.initializers.GlorotUniform(),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
            if self.use_bias
            else None
        )
        self._make_u(self.filters)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        kernel = self.normalized_kernel(training)
        outputs = ops.conv(inputs, kernel, strides=1, padding="same")
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return outputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, use_bias=self.use_bias)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SNDense(_SpectralKernel):
    """A dense layer with spectral normalisation."""

    def __init__(self, units: int, use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.use_bias = bool(use_bias)

    def build(self, input_shape: Any) -> None:
        self.kernel = self.add_weight(
            name="kernel",
            shape=(int(input_shape[-1]), self.units),
            initializer=keras.initializers.GlorotUniform(),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
            if self.use_bias
            else None
        )
        self._make_u(self.units)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        outputs = ops.matmul(inputs, self.normalized_kernel(training))
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return outputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units, use_bias=self.use_bias)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassProjection(_SpectralKernel):
    """The projection discriminator's class term: ``<embed(y), h>`` (Miyato & Koyama 2018).

    Inputs ``[h (batch, features), y (batch,) int]``; output ``(batch, 1)``. The
    embedding matrix is spectrally normalised like every other weight of the
    discriminator.
    """

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def build(self, input_shape: Any) -> None:
        features = int(input_shape[0][-1])
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.num_classes, features),
            initializer=keras.initializers.GlorotUniform(),
        )
        self._make_u(features)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        features, labels = inputs
        embedding = self.normalized_kernel(training)
        picked = ops.take(embedding, ops.cast(ops.reshape(labels, (-1,)), "int32"), axis=0)
        return ops.sum(ops.multiply(picked, features), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0][0], 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConditionalBatchNorm(keras.layers.Layer):  # type: ignore[misc]
    """BatchNorm whose scale and shift are looked up per class (SNGAN's categorical CBN).

    Inputs ``[x (batch, h, w, c), y (batch,) int]``. The per-class gain starts at 1 and
    the shift at 0, so at initialisation this is plain BatchNorm. Moving statistics are
    kept as usual for inference; :func:`dermkit.gan.train.standing_statistics`
    recomputes them for the averaged (EMA) generator, whose weights never saw a batch.
    ``momentum`` is a plain attribute so that recomputation can set it per batch.
    """

    def __init__(
        self, num_classes: int, momentum: float = 0.9, epsilon: float = 1e-5, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape: Any) -> None:
        channels = int(input_shape[0][-1])
        self.gain = self.add_weight(
            name="gain", shape=(self.num_classes, channels), initializer="ones"
        )
        self.shift = self.add_weight(
            name="shift", shape=(self.num_classes, channels), initializer="zeros"
        )
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(channels,), initializer="zeros", trainable=False
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=(channels,), initializer="ones", trainable=False
        )

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x, labels = inputs
        if training:
            mean = ops.mean(x, axis=(0, 1, 2))
            variance = ops.var(x, axis=(0, 1, 2))
            keep = self.momentum
            self.moving_mean.assign(keep * self.moving_mean + (1.0 - keep) * mean)
            self.moving_variance.assign(keep * self.moving_variance + (1.0 - keep) * variance)
        else:
            mean, variance = self.moving_mean.value, self.moving_variance.value
        normalized = ops.divide(ops.subtract(x, mean), ops.sqrt(variance + self.epsilon))
        index = ops.cast(ops.reshape(labels, (-1,)), "int32")
        gain = ops.take(self.gain, index, axis=0)[:, None, None, :]
        shift = ops.take(self.shift, index, axis=0)[:, None, None, :]
        return ops.add(ops.multiply(normalized, gain), shift)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(num_classes=self.num_classes, momentum=self.momentum, epsilon=self.epsilon)
        return config


CUSTOM_OBJECTS: dict[str, type[keras.layers.Layer]] = {
    f"{PACKAGE}>SNConv2D": SNConv2D,
    f"{PACKAGE}>SNDense": SNDense,
    f"{PACKAGE}>ClassProjection": ClassProjection,
    f"{PACKAGE}>ConditionalBatchNorm": ConditionalBatchNorm,
}
"""Every GAN layer by its registered name, for ``custom_objects=`` arguments."""
