"""The training configuration: everything about *how* to fit, nothing about *what*."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from dermkit.errors import ConfigError

OPTIMIZERS: tuple[str, ...] = ("adam", "adamax", "sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "plateau")


@attrs.frozen(slots=True)
class Training:
    """How to fit a model.

    ``monitor`` picks the best epoch (saved as ``model.keras``) and drives early
    stopping: validation balanced accuracy by default, because plain accuracy rewards
    predicting the majority class (nv) on HAM10000. ``early_stopping`` is a patience in
    epochs (``None`` turns it off). ``schedule="plateau"`` halves the learning rate after
    ``max(2, patience // 2)`` epochs without improvement; ``"cosine"`` decays to zero.
    """

    optimizer: Literal["adam", "adamax", "sgd", "adamw"] = attrs.field(
        default="adam", validator=attrs.validators.in_(OPTIMIZERS)
    )
    learning_rate: float = attrs.field(default=1e-3, validator=attrs.validators.gt(0.0))
    schedule: Literal["constant", "cosine", "plateau"] = attrs.field(
        default="constant", validator=attrs.validators.in_(SCHEDULES)
    )
    epochs: int = attrs.field(default=25, validator=attrs.validators.ge(1))
    batch_size: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    early_stopping: int | None = None
    monitor: Literal["val_balanced_accuracy", "val_accuracy", "val_loss"] = attrs.field(
        default="val_balanced_accuracy",
        validator=attrs.validators.in_(("val_balanced_accuracy", "val_accuracy", "val_loss")),
    )
    seed: int = 0
    mixed_precision: bool = False
    jit_compile: bool | Literal["auto"] = attrs.field(default="auto")
    """XLA compilation of the training step: ``"auto"`` is Keras' rule (on where a GPU
    is present, off on CPU-only machines, where docs/performance.md found no clear gain),
    ``True``/``False`` force it."""
    weight_decay: float = attrs.field(default=1e-4, validator=attrs.validators.ge(0.0))
    """Only used by ``adamw``."""
    max_minutes: float | None = None
    """Wall-clock budget for this call of ``fit``: no new epoch starts that would end
    past it (judged by the mean epoch time so far). ``None``: no budget."""
    verbose: int = 1
    """Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch."""
    feature_cache: Literal["auto", "on", "off"] = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", "on", "off"))
    )
    """Train a partly frozen model on cached activations of its frozen prefix.
    ``auto``: whenever the model has a frozen prefix and every augmentation is a flip or
    a right-angle turn (which cached views keep); ``on``: also when that means leaving
    random augmentations (zoom, colour) out; ``off``: never. See :mod:`dermkit.features`."""
    cache_views: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1), attrs.validators.le(8)]
        ),
    )
    """Dihedral views (1-8) cached per training image, each costing one pass of the
    prefix. ``None``: all 8 when the plan flips or turns images, else 1."""

    @jit_compile.validator
    def _check_jit_compile(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not (value == "auto" or isinstance(value, bool)):
            raise ConfigError(
                f"invalid jit_compile {value!r}",
                where="training options",
                hint='use "auto", true or false',
            )

    def to_config(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Training:
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(
                f"unknown training option(s) {', '.join(unknown)}",
                hint=f"valid options are {', '.join(sorted(known))}",
            )
        try:
            return cls(**config)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"invalid training options: {error}") from None
