"""GAN oversampling: top minority classes up with images from a trained generator.

The generated images are written once, as PNGs, into the generator run's folder
(``synthetic/<sha256 of generator.keras, 12 hex>-seed<seed>/``, with a manifest), and
reused by every later run with the same generator and seed. They enter the training
plan as records flagged ``synthetic_source`` = the generator run; balancers only ever
see the training part, so they cannot reach validation or test (and the splitter
refuses synthetic records outright).

A generator is refused with a :class:`~dermkit.errors.ConfigError` when it trained on
any image that is not in this run's training part: that image could be one of the
run's validation or test images, and a generator that has seen it leaks it into
training. Train the generator with the same data, ``--val``, ``--test`` and ``--seed``
as the classifier run (``dermkit gan train``), and the two training parts agree.

This module imports neither TensorFlow nor OpenCV; the generator is loaded only when
images are missing from the cache.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import attrs

from dermkit.core import BalanceContext, Record, TrainingPlan
from dermkit.errors import ConfigError

WHERE = "gan_oversampling balancer"


def _to_classes(value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(v) for v in value)


def _check_target(_: object, __: attrs.Attribute[float | int], value: float | int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"target must be a number, got {value!r}", where=f"{WHERE}, target")
    if isinstance(value, float) and not value.is_integer() and not 0.0 < value <= 1.0:
        raise ConfigError(
            f"target {value} is neither a ratio in (0, 1] nor a whole image count",
            where=f"{WHERE}, target",
            hint="e.g. target=0.5 (half the largest class) or target=300 (images per class)",
        )
    if value <= 0:
        raise ConfigError(f"target must be positive, got {value}", where=f"{WHERE}, target")


@attrs.frozen(slots=True)
class GanOversampling:
    """Add generated images to the classes below ``target``.

    ``generator`` is a run folder written by ``dermkit gan train``. ``target`` is a
    ratio of the largest class's count (a float in (0, 1], default 1.0) or an image
    count per class (a whole number above 1). ``classes`` limits which classes are
    topped up (default: every class the generator knows). Images per class are drawn
    with the run's seed; the same seed and generator always give the same images.
    """

    name: ClassVar[str] = "gan_oversampling"
    path_options: ClassVar[tuple[str, ...]] = ("generator",)
    """Stored absolute in a run's recipe, so the run resumes from any folder."""
    generator: str = attrs.field(converter=str)
    target: float | int = attrs.field(default=1.0, validator=_check_target)
    classes: tuple[str, ...] = attrs.field(default=(), converter=_to_classes)

    def target_count(self, largest: int) -> int:
        if isinstance(self.target, float) and self.target <= 1.0:
            return round(largest * self.target)
        return int(self.target)

    def apply(self, plan: TrainingPlan, context: BalanceContext) -> TrainingPlan:
        from dermkit.gan.run import GanRun

        run = GanRun.open(self.generator)
        real = [r for r in plan.records if not r.is_synthetic]
        check_training_images(run, real)
        classes = self.classes or run.config.classes
        for name in classes:
            if name not in run.config.classes:
                raise ConfigError(
                    f"generator {run.name} was not trained on class {name!r}",
                    where=f"{WHERE}, classes",
                    hint=f"it generates {', '.join(run.config.classes)}",
                )
            context.classes.index(name)  # a DataError naming the run's classes if absent
        counts = Counter(r.label for r in plan.records)
        largest = max(counts.values(), default=0)
        target = self.target_count(largest)
        wanted = {
            name: target - counts.get(context.classes.index(name), 0)
            for name in classes
            if target > counts.get(context.classes.index(name), 0)
        }
        added = self._records(run, wanted, context) if wanted else []
        shown = ", ".join(f"{name} +{n}" for name, n in wanted.items()) or "no class below target"
        note = (
            f"gan_oversampling (generator {run.name}, target {target} per class): {shown} "
            f"synthetic images"
        )
        return attrs.evolve(plan, records=(*plan.records, *added), notes=(*plan.notes, note))

    def _records(self, run: Any, wanted: dict[str, int], context: BalanceContext) -> list[Record]:
        from dermkit.gan.sample import open_generator, synthetic_records, write_samples

        generator = open_generator(run.folder)
        folder = run.folder / "synthetic" / f"{generator.sha256[:12]}-seed{context.seed}"
        records: list[Record] = []
        for name, count in wanted.items():
            paths = write_samples(generator, name, count, folder / name, seed=context.seed)
            records.extend(
                synthetic_records(generator, paths, name, context.classes.index(name), context.seed)
            )
        return records


def check_training_images(run: Any, train: Sequence[Record]) -> None:
    """Refuse ``run``'s generator if it trained on any image outside ``train``.

    Images are compared by their real absolute paths (``training_images.csv`` records
    them so).
    """
    from dermkit.gan.run import TRAINING_IMAGES, image_key

    allowed = {image_key(r.path) for r in train}
    seen = run.training_images()
    outside = [image.path for image in seen if image.path not in allowed]
    if outside:
        raise ConfigError(
            f"generator {run.name} was trained on {len(outside)} of its {len(seen)} images "
            f"that are not in this run's training part (for example {outside[0]}); they may be "
            "this run's validation or test images, and a generator that has seen them would "
            "leak them into training",
            where=f"{WHERE}, generator {run.folder / TRAINING_IMAGES}",
            hint="train the generator on this run's split: `dermkit gan train` with the same "
            "--data, --val, --test and --seed as this run (and no --limit)",
        )
