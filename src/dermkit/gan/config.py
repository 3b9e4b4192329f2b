"""How a GAN is built and trained: one frozen value object that round-trips through JSON.

Kept free of TensorFlow, like :mod:`dermkit.training.config`, so the command line can
validate options and read a generator run's ``gan.json`` without importing Keras.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from dermkit.errors import ConfigError

AUGMENT_POLICIES: tuple[str, ...] = ("color", "translation", "cutout")
"""DiffAugment transforms (Zhao et al. 2020) that :mod:`dermkit.gan.augment` implements."""

MIN_SIZE, MAX_SIZE = 16, 256


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{attribute.name} must be a positive whole number, got {value!r}",
            where=f"gan option {attribute.name}",
        )


def _non_negative_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"{attribute.name} must be a whole number >= 0, got {value!r}",
            where=f"gan option {attribute.name}",
        )


def _positive_float(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ConfigError(
            f"{attribute.name} must be a positive number, got {value!r}",
            where=f"gan option {attribute.name}",
        )


def _unit_interval(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ConfigError(
            f"{attribute.name} must be in [0, 1), got {value!r}",
            where=f"gan option {attribute.name}",
        )


def _image_size(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_SIZE <= value <= MAX_SIZE
        or value & (value - 1)
    ):
        raise ConfigError(
            f"image size must be a power of two from {MIN_SIZE} to {MAX_SIZE}, got {value!r}",
            where="gan option image_size (--image-size)",
            hint="use 64 or 128 for lesions; 16 or 32 for quick tests",
        )


def _to_names(value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    return tuple(str(v) for v in value)


def _class_names(_: object, __: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    if len(set(value)) != len(value):
        raise ConfigError(f"a class is named twice in {list(value)}", where="gan option classes")


def _to_policy(value: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        if value.strip().lower() in ("", "none"):
            return ()
        value = [part for part in value.split(",") if part.strip()]
    return tuple(part.strip() for part in value)


def _known_policy(_: object, __: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    unknown = [v for v in value if v not in AUGMENT_POLICIES]
    if unknown:
        raise ConfigError(
            f"unknown DiffAugment transform(s) {', '.join(unknown)}",
            where="gan option augment",
            hint=f"choose from {', '.join(AUGMENT_POLICIES)}, comma-separated, or none",
        )


@attrs.frozen(slots=True)
class GanConfig:
    """Architecture and training options of a class-conditional GAN.

    ``classes`` are the names the generator is conditioned on, in label order (label
    ``i`` of the generator is ``classes[i]``, whatever number the dataset gives it);
    empty means every class of the dataset, fixed when training starts.
    ``g_width``/``d_width`` are the channel counts at the highest resolution; they double
    at every halving of the resolution, up to eight times. The defaults (8, 8, batch 16)
    are sized for two CPU cores: about a step per second at 64×64 on a loaded machine
    (docs/gan.md has the measurements); widen them where compute allows. ``augment`` is the
    DiffAugment policy applied to real *and* generated images before the discriminator;
    ``dihedral`` additionally flips and turns real images at random, which is
    label-preserving for dermatoscopic images (they have no canonical orientation) and
    multiplies a small class's images by eight. ``ema_decay`` is the per-step decay of
    the generator's exponential moving average (the generator that is sampled and
    saved). The ``*_every`` options are in steps; ``kid_every=0`` turns KID logging off.
    """

    image_size: int = attrs.field(default=64, validator=_image_size)
    classes: tuple[str, ...] = attrs.field(default=(), converter=_to_names, validator=_class_names)
    z_dim: int = attrs.field(default=128, validator=_positive_int)
    g_width: int = attrs.field(default=8, validator=_positive_int)
    d_width: int = attrs.field(default=8, validator=_positive_int)
    batch_size: int = attrs.field(default=16, validator=_positive_int)
    steps: int = attrs.field(default=10_000, validator=_positive_int)
    d_steps: int = attrs.field(default=2, validator=_positive_int)
    """Discriminator updates per generator update (BigGAN's ``num_D_steps``)."""
    lr_g: float = attrs.field(default=1e-4, validator=_positive_float)
    lr_d: float = attrs.field(default=4e-4, validator=_positive_float)
    beta1: float = attrs.field(default=0.0, validator=_unit_interval)
    beta2: float = attrs.field(default=0.999, validator=_unit_interval)
    ema_decay: float = attrs.field(default=0.999, validator=_unit_interval)
    augment: tuple[str, ...] = attrs.field(
        default=AUGMENT_POLICIES, converter=_to_policy, validator=_known_policy
    )
    dihedral: bool = True
    seed: int = attrs.field(default=0, validator=_non_negative_int)
    log_every: int = attrs.field(default=50, validator=_positive_int)
    sample_every: int = attrs.field(default=500, validator=_positive_int)
    checkpoint_every: int = attrs.field(default=500, validator=_positive_int)
    kid_every: int = attrs.field(default=2000, validator=_non_negative_int)
    kid_samples: int = attrs.field(default=200, validator=_positive_int)
    """Generated images per class for the KID logged during training."""

    @property
    def levels(self) -> int:
        """Number of 2× resolution steps between the 4×4 base and the image size."""
        return int(math.log2(self.image_size)) - 2

    def generator_widths(self) -> tuple[int, ...]:
        """Output channels of each up-sampling block, from 8×8 up to the image size."""
        n = self.levels
        return tuple(self.g_width * 2 ** min(n - 1 - i, 3) for i in range(n))

    def discriminator_widths(self) -> tuple[int, ...]:
        """Output channels of each down-sampling block, then of the final 4×4 block."""
        n = self.levels
        widths = [self.d_width * 2 ** min(i, 3) for i in range(n)]
        return (*widths, widths[-1])

    def to_config(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["classes"] = list(self.classes)
        data["augment"] = list(self.augment)
        return data

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> GanConfig:
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(
                f"unknown GAN option(s) {', '.join(unknown)}",
                where="gan.json",
                hint=f"valid options are {', '.join(sorted(known))}",
            )
        values = dict(config)
        # gan.json files written before d_steps existed were trained with one
        # discriminator step per generator step; resuming them must keep it.
        values.setdefault("d_steps", 1)
        return cls(**values)
