"""Training on cached frozen-prefix activations: the same fit as on pixels, only faster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dermkit.core import Record, TrainingPlan
from dermkit.errors import ConfigError
from dermkit.features.training import choose


def _plan(*augmentations: str) -> TrainingPlan:
    return TrainingPlan(records=(Record("a.png", 0, "a"),), augmentations=augmentations)


def test_auto_caches_when_no_random_augmentation_would_be_lost() -> None:
    decision = choose("auto", None, _plan(), "block15_add", "m")
    assert decision.use and decision.views == 1
    decision = choose("auto", None, _plan("flip", "rotate90"), "block15_add", "m")
    assert decision.use and decision.views == 8
    decision = choose("auto", 3, _plan("flip"), "block15_add", "m")
    assert decision.views == 3


def test_auto_keeps_random_augmentation_and_says_so() -> None:
    decision = choose("auto", None, _plan("flip", "zoom", "color"), "block15_add", "m")
    assert not decision.use
    assert "zoom, color" in decision.message and "feature_cache=on" in decision.message


def test_on_drops_random_augmentation_and_says_so() -> None:
    decision = choose("on", None, _plan("flip", "zoom"), "block15_add", "m")
    assert decision.use and decision.dropped == ("zoom",) and decision.views == 8
    assert "left out: zoom" in decision.message


def test_nothing_frozen_means_nothing_to_cache() -> None:
    assert not choose("auto", None, _plan(), None, "lfn").use
    assert not choose("off", None, _plan(), "block15_add", "m").use
    with pytest.raises(ConfigError, match="nothing in the model is frozen"):
        choose("on", None, _plan(), None, "lfn")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermkit.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), size=32, scale=0.12, seed=3)


def _experiment(data: Path, cache_dir: str, *, augment: Any = None, **training: Any) -> Any:
    from dermkit.balancers.class_weights import ClassWeights
    from dermkit.data.folder import ImageFolder
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.experiment import Experiment
    from dermkit.models.efficientnet_lite import EfficientNetLite0
    from dermkit.training.config import Training

    options = {"epochs": 2, "batch_size": 8, "verbose": 0, "learning_rate": 1e-3, **training}
    return Experiment(
        data=ImageFolder(data),
        split=GroupedStratifiedSplit(val=0.25, test=0.25, seed=0),
        model=EfficientNetLite0(weights=None, trainable_layers=8, dropout=0.2),
        balancer=[ClassWeights(), *([augment] if augment is not None else [])],
        training=Training(**options),
        image_size=32,
        cache_dir=cache_dir,
    )


@pytest.mark.slow
def test_cached_and_uncached_training_agree(tiny_data: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    pixels = _experiment(tiny_data, cache, feature_cache="off").run(tmp_path / "pixels")
    cached = _experiment(tiny_data, cache, feature_cache="on").run(tmp_path / "cached")
    # Same batches in the same order, same dropout draws: only float16 storage differs.
    np.testing.assert_allclose(cached.history["loss"], pixels.history["loss"], rtol=2e-2)
    for part in ("val", "test"):
        a = np.load(tmp_path / "pixels" / f"probabilities_{part}.npy")
        b = np.load(tmp_path / "cached" / f"probabilities_{part}.npy")
        np.testing.assert_allclose(b, a, atol=2e-2)
    # The activations were stored beside the image cache; a second run reads them.
    assert any((Path(cache) / "features").rglob("*.npy"))


@pytest.mark.slow
@pytest.mark.parametrize("feature_cache", ["on", "off"])
def test_training_with_dropout_resumes_exactly(
    tiny_data: Path, tmp_path: Path, feature_cache: str
) -> None:
    """The head's Dropout draws the same masks in a resumed epoch as in an uninterrupted
    run: Keras seeds each Dropout when the model is built, and a resumed run reloads it,
    so the trainer reseeds every random layer per epoch (dermkit.training.randomness)."""
    from dermkit.experiment import Experiment

    cache = str(tmp_path / "cache")
    options = {"feature_cache": feature_cache, "cache_views": 2}
    straight = _experiment(tiny_data, cache, epochs=3, **options)
    straight.run(tmp_path / "straight")
    stopped = _experiment(tiny_data, cache, epochs=1, **options)
    stopped.run(tmp_path / "stopped")
    Experiment.resume(tmp_path / "stopped", epochs=3)
    a = json.loads((tmp_path / "straight" / "history.json").read_text())
    b = json.loads((tmp_path / "stopped" / "history.json").read_text())
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    np.testing.assert_allclose(b["val_loss"], a["val_loss"], rtol=1e-5)


def test_feature_cache_on_without_a_frozen_prefix_stops_before_the_run_folder(
    tiny_data: Path, tmp_path: Path
) -> None:
    import attrs

    from dermkit.models.lfn import LFN
    from dermkit.training.config import Training

    experiment = attrs.evolve(
        _experiment(tiny_data, ""),
        model=LFN(dense=(8,)),
        training=Training(epochs=1, batch_size=8, verbose=0, feature_cache="on"),
        image_size=64,
    )
    with pytest.raises(ConfigError, match="nothing in the model is frozen"):
        experiment.run(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_cut_is_pushed_through_frozen_layers_and_caches_the_frontier() -> None:
    from dermkit.features.cut import split_at
    from dermkit.models.applications import ResNet50

    factory = ResNet50(weights=None, trainable_layers=4)
    model = factory.build(4, input_size=32)
    cut = split_at(model, factory.frozen_prefix_end(model) or "")
    # conv5_block3's first two convolutions are frozen: the prefix takes them, and the
    # shortcut from conv5_block2_out is cached beside their output
    assert cut.layer == "conv5_block3_2_relu"
    assert cut.frontier == ("conv5_block2_out", "conv5_block3_2_relu")
    trained = {w.path.split("/")[0] for w in cut.tail.trainable_weights}
    assert "conv5_block3_3_conv" in trained and "conv5_block3_2_conv" not in trained
    x = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3)).astype("float32")
    direct = np.asarray(model.predict_on_batch(x))
    through_cut = np.asarray(cut.tail.predict_on_batch(cut.prefix.predict_on_batch(x)))
    np.testing.assert_allclose(through_cut, direct, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cached_and_uncached_training_agree_across_a_residual_cut(
    tiny_data: Path, tmp_path: Path
) -> None:
    import attrs

    from dermkit.models.applications import ResNet50

    cache = str(tmp_path / "cache")
    model = ResNet50(weights=None, trainable_layers=4)
    pixels = attrs.evolve(_experiment(tiny_data, cache, feature_cache="off"), model=model)
    cached = attrs.evolve(_experiment(tiny_data, cache, feature_cache="on"), model=model)
    a = pixels.run(tmp_path / "pixels").history["loss"]
    b = cached.run(tmp_path / "cached").history["loss"]
    np.testing.assert_allclose(b, a, rtol=2e-2)


def test_stochastic_depth_in_the_tail_is_active_when_training_on_cached_features(
    tiny_data: Path, tmp_path: Path
) -> None:
    import attrs

    from dermkit.models.efficientnet_lite import EfficientNetLite0

    cache = str(tmp_path / "cache")
    losses = {}
    for rate in (0.0, 0.5):
        # Blocks 14-15 train; block 14's residual branch is dropped per image in training.
        model = EfficientNetLite0(weights=None, trainable_layers=20, drop_connect=rate)
        cached = attrs.evolve(_experiment(tiny_data, cache, feature_cache="on"), model=model)
        losses[rate] = cached.run(tmp_path / f"cached-{rate}").history["loss"]
    # The cache still skips blocks 0-13 (the Dropout sits in the trainable tail), and the
    # tail trained on those activations does drop branches: other losses than without.
    assert len(list((Path(cache) / "features").rglob("*.npy"))) >= 1
    assert not np.allclose(losses[0.5], losses[0.0], rtol=1e-3)


def test_tta_views_are_the_stored_views() -> None:
    from dermkit.evaluation.tta import TRANSFORMS
    from dermkit.features.predict import TRANSFORM_VIEWS
    from dermkit.features.views import apply_view

    batch = np.arange(2 * 3 * 3 * 2).reshape(2, 3, 3, 2)
    assert set(TRANSFORM_VIEWS) == set(TRANSFORMS)
    for name, transform in TRANSFORMS.items():
        assert np.array_equal(transform(batch), apply_view(batch, TRANSFORM_VIEWS[name])), name


@pytest.mark.slow
def test_prediction_reads_stored_views_and_falls_back_to_pixels(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Images whose eight views training stored are scored by the tail alone; the
    others (the test part) on pixels; both in input order, nothing written."""
    import csv

    from dermkit.balancers.augment import Augment
    from dermkit.features.predict import predict_cached, stored_tail
    from dermkit.runs import load_run

    cache = tmp_path / "cache"
    augment = Augment(recipes=("flip", "rotate90"))
    _experiment(tiny_data, str(cache), augment=augment, epochs=1).run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    with open(tmp_path / "run" / "split.csv", newline="", encoding="utf-8") as handle:
        parts = {row["path"]: row["part"] for row in csv.DictReader(handle)}
    paths = [p for p in parts if parts[p] == "test"][:3] + [p for p in parts if parts[p] == "train"]
    stored = sorted((cache / "features").rglob("*.npy"))

    tail = stored_tail(run.model, run.loader())
    assert tail is not None
    found = predict_cached(tail, paths, ("identity", "rot90", "flip_ud"))
    assert found.found.tolist() == [parts[p] == "train" for p in paths]
    mixed = run.predict(paths, tta=True, progress=False)
    pixels = run.predict(paths, tta=True, progress=False, feature_cache=False)
    np.testing.assert_allclose(mixed, pixels, atol=2e-3)
    np.testing.assert_allclose(mixed[:3], pixels[:3], atol=1e-6)  # not stored: pixels
    assert not np.array_equal(mixed[3:], pixels[3:])  # float16 activations: read, not recomputed
    assert sorted((cache / "features").rglob("*.npy")) == stored
    # Without a stored activation of this prefix there is nothing to read.
    assert stored_tail(run.model, run.loader(cache=False)) is None
