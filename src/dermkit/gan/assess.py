"""Assess a generator run: sample it, compare with its real training images, write the report.

This is the use case behind ``dermkit gan evaluate`` and ``benchmarks/gan_quality.py``:
both call :func:`assess_generator`, so the figures a benchmark prints and the
``quality.md`` a user reads come from the same code. The metrics themselves live in
:mod:`dermkit.gan.quality`; this module only gathers the images (real ones through
dermkit's loader, generated ones from the run's averaged generator), reports progress
(feature extraction of a few thousand images takes minutes on a CPU) and writes
``quality.json`` and ``quality.md`` into the run folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np

from dermkit import atomic
from dermkit.errors import ConfigError
from dermkit.gan.quality import ClassQuality


@attrs.frozen
class QualityReport:
    rows: tuple[ClassQuality, ...]
    table: str
    """The Markdown table of ``quality.md``."""
    features: str
    """Which network gave the features (e.g. EfficientNet-Lite0 ImageNet)."""
    generator_step: int
    seconds: float


def assess_generator(
    run_dir: str | Path,
    *,
    features: str = "auto",
    classifier: str | Path | None = None,
    count: int | None = None,
    seed: int = 1,
    cache_dir: str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> QualityReport:
    """Quality of the generator in ``run_dir`` against its own training images, per class.

    ``count`` generated images per class (default: as many as the class has real
    training images, so both sides of every metric are the same size).
    """
    from dermkit.gan.data import load_pixels
    from dermkit.gan.quality import evaluate_quality, quality_table, resolve_extractor
    from dermkit.gan.sample import open_generator

    started = time.perf_counter()
    generator = open_generator(run_dir)
    run = generator.run
    extractor, described = resolve_extractor(features, classifier)
    if extractor is None:
        raise ConfigError(
            f"no feature network for the quality metrics: {described}",
            where="--features",
            hint="set DERMKIT_WEIGHTS for EfficientNet-Lite0's ImageNet weights, or pass "
            "--classifier RUN (a dermkit classifier run trained on the same data)",
        )
    say(f"dermkit: features: {described}; generator of step {generator.step}")
    images = run.training_images()
    real: dict[str, np.ndarray] = {}
    generated: dict[str, np.ndarray] = {}
    for name in run.config.classes:
        paths = [image.path for image in images if image.class_name == name]
        real[name] = load_pixels(paths, run.config.image_size, cache_dir)
        wanted = count if count is not None else len(paths)
        generated[name] = generator.images(name, wanted, seed=seed)
        say(f"dermkit: {name}: {len(paths)} real training images, {wanted} generated")
    say("dermkit: extracting features and computing KID, FID and C2ST (minutes on a CPU)")
    rows = evaluate_quality(real, generated, extractor, seed=seed)
    table = quality_table(rows, described)
    atomic.write_json(
        run.folder / "quality.json",
        {
            "features": described,
            "generator_step": generator.step,
            "generator_sha256": generator.sha256,
            "seed": seed,
            "classes": [row.to_json() for row in rows],
        },
    )
    atomic.write_text(
        run.folder / "quality.md",
        f"# GAN quality: {run.name} (step {generator.step})\n\n{table}",
    )
    return QualityReport(
        tuple(rows), table, described, generator.step, time.perf_counter() - started
    )
