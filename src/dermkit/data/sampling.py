"""Class-balanced sampling: equal random draws per class, for batches and for tests.

Two users share this code: the ``balanced_batches`` balancer (every training batch holds
the same number of images of each class, as in the original study's generator) and the
study's balanced test (the same number of test images per class, so that accuracy is
the mean of per-class recalls rather than mostly nv). Both work on label lists and
return *indices*, never records or pixels, so the draw can be made, saved and replayed
before any image is decoded.

Only the labels that occur in ``labels`` are classes here: a class with no samples
cannot be drawn, so it is not part of the balance. Pass ``num_classes`` to make a
missing class an error (:class:`~dermkit.errors.DataError`) instead; a balanced sample
that silently lacks a class would report scores for six classes as if for seven.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from dermkit.errors import ConfigError, DataError

IndexArray = npt.NDArray[np.int64]


def _by_class(labels: Sequence[int], num_classes: int | None, where: str) -> list[IndexArray]:
    """Indices of each present class, in label order (labels ascending)."""
    array = np.asarray(labels, dtype=np.int64).reshape(-1)
    if array.size == 0:
        raise DataError("there are no labels to sample from", where=where)
    if array.min() < 0:
        raise DataError(f"labels cannot be negative, got {int(array.min())}", where=where)
    present = np.unique(array)
    if num_classes is not None:
        if int(present[-1]) >= num_classes:
            raise DataError(
                f"label {int(present[-1])} is out of range for {num_classes} classes",
                where=where,
            )
        missing = sorted(set(range(num_classes)) - {int(c) for c in present})
        if missing:
            raise DataError(
                f"label(s) {', '.join(map(str, missing))} have no samples, so no balanced "
                "sample can contain them",
                where=where,
                hint="check that every class is present in this part of the split",
            )
    return [np.flatnonzero(array == c).astype(np.int64) for c in present]


def balanced_indices(
    labels: Sequence[int],
    per_class: int,
    *,
    seed: int,
    replace: bool | None = None,
    num_classes: int | None = None,
) -> IndexArray:
    """``per_class`` random indices of every class, shuffled together.

    ``replace=None`` draws without replacement from classes that have at least
    ``per_class`` samples and with replacement from smaller ones (so every class still
    contributes ``per_class`` draws); ``True`` always draws with replacement; ``False``
    never does, and a class that is too small is a :class:`DataError`.
    """
    where = "balanced_indices"
    if per_class < 1:
        raise ConfigError(f"per_class must be at least 1, got {per_class}", where="per_class")
    rng = np.random.default_rng(seed)
    chunks = []
    for indices in _by_class(labels, num_classes, where):
        with_replacement = replace if replace is not None else len(indices) < per_class
        if not with_replacement and len(indices) < per_class:
            raise DataError(
                f"a class has only {len(indices)} samples, fewer than per_class={per_class}, "
                "and replace=False",
                where=where,
                hint="lower per_class or allow replacement (replace=None)",
            )
        chunks.append(rng.choice(indices, size=per_class, replace=with_replacement))
    out = np.concatenate(chunks).astype(np.int64)
    rng.shuffle(out)
    return out


class _Cycle:
    """Endless draws from one class: a fresh permutation each time the last one runs out.

    Within a class every sample is used once before any is used twice, which spreads a
    small class's images evenly over training instead of repeating some by chance.
    """

    def __init__(self, indices: IndexArray, rng: np.random.Generator) -> None:
        self._indices = indices
        self._rng = rng
        self._order = rng.permutation(indices)
        self._pos = 0

    def take(self, n: int) -> IndexArray:
        out: list[IndexArray] = []
        while n > 0:
            if self._pos == len(self._order):
                self._order = self._rng.permutation(self._indices)
                self._pos = 0
            chunk = self._order[self._pos : self._pos + n]
            self._pos += len(chunk)
            n -= len(chunk)
            out.append(chunk)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def balanced_batches(
    labels: Sequence[int],
    batch_size: int,
    steps: int | None,
    seed: int,
    *,
    num_classes: int | None = None,
) -> Iterator[IndexArray]:
    """Index arrays of ``batch_size``, each with equal draws per class, shuffled within.

    With ``k`` classes each batch holds ``batch_size // k`` images of every class; the
    ``batch_size % k`` left over go one each to that many distinct classes chosen at
    random for every batch, so over many batches the classes stay balanced too (with
    ``batch_size < k`` a batch can therefore not hold every class). Draws within a class
    cycle through reshuffled permutations of its samples, so small classes repeat
    (oversampling) and large ones are subsampled. ``steps=None`` yields forever.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}", where="batch_size")
    if steps is not None and steps < 0:
        raise ConfigError(f"steps cannot be negative, got {steps}", where="steps")
    by_class = _by_class(labels, num_classes, "balanced_batches")
    rng = np.random.default_rng(seed)
    cycles = [_Cycle(indices, rng) for indices in by_class]
    k = len(cycles)
    base, extra = divmod(batch_size, k)
    step = 0
    while steps is None or step < steps:
        counts = np.full(k, base, dtype=np.int64)
        if extra:
            counts[rng.choice(k, size=extra, replace=False)] += 1
        batch = np.concatenate([c.take(int(n)) for c, n in zip(cycles, counts, strict=True)])
        rng.shuffle(batch)
        yield batch.astype(np.int64)
        step += 1


def balanced_schedule(
    labels: Sequence[int],
    batch_size: int,
    steps: int,
    seed: int,
    *,
    num_classes: int | None = None,
) -> IndexArray:
    """:func:`balanced_batches` as one ``(steps, batch_size)`` array, for ``tf.data`` slicing."""
    batches = list(balanced_batches(labels, batch_size, steps, seed, num_classes=num_classes))
    if not batches:
        return np.zeros((0, batch_size), dtype=np.int64)
    return np.stack(batches)
