"""dermkit.gan: a class-conditional GAN for the rare lesion classes.

A small SNGAN/BigGAN-style generator (class-conditional BatchNorm, residual
up-sampling blocks) and projection discriminator (spectral normalisation throughout),
trained with the hinge loss, DiffAugment on everything the discriminator sees, and an
exponential moving average of the generator. It trains on the *training part* of a
lesion-grouped split only; the ``gan_oversampling`` balancer
(:mod:`dermkit.balancers.gan_oversampling`) adds its images to a classifier's training
plan, flagged as synthetic, and refuses a generator that saw images outside that
run's training part.

Modules: :mod:`.config` (options), :mod:`.networks` and :mod:`.layers` (the models),
:mod:`.augment` (DiffAugment), :mod:`.step` (one training step), :mod:`.train` (the
loop: checkpoints, resume, grids, logs), :mod:`.sample` (images and manifests),
:mod:`.quality` (KID, FID, two-sample test), :mod:`.run` (the run folder),
:mod:`.data` (the training images). Importing this package does not import
TensorFlow; see docs/gan.md for the design and how to use it.
"""

from __future__ import annotations

from dermkit.gan.config import GanConfig
from dermkit.gan.run import GanRun

__all__ = ["GanConfig", "GanRun"]
