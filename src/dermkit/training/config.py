"""The training configuration: everything about *how* to fit, nothing about *what*."""

from __future__ import annotations

import math
from typing import Any, Literal, TypeVar

import attrs

from dermkit.errors import ConfigError

OPTIMIZERS: tuple[str, ...] = ("adam", "adamax", "sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "plateau")
FEATURE_CACHE_MODES: tuple[str, ...] = ("auto", "on", "off")
_Options = TypeVar("_Options", bound="attrs.AttrsInstance")
DISTRIBUTE_MODES: tuple[str, ...] = ("none", "mirrored", "multi_worker")


@attrs.frozen(slots=True)
class Stage:
    """A later stage of training: it starts from the best model of the stages before it.

    The first stage is :class:`Training` itself, on the model as its factory froze it.
    A later stage re-freezes the backbone so that its last ``trainable_layers`` train
    (``None`` keeps the freezing as it is, ``-1`` trains the whole backbone), makes a
    fresh optimizer of the same kind at ``learning_rate``, and trains for at most
    ``epochs`` more epochs (early stopping, if on, counts within the stage). Its
    ``feature_cache`` decides afresh: a stage that unfreezes more of a backbone has a
    shorter frozen prefix, and ``"off"`` lets it train on pixels with every augmentation
    of the plan, including the random ones a cached first stage had to leave out.

    ``train_batch_norm`` is off by default: the unfrozen layers' BatchNormalization
    keeps the backbone's moving statistics and its scale and shift. A head trained on
    activations normalised by those statistics breaks when BatchNormalization switches
    to per-batch statistics (measured: Lite0's validation balanced accuracy fell from
    0.68 to 0.59 in the first fine-tuning epoch), which is why Keras' own
    fine-tuning guide keeps it in inference mode too.
    """

    epochs: int = attrs.field(validator=attrs.validators.ge(1))
    learning_rate: float = attrs.field(validator=attrs.validators.gt(0.0))
    trainable_layers: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(-1)]
        ),
    )
    feature_cache: Literal["auto", "on", "off"] = attrs.field(
        default="off", validator=attrs.validators.in_(FEATURE_CACHE_MODES)
    )
    train_batch_norm: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )

    @classmethod
    def from_config(cls, config: object) -> Stage:
        if isinstance(config, Stage):
            return config
        if not isinstance(config, dict):
            raise ConfigError(
                f"a training stage must be a mapping, got {config!r}",
                where="training options: stages",
                hint='e.g. {"epochs": 5, "learning_rate": 1e-4, "trainable_layers": 40}',
            )
        return _from_options(
            cls, config, unknown="stage", invalid="training stage", where="training options: stages"
        )


def _from_options(
    cls: type[_Options], config: dict[str, Any], *, unknown: str, invalid: str, **where: str
) -> _Options:
    """``cls(**config)``, with a :class:`ConfigError` for unknown or invalid options."""
    known = {f.name for f in attrs.fields(cls)}
    extra = sorted(set(config) - known)
    if extra:
        raise ConfigError(
            f"unknown {unknown} option(s) {', '.join(extra)}",
            hint=f"valid options are {', '.join(sorted(known))}",
            **where,
        )
    try:
        return cls(**config)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid {invalid}: {error}", **where) from None


def _rates(value: object) -> tuple[float, ...]:
    """Per-epoch learning rates from JSON (a list) or Python (any sequence of numbers)."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(
            f"learning_rates must be a list of numbers, got {value!r}",
            where="training options: learning_rates",
        )
    rates = []
    for rate in value:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
            raise ConfigError(
                f"every learning rate must be a positive number, got {rate!r}",
                where="training options: learning_rates",
            )
        rates.append(float(rate))
    return tuple(rates)


def _stages(value: object) -> tuple[Stage, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ConfigError(
            f"training stages must be a list, got {value!r}", where="training options: stages"
        )
    return tuple(Stage.from_config(item) for item in value)


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
    """Images per batch *per replica*: with ``distribute`` over N devices each step
    trains on ``N * batch_size`` images (see docs/scaling.md)."""
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
    max_minutes: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0.0))
    )
    """Wall-clock budget for this call of ``fit``: no new epoch starts that would end
    past it (judged by the mean epoch time so far). ``None``: no budget."""
    verbose: int = 1
    """Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch."""
    feature_cache: Literal["auto", "on", "off"] = attrs.field(
        default="auto", validator=attrs.validators.in_(FEATURE_CACHE_MODES)
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
    distribute: Literal["none", "mirrored", "multi_worker"] = attrs.field(
        default="none", validator=attrs.validators.in_(DISTRIBUTE_MODES)
    )
    """``tf.distribute`` strategy: ``"mirrored"`` over every GPU of this machine (else
    its CPUs), ``"multi_worker"`` across the machines ``TF_CONFIG`` names. Synchronous
    data parallelism; see :mod:`dermkit.training.distribute`."""
    mixup: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    """Mixup's ``alpha``: each training example is mixed with another of its batch,
    inputs and labels alike, by a weight drawn from ``Beta(alpha, alpha)`` (see
    :mod:`dermkit.training.mixup`); on a cached tail that mixes the frozen activations.
    ``0`` turns it off; 0.2-0.4 is the usual range."""
    learning_rates: tuple[float, ...] = attrs.field(default=(), converter=_rates)
    """The learning rate of each epoch in turn (the last one holds for any epochs
    after), in place of ``learning_rate`` and ``schedule``. ``dermkit refit`` replays
    the rates its source run trained at, including the halvings a ``"plateau"``
    schedule made, which cannot be re-made without a validation part."""
    stages: tuple[Stage, ...] = attrs.field(default=(), converter=_stages)
    """Stages after the first (which is this configuration itself), e.g. a fine-tuning
    stage that unfreezes the last blocks at a lower learning rate: see
    :meth:`then_fine_tune`. Epoch numbers run on across stages."""

    def then_fine_tune(
        self,
        trainable_layers: int,
        *,
        epochs: int = 5,
        learning_rate: float | None = None,
        feature_cache: Literal["auto", "on", "off"] = "off",
        train_batch_norm: bool = False,
    ) -> Training:
        """This configuration followed by a fine-tuning stage, in one line.

        The transfer-learning recipe: train the head (or the last few layers) first,
        fast, on cached activations of the frozen backbone; then unfreeze the last
        ``trainable_layers`` backbone layers and train them at a tenth of the first
        learning rate (unless ``learning_rate`` is given), on pixels with the plan's
        full augmentation by default. Fine-tuning a pretrained backbone with a large
        learning rate and a random head wrecks its features; the first stage gives
        the head sensible weights before any backbone weight moves. BatchNormalization
        stays frozen (moving statistics, fixed scale and shift) unless
        ``train_batch_norm``; see :class:`Stage`.
        """
        stage = Stage.from_config(
            {
                "epochs": epochs,
                "learning_rate": self.learning_rate / 10
                if learning_rate is None
                else learning_rate,
                "trainable_layers": trainable_layers,
                "feature_cache": feature_cache,
                "train_batch_norm": train_batch_norm,
            }
        )
        return attrs.evolve(self, stages=(*self.stages, stage))

    @property
    def max_epochs(self) -> int:
        """Epochs of all stages together, if none stops early."""
        return self.epochs + sum(stage.epochs for stage in self.stages)

    @jit_compile.validator
    def _check_jit_compile(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not (value == "auto" or isinstance(value, bool)):
            raise ConfigError(
                f"invalid jit_compile {value!r}",
                where="training options",
                hint='use "auto", true or false',
            )

    @learning_rates.validator
    def _check_learning_rates(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not value:
            return
        if self.schedule != "constant":
            raise ConfigError(
                f"learning_rates replace the schedule, but schedule is {self.schedule!r}",
                where="training options: learning_rates",
                hint='set schedule to "constant" with learning_rates, or drop learning_rates',
            )
        if self.stages:
            raise ConfigError(
                "learning_rates and stages do not go together",
                where="training options: learning_rates",
                hint="give each stage its own learning_rate instead",
            )

    def to_config(self) -> dict[str, Any]:
        config = attrs.asdict(self)
        config["stages"] = [attrs.asdict(stage) for stage in self.stages]
        # Left out when unused, so recipes written before the option existed still
        # match their runs when resumed.
        if self.learning_rates:
            config["learning_rates"] = list(self.learning_rates)
        else:
            del config["learning_rates"]
        if not self.mixup:
            del config["mixup"]
        return config

    def rate_of_epoch(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (counted from 0) under ``learning_rates``."""
        if not self.learning_rates:
            return self.learning_rate
        return self.learning_rates[min(epoch, len(self.learning_rates) - 1)]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Training:
        return _from_options(cls, config, unknown="training", invalid="training options")
