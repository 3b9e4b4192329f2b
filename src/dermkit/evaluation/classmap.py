"""Putting records' labels onto a model's class index, by class name.

A label is only a position in a class list. Two lists that share names rarely share
positions: a folder with ``bcc, mel, nv`` numbers ``bcc`` 0, while a HAM10000 run
numbers ``akiec`` 0. Scoring such records against the run's probabilities by position
would count every ``bcc`` image as ``akiec`` without a word, so everything that scores
probabilities against records goes through :func:`align_records` first.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from dermkit.core import ClassIndex, Record
from dermkit.errors import DataError


@attrs.frozen(slots=True)
class AlignedRecords:
    """Records relabelled to the model's class numbers.

    ``empty`` names the records' classes that had no images (whether or not the model
    knows them): an evaluation set need not hold every class, but a reader wants to
    know which ones it lacked.
    """

    records: tuple[Record, ...]
    empty: tuple[str, ...] = ()


def label_table(record_classes: ClassIndex, model_classes: ClassIndex) -> dict[int, int | None]:
    """Record label -> model label, matched by name exactly or else ignoring case.

    A record class the model does not know maps to ``None``.
    """
    folded: dict[str, int] = {}
    for label, name in enumerate(model_classes):
        folded.setdefault(name.casefold(), label)
    table: dict[int, int | None] = {}
    for label, name in enumerate(record_classes):
        if name in model_classes:
            table[label] = model_classes.index(name)
        else:
            table[label] = folded.get(name.casefold())
    return table


def align_records(
    records: Sequence[Record],
    record_classes: ClassIndex,
    model_classes: ClassIndex,
    *,
    where: str | None = None,
) -> AlignedRecords:
    """``records`` (labelled in ``record_classes``) relabelled to ``model_classes``.

    Classes match by name, exactly or else ignoring case. Images of a class the model
    does not know are a :class:`DataError` that names the classes and their image
    counts: no answer the model gives can be right for them. A class the model does
    not know but that has no images is harmless and only listed in ``empty``.
    """
    counts = [0] * len(record_classes)
    for record in records:
        if not 0 <= record.label < len(record_classes):
            raise DataError(
                f"label {record.label} is out of range for the {len(record_classes)} classes "
                f"{', '.join(record_classes)}",
                where=str(record.path),
                hint="pass the class index the records were read with",
            )
        counts[record.label] += 1
    empty = tuple(name for label, name in enumerate(record_classes) if counts[label] == 0)
    if record_classes == model_classes:
        return AlignedRecords(tuple(records), empty)
    table = label_table(record_classes, model_classes)
    unknown = [
        f"{name} ({counts[label]} image{'s' if counts[label] != 1 else ''})"
        for label, name in enumerate(record_classes)
        if table[label] is None and counts[label] > 0
    ]
    if unknown:
        raise DataError(
            f"the dataset has images of class(es) the model does not know: {', '.join(unknown)}",
            where=where,
            hint=f"the model's classes are {', '.join(model_classes)}; remove those images or "
            "rows, or evaluate a model trained on these classes",
        )
    relabelled = []
    for record in records:
        target = table[record.label]
        assert target is not None  # classes with images were checked above
        relabelled.append(record if target == record.label else attrs.evolve(record, label=target))
    return AlignedRecords(tuple(relabelled), empty)
