"""The value objects and interfaces that every stage of dermkit passes along.

The flow runs one way: a :class:`Dataset` yields :class:`Record` objects, a
:class:`Splitter` parts them into a :class:`Split`, a :class:`Balancer` turns the
training part into a :class:`TrainingPlan`, a :class:`ModelFactory` builds the
network, and an :class:`Evaluator` scores it. Records describe images but never hold
pixels, so they are cheap to copy, hash, save in a manifest and compare across runs;
pixels appear only in the input pipeline (:mod:`dermkit.data.pipeline`).

This module imports neither TensorFlow nor OpenCV, so code that only needs the data
model (``dermkit data inspect``, ``dermkit plugins``) starts quickly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import attrs

from dermkit.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover - imported for type checking only
    import keras

HAM10000_CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
"""The seven HAM10000 diagnoses, in the label order the original study used (0-6)."""

MetadataValue = str | int | float | None


def label_counts(records: Sequence[Record], num_classes: int) -> list[int]:
    """Images per class label, in class-index order, every label listed."""
    out = [0] * num_classes
    for record in records:
        out[record.label] += 1
    return out


def _to_path(value: str | Path) -> Path:
    return Path(value)


def _to_metadata(value: Mapping[str, MetadataValue] | None) -> Mapping[str, MetadataValue]:
    return dict(value or {})


@attrs.frozen(slots=True)
class Record:
    """One image as data: where it is, what it shows, which lesion it belongs to.

    ``group`` is the unit that must never be split across train, validation and test
    (the lesion id for HAM10000). ``synthetic_source`` is set only for generated
    images and names the generator run that made them, so they can be kept out of
    validation and test and traced in reports.
    """

    path: Path = attrs.field(converter=_to_path)
    label: int = attrs.field(validator=attrs.validators.ge(0))
    group: str = attrs.field(validator=attrs.validators.instance_of(str))
    metadata: Mapping[str, MetadataValue] = attrs.field(
        factory=dict, converter=_to_metadata, eq=False, hash=False, repr=False
    )
    synthetic_source: str | None = None

    @property
    def is_synthetic(self) -> bool:
        return self.synthetic_source is not None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": str(self.path),
            "label": self.label,
            "group": self.group,
            "metadata": dict(self.metadata),
        }
        if self.synthetic_source is not None:
            data["synthetic_source"] = self.synthetic_source
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        return cls(
            path=data["path"],
            label=int(data["label"]),
            group=str(data["group"]),
            metadata=data.get("metadata") or {},
            synthetic_source=data.get("synthetic_source"),
        )


def _to_names(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _unique_names(_: object, __: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    if not value:
        raise DataError("a class index needs at least one class name")
    seen: set[str] = set()
    for name in value:
        if name in seen:
            raise DataError(f"class name {name!r} appears twice in the class list")
        seen.add(name)


@attrs.frozen(slots=True)
class ClassIndex:
    """The ordered class names; a label is a position in this tuple.

    Kept separate from records so that two datasets (say HAM10000 for training and an
    ISIC ground-truth CSV for testing) can be mapped onto the same label numbers.
    """

    names: tuple[str, ...] = attrs.field(converter=_to_names, validator=_unique_names)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def index(self, name: str) -> int:
        """Label number of ``name``; a :class:`DataError` lists the known names if absent."""
        try:
            return self.names.index(name)
        except ValueError:
            raise DataError(
                f"unknown class {name!r}",
                hint=f"known classes are {', '.join(self.names)}",
            ) from None

    def name(self, label: int) -> str:
        return self.names[label]

    @classmethod
    def ham10000(cls) -> ClassIndex:
        return cls(HAM10000_CLASSES)


@attrs.frozen(slots=True)
class Problem:
    """An input that was skipped, and why: one line of the skipped-file report."""

    source: str
    """The file, or ``file:row N`` for a CSV row."""
    reason: str
    """What was wrong with it."""
    hint: str = ""
    """What the user can do about it."""

    def render(self) -> str:
        text = f"{self.source}: {self.reason}"
        return f"{text} ({self.hint})" if self.hint else text

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason, "hint": self.hint}


@attrs.frozen(slots=True)
class LoadedDataset:
    """What a :class:`Dataset` found: usable records, the class index, the skipped inputs.

    ``found`` counts every image, CSV row or other file the dataset saw, so the invariant
    ``found == len(records) + len(problems)`` can be checked: nothing is dropped silently.

    ``warnings`` are about the data as a whole rather than one input, and do not stop
    a run but can make its figures wrong: above all, that the images cannot be grouped
    by lesion, so a split may put one lesion on both sides (with the column or option
    that would fix it, when the reader can see one). ``dermkit data inspect`` and
    training print them.
    """

    records: tuple[Record, ...]
    classes: ClassIndex
    problems: tuple[Problem, ...] = ()
    found: int = 0
    source: str = ""
    warnings: tuple[str, ...] = ()

    def counts(self) -> list[int]:
        """Images per class, in class-index order."""
        return label_counts(self.records, len(self.classes))

    def group_counts(self) -> list[int]:
        """Distinct groups (lesions) per class, in class-index order."""
        groups: list[set[str]] = [set() for _ in self.classes]
        for record in self.records:
            groups[record.label].add(record.group)
        return [len(g) for g in groups]


@attrs.frozen(slots=True)
class Split:
    """Train, validation and test records; no group appears in two of them."""

    train: tuple[Record, ...]
    val: tuple[Record, ...]
    test: tuple[Record, ...]

    def parts(self) -> dict[str, tuple[Record, ...]]:
        return {"train": self.train, "val": self.val, "test": self.test}


@runtime_checkable
class Dataset(Protocol):
    """Turns a folder or a CSV into records plus a fixed class list.

    ``strict=True`` raises :class:`~dermkit.errors.DataError` at the first bad input;
    otherwise bad inputs are skipped and reported in :attr:`LoadedDataset.problems`.
    """

    name: ClassVar[str]

    def load(self, *, strict: bool = False) -> LoadedDataset: ...


@runtime_checkable
class Splitter(Protocol):
    """Parts records into train/validation/test by group, stratified by label."""

    name: ClassVar[str]

    def split(self, records: Sequence[Record], classes: ClassIndex) -> Split: ...


def _one_imbalance_loss(plan: TrainingPlan) -> None:
    """Class weights and logit offsets both correct the loss for the same imbalance."""
    if plan.class_weight and plan.logit_offsets is not None:
        raise ConfigError(
            "class_weights and logit_adjustment both counter the class imbalance; "
            "together they over-correct toward the rare classes",
            where="balancers",
            hint="use one of the two",
        )


@attrs.frozen(slots=True)
class TrainingPlan:
    """How to feed the training part to ``fit``: declarative, so it can be saved and shown.

    Balancers transform one plan into the next; :mod:`dermkit.data.pipeline` turns the
    final plan into a ``tf.data`` stream. ``records`` may repeat records (oversampling)
    or include synthetic ones; ``sampling`` is ``"shuffle"`` (plain epochs) or
    ``"balanced"`` (equal random draws per class in every batch).
    """

    records: tuple[Record, ...]
    class_weight: Mapping[int, float] | None = None
    sampling: str = attrs.field(
        default="shuffle", validator=attrs.validators.in_(("shuffle", "balanced"))
    )
    steps_per_epoch: int | None = None
    augmentations: tuple[str, ...] = ()
    """Names of augmentation recipes (see :mod:`dermkit.balancers.augment`)."""
    augment_strength: float = 1.0
    logit_offsets: tuple[float, ...] | None = None
    """Added to each class's log-probability inside the training loss only (logit
    adjustment, see :mod:`dermkit.training.losses`); ``None`` is plain cross-entropy."""
    notes: tuple[str, ...] = ()
    """One human-readable line per balancer that changed the plan."""

    def __attrs_post_init__(self) -> None:
        _one_imbalance_loss(self)

    def counts(self, num_classes: int) -> list[int]:
        """Training images per class in this plan (repeats and synthetic ones included)."""
        return label_counts(self.records, num_classes)

    @property
    def synthetic_records(self) -> tuple[Record, ...]:
        return tuple(r for r in self.records if r.is_synthetic)


@attrs.frozen(slots=True)
class BalanceContext:
    """What a balancer may know besides the training records."""

    classes: ClassIndex
    batch_size: int
    seed: int


@runtime_checkable
class Balancer(Protocol):
    """Counters class imbalance; sees only the training records, never val or test."""

    name: ClassVar[str]

    def apply(self, plan: TrainingPlan, context: BalanceContext) -> TrainingPlan: ...


@runtime_checkable
class ModelFactory(Protocol):
    """Builds a Keras model that takes raw RGB pixels in [0, 255].

    Each factory bakes its own input preprocessing into the model, so the pipeline
    never has to know whether a backbone wants [-1, 1], [0, 1] or BGR mean-centred input,
    and a saved model predicts correctly on its own.
    """

    name: ClassVar[str]
    default_input_size: ClassVar[int]

    def build(self, num_classes: int, input_size: int | None = None) -> keras.Model: ...

    def frozen_prefix_end(self, model: keras.Model) -> str | None:
        """Name of the last layer of the frozen prefix, or ``None`` if nothing is frozen."""
        ...


@runtime_checkable
class Evaluator(Protocol):
    """Scores a model on labelled records and returns a report that can write itself."""

    name: ClassVar[str]

    def evaluate(
        self, probabilities: Any, records: Sequence[Record], classes: ClassIndex
    ) -> Any: ...
