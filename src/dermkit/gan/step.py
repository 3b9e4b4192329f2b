"""One GAN training step, and everything it needs, as pure functions of (weights, step).

Each step draws its real batch, its latent vectors and its augmentation seeds from
random generators keyed by ``(seed, step)``. Nothing depends on how many steps ran in
this process, so a run resumed from the checkpoint of step *k* takes exactly the steps
an uninterrupted run would have taken.

Losses are the hinge losses of SNGAN/BigGAN: the discriminator minimises
``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``, the generator minimises ``-E[D(G(z))]``.
``d_steps`` discriminator steps (each on its own real batch and latents), then one
generator step, then the moving average. With one discriminator step per generator
step and equal learning rates, the discriminator of a small run falls to chance
(hinge loss stuck at 2) and stops teaching the generator; BigGAN's remedy is several
discriminator steps per generator step and a discriminator learning rate above the
generator's (docs/gan.md has the measurements).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from dermkit.gan.augment import dihedral
from dermkit.gan.config import GanConfig

if TYPE_CHECKING:  # pragma: no cover
    import keras

EMA_WARMUP = 10.0
"""The EMA decay at step t is ``min(ema_decay, (1 + t) / (EMA_WARMUP + t))``: early on the
average follows the live generator closely instead of dragging its random start along."""


@attrs.frozen
class StepInputs:
    """Everything random that one step consumes, drawn up front from ``(seed, step)``."""

    real: np.ndarray
    """Real images, float32 in [-1, 1], ``(d_steps * batch, s, s, 3)``: one batch per
    discriminator step."""
    labels: np.ndarray
    """Their class indices (int32); the fakes of each discriminator step use the same
    labels, the generator step those of the last batch."""
    z_d: np.ndarray
    z_g: np.ndarray
    seed_d: np.ndarray
    seed_g: np.ndarray
    ema_decay: float


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] → float32 [-1, 1]."""
    result: np.ndarray = images.astype(np.float32) / 127.5 - 1.0
    return result


def to_uint8(images: Any) -> np.ndarray:
    """float [-1, 1] → uint8 [0, 255], rounded."""
    values = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
    result: np.ndarray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return result


def ema_decay_at(config: GanConfig, step: int) -> float:
    return min(config.ema_decay, (1.0 + step) / (EMA_WARMUP + step))


def step_inputs(images: np.ndarray, labels: np.ndarray, config: GanConfig, step: int) -> StepInputs:
    """The inputs of step ``step``: a function of the data, ``config.seed`` and ``step`` only."""
    rng = np.random.default_rng([config.seed, step, 0x6A4])
    count = len(images)
    batch = config.batch_size
    draws = batch * config.d_steps
    index = rng.choice(count, size=draws, replace=count < draws)
    real = images[index]
    if config.dihedral:
        real = dihedral(real, rng)
    return StepInputs(
        real=to_unit_range(real),
        labels=labels[index].astype(np.int32),
        z_d=rng.standard_normal((draws, config.z_dim), dtype=np.float32),
        z_g=rng.standard_normal((batch, config.z_dim), dtype=np.float32),
        seed_d=rng.integers(0, 2**31 - 1, size=(config.d_steps, 2), dtype=np.int64),
        seed_g=rng.integers(0, 2**31 - 1, size=2, dtype=np.int64),
        ema_decay=ema_decay_at(config, step),
    )


@attrs.define
class GanModels:
    """The live generator and discriminator, their optimizers, and the averaged generator."""

    generator: keras.Model
    discriminator: keras.Model
    ema_generator: keras.Model
    opt_g: Any
    opt_d: Any

    def checkpointed(self) -> dict[str, list[Any]]:
        """Every variable a resumed run needs, by owner, in a fixed order."""
        return {
            "generator": list(self.generator.weights),
            "discriminator": list(self.discriminator.weights),
            "ema_generator": list(self.ema_generator.weights),
            "opt_g": list(self.opt_g.variables),
            "opt_d": list(self.opt_d.variables),
        }


def build_models(config: GanConfig) -> GanModels:
    """Fresh, seeded networks; the EMA generator starts as a copy of the live one."""
    import keras

    from dermkit.gan.networks import build_discriminator, build_generator

    keras.utils.set_random_seed(config.seed)
    generator = build_generator(config)
    discriminator = build_discriminator(config)
    ema_generator = build_generator(config)
    for target, source in zip(ema_generator.weights, generator.weights, strict=True):
        target.assign(source)
    opt_g = keras.optimizers.Adam(config.lr_g, beta_1=config.beta1, beta_2=config.beta2)
    opt_d = keras.optimizers.Adam(config.lr_d, beta_1=config.beta1, beta_2=config.beta2)
    opt_g.build(generator.trainable_variables)
    opt_d.build(discriminator.trainable_variables)
    return GanModels(generator, discriminator, ema_generator, opt_g, opt_d)


def hinge_d_loss(real_scores: Any, fake_scores: Any) -> Any:
    import tensorflow as tf

    return tf.reduce_mean(tf.nn.relu(1.0 - real_scores)) + tf.reduce_mean(
        tf.nn.relu(1.0 + fake_scores)
    )


def hinge_g_loss(fake_scores: Any) -> Any:
    import tensorflow as tf

    return -tf.reduce_mean(fake_scores)


class GanStep:
    """The compiled training step over one :class:`GanModels`, and its parts for tests."""

    def __init__(self, models: GanModels, config: GanConfig) -> None:
        import tensorflow as tf

        self.models = models
        self.config = config
        self._step = tf.function(self._train_step, reduce_retracing=True)
        self._d_update = tf.function(self._discriminator_update, reduce_retracing=True)
        self._g_update = tf.function(self._generator_update, reduce_retracing=True)

    # ------------------------------------------------------------------ pieces
    def _augment(self, images: Any, seed: Any) -> Any:
        from dermkit.gan.augment import diff_augment

        return diff_augment(images, self.config.augment, seed)

    def _d_loss(self, real: Any, labels: Any, z_d: Any, seed_d: Any) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        m = self.models
        fake = tf.stop_gradient(m.generator([z_d, labels], training=True))
        both = self._augment(tf.concat([real, fake], axis=0), seed_d)
        scores = m.discriminator([both, tf.concat([labels, labels], 0)], training=True)
        count = tf.shape(real)[0]
        real_scores, fake_scores = scores[:count], scores[count:]
        return hinge_d_loss(real_scores, fake_scores), real_scores, fake_scores

    def _g_loss(self, labels: Any, z_g: Any, seed_g: Any) -> Any:
        m = self.models
        fake = m.generator([z_g, labels], training=True)
        scores = m.discriminator([self._augment(fake, seed_g), labels], training=False)
        return hinge_g_loss(scores)

    def _discriminator_update(
        self, real: Any, labels: Any, z_d: Any, seed_d: Any
    ) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            d_loss, real_scores, fake_scores = self._d_loss(real, labels, z_d, seed_d)
        variables = self.models.discriminator.trainable_variables
        gradients = tape.gradient(d_loss, variables)
        self.models.opt_d.apply_gradients(zip(gradients, variables, strict=True))
        return d_loss, real_scores, fake_scores

    def _generator_update(self, labels: Any, z_g: Any, seed_g: Any) -> Any:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            g_loss = self._g_loss(labels, z_g, seed_g)
        variables = self.models.generator.trainable_variables
        gradients = tape.gradient(g_loss, variables)
        self.models.opt_g.apply_gradients(zip(gradients, variables, strict=True))
        return g_loss

    def _update_average(self, ema_decay: Any) -> None:
        m = self.models
        for average, live in zip(m.ema_generator.weights, m.generator.weights, strict=True):
            if live.trainable:
                average.assign(ema_decay * average + (1.0 - ema_decay) * live)
            else:  # BatchNorm statistics and power-iteration vectors are copied
                average.assign(live)

    def _train_step(
        self,
        real: Any,
        labels: Any,
        z_d: Any,
        z_g: Any,
        seed_d: Any,
        seed_g: Any,
        ema_decay: Any,
    ) -> dict[str, Any]:
        import tensorflow as tf

        batch = self.config.batch_size
        for index in range(self.config.d_steps):
            part = slice(index * batch, (index + 1) * batch)
            d_loss, real_scores, fake_scores = self._discriminator_update(
                real[part], labels[part], z_d[part], seed_d[index]
            )
        g_loss = self._generator_update(labels[-batch:], z_g, seed_g)
        self._update_average(ema_decay)
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": tf.reduce_mean(real_scores),
            "d_fake": tf.reduce_mean(fake_scores),
        }

    # ------------------------------------------------------------------ API
    def __call__(self, inputs: StepInputs) -> dict[str, float]:
        """Run one step; returns the losses and mean discriminator scores as floats."""
        import tensorflow as tf

        result = self._step(
            tf.constant(inputs.real),
            tf.constant(inputs.labels),
            tf.constant(inputs.z_d),
            tf.constant(inputs.z_g),
            tf.constant(inputs.seed_d),
            tf.constant(inputs.seed_g),
            tf.constant(inputs.ema_decay, dtype=tf.float32),
        )
        return {key: float(value) for key, value in result.items()}

    def update_discriminator(self, inputs: StepInputs) -> float:
        """Only the discriminator half of a step; returns its loss before the update."""
        import tensorflow as tf

        batch = self.config.batch_size
        loss, _, _ = self._d_update(
            tf.constant(inputs.real[:batch]),
            tf.constant(inputs.labels[:batch]),
            tf.constant(inputs.z_d[:batch]),
            tf.constant(inputs.seed_d[0]),
        )
        return float(loss)

    def update_generator(self, inputs: StepInputs) -> float:
        """Only the generator half of a step; returns its loss before the update."""
        import tensorflow as tf

        loss = self._g_update(
            tf.constant(inputs.labels[-self.config.batch_size :]),
            tf.constant(inputs.z_g),
            tf.constant(inputs.seed_g),
        )
        return float(loss)

    def losses(self, inputs: StepInputs) -> dict[str, float]:
        """The losses a step would see now, computed exactly as the step does, without
        changing anything: BatchNorm statistics and power-iteration vectors that the
        training-mode passes move are put back afterwards."""
        import tensorflow as tf

        m = self.models
        state = [
            variable
            for model in (m.generator, m.discriminator)
            for variable in model.non_trainable_weights
        ]
        kept = [variable.numpy() for variable in state]
        batch = self.config.batch_size
        try:
            d_loss, _, _ = self._d_loss(
                tf.constant(inputs.real[:batch]),
                tf.constant(inputs.labels[:batch]),
                tf.constant(inputs.z_d[:batch]),
                tf.constant(inputs.seed_d[0]),
            )
            g_loss = self._g_loss(
                tf.constant(inputs.labels[-batch:]),
                tf.constant(inputs.z_g),
                tf.constant(inputs.seed_g),
            )
        finally:
            for variable, value in zip(state, kept, strict=True):
                variable.assign(value)
        return {"d_loss": float(d_loss), "g_loss": float(g_loss)}


def standing_statistics(
    generator: keras.Model,
    class_probabilities: np.ndarray,
    z_dim: int,
    *,
    seed: int,
    batches: int = 4,
    batch_size: int = 64,
) -> None:
    """Recompute the BatchNorm statistics of ``generator`` from its own outputs (in place).

    The averaged generator's weights never produced the batches its copied moving
    statistics came from, so they are recomputed as BigGAN does ("standing
    statistics"): run ``batches`` batches (256 images by default) of random latents
    and labels (drawn with the training class frequencies) in training mode and keep
    the exact average of their batch statistics. The spectral-norm vectors are put
    back afterwards, so only the statistics change. Runs eagerly, because the
    averaging weight changes per batch.
    """
    from dermkit.gan.layers import ConditionalBatchNorm

    norms = [layer for layer in generator.layers if isinstance(layer, ConditionalBatchNorm)]
    statistics = {id(v) for layer in norms for v in (layer.moving_mean, layer.moving_variance)}
    kept = [(v, v.numpy()) for v in generator.non_trainable_weights if id(v) not in statistics]
    momenta = [layer.momentum for layer in norms]
    rng = np.random.default_rng([seed, 0x57A7])
    try:
        for index in range(batches):
            for layer in norms:
                layer.momentum = index / (index + 1.0)  # cumulative mean of batch statistics
            z = rng.standard_normal((batch_size, z_dim), dtype=np.float32)
            labels = rng.choice(len(class_probabilities), size=batch_size, p=class_probabilities)
            generator([z, labels.astype(np.int32)], training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
        for variable, value in kept:
            variable.assign(value)
