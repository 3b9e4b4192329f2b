"""dermkit.gan: options, layers, networks, DiffAugment, one step, checkpoints and resume.

Models are tiny (16×16 images, 4 channels, latent size 8) and run a handful of steps:
these tests check behaviour (shapes, that a step moves the losses the right way, that
a resumed run is bit-identical), not image quality.
"""

from __future__ import annotations

import io
import json
import math
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dermkit.errors import ConfigError, DataError
from dermkit.gan.config import GanConfig

TINY = {
    "image_size": 16,
    "classes": ("df", "vasc"),
    "z_dim": 8,
    "g_width": 4,
    "d_width": 4,
    "batch_size": 4,
}


def tiny_config(**changes: Any) -> GanConfig:
    return GanConfig(**{**TINY, **changes})


def toy_images(count: int = 12, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two visibly different classes: reddish and bluish smooth images."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    y, x = np.mgrid[0:size, 0:size] / size
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        base = np.array([200, 60, 60]) if label == 0 else np.array([60, 60, 200])
        shade = 40 * (x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1))
        images[i] = np.clip(base + shade[..., None], 0, 255).astype(np.uint8)
    return images, labels.astype(np.int32)


def mean_colour(images: np.ndarray) -> np.ndarray:
    """A toy feature extractor: per-channel mean and spread, about unit scale."""
    pixels = images.astype(np.float64).reshape(len(images), -1, 3) / 64.0
    return np.concatenate([pixels.mean(axis=1), pixels.std(axis=1)], axis=1)


# ----------------------------------------------------------------------------- options


def test_config_round_trips_and_derives_widths() -> None:
    config = GanConfig(image_size=64, classes=("df", "vasc", "akiec"), g_width=16, d_width=8)
    assert GanConfig.from_config(json.loads(json.dumps(config.to_config()))) == config
    assert config.levels == 4
    assert config.generator_widths() == (128, 64, 32, 16)
    assert config.discriminator_widths() == (8, 16, 32, 64, 64)
    assert GanConfig(image_size=128, g_width=8).generator_widths() == (64, 64, 32, 16, 8)


def test_a_gan_json_from_before_d_steps_resumes_with_one_discriminator_step() -> None:
    written = GanConfig(d_steps=3).to_config()
    assert GanConfig.from_config(written).d_steps == 3
    del written["d_steps"]
    assert GanConfig.from_config(written).d_steps == 1
    assert GanConfig().d_steps == 2  # new runs: two discriminator steps per generator step


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"image_size": 48}, "image_size"),
        ({"image_size": 8}, "image_size"),
        ({"augment": "color,rotate"}, "augment"),
        ({"classes": ("df", "df")}, "classes"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"steps": 0}, "steps"),
        ({"d_steps": 0}, "d_steps"),
    ],
)
def test_config_refuses_bad_options(changes: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        tiny_config(**changes)
    assert where in (caught.value.where or "")


def test_config_refuses_unknown_keys_from_json() -> None:
    with pytest.raises(ConfigError, match="unknown GAN option"):
        GanConfig.from_config({**tiny_config().to_config(), "epochs": 3})


def test_augment_none_means_no_diffaugment() -> None:
    assert tiny_config(augment="none").augment == ()


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("size", [16, 32, 64])
def test_generator_and_discriminator_shapes(size: int) -> None:
    from dermkit.gan.networks import build_discriminator, build_generator

    config = tiny_config(image_size=size, classes=("a", "b", "c"))
    generator = build_generator(config)
    discriminator = build_discriminator(config)
    z = np.random.default_rng(0).standard_normal((3, config.z_dim)).astype(np.float32)
    labels = np.array([0, 1, 2], dtype=np.int32)
    images = np.asarray(generator([z, labels], training=False))
    assert images.shape == (3, size, size, 3)
    assert images.min() >= -1.0 and images.max() <= 1.0
    scores = np.asarray(discriminator([images, labels], training=False))
    assert scores.shape == (3, 1)
    assert np.all(np.isfinite(scores))


def test_spectral_norm_divides_out_the_largest_singular_value() -> None:
    import keras

    from dermkit.gan.layers import SNDense

    keras.utils.set_random_seed(0)  # the power-iteration vector's start: not left to test order
    layer = SNDense(6)
    layer.build((None, 10))
    layer.kernel.assign(np.random.default_rng(1).normal(0, 3.0, (10, 6)).astype(np.float32))
    for _ in range(60):  # the power iteration converges across training calls
        layer(np.ones((1, 10), dtype=np.float32), training=True)
    normalized = np.asarray(layer.normalized_kernel(training=False))
    assert np.linalg.svd(normalized, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-3)
    # the raw kernel is kept (unlike keras.layers.SpectralNormalization), so the
    # gradient flows through sigma
    assert np.linalg.svd(np.asarray(layer.kernel), compute_uv=False)[0] > 2.0


def test_conditional_batchnorm_applies_the_gain_and_shift_of_each_class() -> None:
    from dermkit.gan.layers import ConditionalBatchNorm

    layer = ConditionalBatchNorm(2)
    x = np.random.default_rng(2).normal(size=(2, 3, 3, 4)).astype(np.float32)
    layer.build([x.shape, (2,)])
    layer.shift.assign(np.array([[0.0] * 4, [5.0] * 4], dtype=np.float32))
    out = np.asarray(layer([x, np.array([0, 1])], training=False))
    plain = x / np.sqrt(1.0 + layer.epsilon)  # moving mean 0, variance 1
    np.testing.assert_allclose(out[0], plain[0], rtol=1e-5)
    np.testing.assert_allclose(out[1], plain[1] + 5.0, rtol=1e-5)


def test_generator_saves_and_loads_in_safe_mode(tmp_path: Path) -> None:
    from dermkit.gan.networks import build_generator, load_generator, save_generator

    config = tiny_config()
    generator = build_generator(config)
    save_generator(generator, tmp_path / "generator.keras")
    loaded = load_generator(tmp_path / "generator.keras")
    z = np.random.default_rng(3).standard_normal((2, config.z_dim)).astype(np.float32)
    labels = np.array([0, 1], dtype=np.int32)
    np.testing.assert_array_equal(
        np.asarray(generator([z, labels], training=False)),
        np.asarray(loaded([z, labels], training=False)),
    )


def test_loading_a_missing_or_broken_generator_is_a_data_error(tmp_path: Path) -> None:
    from dermkit.gan.networks import load_generator

    with pytest.raises(DataError, match="no generator file"):
        load_generator(tmp_path / "missing.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="could not load the generator"):
        load_generator(tmp_path / "broken.keras")


# ----------------------------------------------------------------------------- DiffAugment


def test_diff_augment_is_seeded_differentiable_and_shape_preserving() -> None:
    import tensorflow as tf

    from dermkit.gan.augment import diff_augment

    images = tf.constant(np.random.default_rng(4).uniform(-1, 1, (5, 16, 16, 3)), tf.float32)
    policy = ("color", "translation", "cutout")
    first = diff_augment(images, policy, tf.constant([1, 2], tf.int64))
    again = diff_augment(images, policy, tf.constant([1, 2], tf.int64))
    other = diff_augment(images, policy, tf.constant([3, 4], tf.int64))
    assert first.shape == images.shape
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.reduce_sum(diff_augment(images, policy, tf.constant([1, 2], tf.int64)))
    gradient = tape.gradient(loss, images)
    assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0


def test_cutout_blanks_at_most_a_half_side_square_and_translation_moves_pixels() -> None:
    import tensorflow as tf

    from dermkit.gan.augment import diff_augment

    ones = tf.ones((8, 16, 16, 3))
    cut = diff_augment(ones, ("cutout",), tf.constant([5, 6], tf.int64)).numpy()
    blanked = (cut[..., 0] == 0).sum(axis=(1, 2))
    assert np.all(blanked > 0) and np.all(blanked <= 8 * 8)
    ramp = tf.constant(np.tile(np.arange(16, dtype=np.float32)[None, :, None, None], (8, 1, 16, 3)))
    moved = diff_augment(ramp, ("translation",), tf.constant([7, 8], tf.int64)).numpy()
    assert moved.shape == ramp.shape
    assert not np.array_equal(moved, ramp.numpy())
    assert set(np.unique(moved)) <= set(range(16))  # shifted content or zero padding


def test_dihedral_keeps_each_image_a_symmetry_of_itself() -> None:
    from dermkit.gan.augment import dihedral

    images = np.random.default_rng(5).integers(0, 256, (16, 6, 6, 3), dtype=np.uint8)
    turned = dihedral(images, np.random.default_rng(0))
    for original, result in zip(images, turned, strict=True):
        variants = [np.rot90(original, k) for k in range(4)]
        variants += [v[:, ::-1] for v in variants]
        assert any(np.array_equal(result, v) for v in variants)


# ----------------------------------------------------------------------------- one step


def test_step_inputs_depend_only_on_seed_and_step() -> None:
    from dermkit.gan.step import step_inputs

    images, labels = toy_images()
    config = tiny_config()
    a, b = step_inputs(images, labels, config, 5), step_inputs(images, labels, config, 5)
    c = step_inputs(images, labels, config, 6)
    np.testing.assert_array_equal(a.real, b.real)
    np.testing.assert_array_equal(a.z_g, b.z_g)
    assert not np.array_equal(a.z_g, c.z_g)
    assert a.real.min() >= -1.0 and a.real.max() <= 1.0


def test_each_discriminator_step_of_a_training_step_gets_its_own_batch() -> None:
    from dermkit.gan.step import GanStep, build_models, step_inputs

    images, labels = toy_images()
    one, two = tiny_config(), tiny_config(d_steps=2)
    single, double = step_inputs(images, labels, one, 3), step_inputs(images, labels, two, 3)
    assert double.real.shape[0] == double.z_d.shape[0] == 2 * two.batch_size
    assert double.seed_d.shape == (2, 2)
    assert not np.array_equal(double.real[:4], double.real[4:])
    assert single.z_g.shape == double.z_g.shape

    models = build_models(two)
    GanStep(models, two)(double)
    assert int(models.opt_d.iterations.numpy()) == 2
    assert int(models.opt_g.iterations.numpy()) == 1


def test_one_step_lowers_the_discriminator_and_the_generator_loss() -> None:
    from dermkit.gan.step import GanStep, build_models, step_inputs

    images, labels = toy_images()
    config = tiny_config(lr_d=1e-3, lr_g=1e-3)
    models = build_models(config)
    step = GanStep(models, config)
    batch = step_inputs(images, labels, config, 0)

    before = step.losses(batch)
    assert step.losses(batch) == before  # evaluating changes nothing
    assert step.update_discriminator(batch) == pytest.approx(before["d_loss"], rel=1e-5)
    after_d = step.losses(batch)
    assert after_d["d_loss"] < before["d_loss"]

    step.update_generator(batch)
    after_g = step.losses(batch)
    assert after_g["g_loss"] < after_d["g_loss"]


def test_standing_statistics_change_only_the_batchnorm_statistics() -> None:
    from dermkit.gan.layers import ConditionalBatchNorm
    from dermkit.gan.networks import build_generator
    from dermkit.gan.step import standing_statistics

    config = tiny_config()
    generator = build_generator(config)
    before = {v.path: v.numpy().copy() for v in generator.weights}
    standing_statistics(generator, np.array([0.5, 0.5]), config.z_dim, seed=0, batches=3)
    norms = [layer for layer in generator.layers if isinstance(layer, ConditionalBatchNorm)]
    statistic_paths = {v.path for n in norms for v in (n.moving_mean, n.moving_variance)}
    for variable in generator.weights:
        unchanged = np.array_equal(before[variable.path], variable.numpy())
        assert unchanged == (variable.path not in statistic_paths), variable.path
    assert all(layer.momentum == 0.9 for layer in norms)


# ----------------------------------------------------------------------------- training


def test_checkpoint_restores_identical_weights(tmp_path: Path) -> None:
    from dermkit.gan.checkpoint import load_checkpoint, save_checkpoint
    from dermkit.gan.step import build_models

    config = tiny_config()
    saved = build_models(config)
    for variable in saved.generator.trainable_variables:  # make them differ from a fresh build
        variable.assign(variable + 0.25)
    saved.opt_d.iterations.assign(7)
    save_checkpoint(tmp_path / "last.npz", saved)
    fresh = build_models(config)
    load_checkpoint(tmp_path / "last.npz", fresh)
    for owner, variables in saved.checkpointed().items():
        for a, b in zip(variables, fresh.checkpointed()[owner], strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())

    other = build_models(tiny_config(g_width=8))
    with pytest.raises(DataError, match=r"other variables|shape"):
        load_checkpoint(tmp_path / "last.npz", other)


def _all_checkpoint_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(run_dir / "checkpoints" / "last.npz") as archive:
        return {key: archive[key] for key in archive.files}


@pytest.mark.slow
def test_interrupted_and_resumed_training_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.gan import train as train_module
    from dermkit.gan.train import GanTrainer

    images, labels = toy_images()
    config = tiny_config(
        steps=4, log_every=1, sample_every=2, checkpoint_every=100, kid_every=2, kid_samples=6
    )
    log = io.StringIO()
    straight = GanTrainer(
        config, images, labels, tmp_path / "straight", extractor=mean_colour, stream=log
    ).fit()
    assert straight.steps_done == 4 and not straight.interrupted
    assert "step 4/4" in log.getvalue() and "ETA" in log.getvalue()  # non-TTY: plain lines

    real_inputs = train_module.step_inputs

    def interrupt_at_step_two(*args: Any) -> Any:
        if args[3] == 1:  # Ctrl-C arrives while step 2 (index 1) is being prepared
            signal.raise_signal(signal.SIGINT)
        return real_inputs(*args)

    monkeypatch.setattr(train_module, "step_inputs", interrupt_at_step_two)
    # whatever handler was there before (a background job starts with SIGINT ignored)
    handler_before = signal.getsignal(signal.SIGINT)
    stopped = GanTrainer(
        config, images, labels, tmp_path / "resumed", extractor=mean_colour, quiet=True
    ).fit()
    assert stopped.interrupted and stopped.steps_done == 2
    state = json.loads((tmp_path / "resumed" / "state.json").read_text())
    assert state["step"] == 2 and not state["finished"]
    assert (tmp_path / "resumed" / "generator.keras").is_file()  # samplable at once
    assert signal.getsignal(signal.SIGINT) is handler_before  # handler put back

    monkeypatch.setattr(train_module, "step_inputs", real_inputs)
    resumed = GanTrainer(
        config, images, labels, tmp_path / "resumed", extractor=mean_colour, quiet=True
    ).fit(resume=True)
    assert resumed.steps_done == 4 and not resumed.interrupted

    a, b = (
        _all_checkpoint_arrays(tmp_path / "straight"),
        _all_checkpoint_arrays(tmp_path / "resumed"),
    )
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for name in (
        "log.csv",
        "kid.csv",
        "losses.png",
        "kid.png",
        "samples/latest.png",
        "samples/step_000002.png",
        "samples/step_000004.png",
        "generator.json",
    ):
        assert (tmp_path / "resumed" / name).is_file(), name
    logged = json.loads((tmp_path / "resumed" / "log.json").read_text())
    assert [row["step"] for row in logged] == [1, 2, 3, 4]
    kid_rows = json.loads((tmp_path / "resumed" / "kid.json").read_text())
    assert [row["step"] for row in kid_rows] == [2, 4]
    assert {"kid_df", "kid_vasc", "kid_all"} <= set(kid_rows[0])


def test_a_spent_time_budget_stops_cleanly_and_the_run_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dermkit.gan import train as train_module
    from dermkit.gan.train import GanTrainer

    images, labels = toy_images()
    config = tiny_config(steps=3, d_steps=1, log_every=1, sample_every=100, kid_every=0)
    clock = [1000.0]
    real_inputs = train_module.step_inputs

    def slow_second_step(*args: Any) -> Any:
        if args[3] == 1:  # step 2 takes "an hour"
            clock[0] += 3600.0
        return real_inputs(*args)

    class FakeTime:
        @staticmethod
        def perf_counter() -> float:
            return clock[0]

    monkeypatch.setattr(train_module, "step_inputs", slow_second_step)
    monkeypatch.setattr(train_module, "time", FakeTime)
    log = io.StringIO()
    result = GanTrainer(config, images, labels, tmp_path, stream=log).fit(max_minutes=30)
    assert result.steps_done == 2 and result.out_of_time and not result.interrupted
    assert "30-minute budget is spent at step 2" in log.getvalue()
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 2
    assert (tmp_path / "generator.keras").is_file()

    resumed = GanTrainer(config, images, labels, tmp_path, quiet=True).fit(resume=True)
    assert resumed.steps_done == 3 and not resumed.out_of_time


@pytest.mark.parametrize("minutes", [0.0, -5.0, float("nan"), float("inf")])
def test_a_time_budget_that_is_not_a_positive_number_is_refused(
    tmp_path: Path, minutes: float
) -> None:
    from dermkit.gan.train import GanTrainer

    images, labels = toy_images()
    with pytest.raises(ConfigError, match="positive number of minutes"):
        GanTrainer(tiny_config(), images, labels, tmp_path / "run").fit(max_minutes=minutes)
    assert not (tmp_path / "run").exists()


def test_trainer_refuses_images_of_the_wrong_size(tmp_path: Path) -> None:
    from dermkit.gan.train import GanTrainer

    images, labels = toy_images(size=32)
    with pytest.raises(ConfigError, match="16×16"):
        GanTrainer(tiny_config(), images, labels, tmp_path)


def test_progress_prints_one_line_per_interval_when_not_a_terminal() -> None:
    from dermkit.gan.progress import Progress, format_seconds

    stream = io.StringIO()
    progress = Progress(10, every=5, stream=stream)
    for step in range(1, 11):
        progress.update(step, {"d_loss": 1.0})
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["5/10", "10/10"]
    assert format_seconds(3725) == "1:02:05" and format_seconds(65) == "01:05"


# ----------------------------------------------------------------------------- quality


def test_kid_and_fid_are_near_zero_for_one_distribution_and_grow_with_a_shift() -> None:
    from dermkit.gan.quality import fid, kid

    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    shifted = rng.normal(loc=1.0, size=(300, 8))
    same_kid, same_std = kid(a, b, subset_size=100, subsets=20)
    assert abs(same_kid) < 3 * same_std + 1e-3
    assert kid(a, shifted, subset_size=100, subsets=20)[0] > 0.1
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fid(a, shifted) == pytest.approx(8.0, rel=0.25)  # |Δμ|² with equal covariances


def test_two_sample_test_is_chance_for_one_distribution_and_perfect_for_two() -> None:
    from dermkit.gan.quality import c2st_accuracy

    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(60, 4)), rng.normal(size=(60, 4))
    assert abs(c2st_accuracy(a, b) - 0.5) < 0.2
    assert c2st_accuracy(a, b + 5.0) > 0.95


def test_quality_rows_put_generated_between_floor_and_noise() -> None:
    from dermkit.gan.quality import evaluate_quality, quality_table

    images, labels = toy_images(count=40)
    real = {"df": images[labels == 0], "vasc": images[labels == 1]}
    generated = {  # like the real images, but brighter: worse than real, better than noise
        name: np.clip(x.astype(int) + 40, 0, 255).astype(np.uint8) for name, x in real.items()
    }
    rows = evaluate_quality(real, generated, mean_colour, seed=0)
    assert [row.name for row in rows] == ["df", "vasc", "all"]
    for row in rows:
        assert row.kid_floor < row.kid < row.kid_noise
        assert row.fid_floor < row.fid < row.fid_noise
        assert row.c2st > row.c2st_floor
    table = quality_table(rows, "toy features")
    assert table.count("\n| ") == 4 and "toy features" in table


def test_kid_over_floor_only_where_the_floor_stands_clear_of_zero() -> None:
    from dermkit.gan.quality import ClassQuality

    def row(floor: float, spread: float) -> ClassQuality:
        nan = float("nan")
        return ClassQuality("df", 10, 10, 0.5, 0.1, floor, spread, *[nan] * 8)

    assert row(0.1, 0.01).kid_over_floor == pytest.approx(5.0)
    assert math.isnan(row(0.1, 0.08).kid_over_floor)
    assert math.isnan(row(-0.1, 0.01).kid_over_floor)
    assert row(0.1, 0.08).to_json()["kid_over_floor"] is None


def test_quality_needs_enough_real_images_for_a_floor() -> None:
    from dermkit.gan.quality import evaluate_quality

    images, _ = toy_images(count=3)
    with pytest.raises(ConfigError, match="at least 8"):
        evaluate_quality({"df": images}, {"df": images}, mean_colour)


def test_feature_choice_is_checked() -> None:
    from dermkit.gan.quality import resolve_extractor

    with pytest.raises(ConfigError, match="unknown feature source"):
        resolve_extractor("inception")
    assert resolve_extractor("none") == (None, "none")
    with pytest.raises(ConfigError, match="--classifier"):
        resolve_extractor("classifier")


def test_feature_model_cuts_a_classifier_at_its_penultimate_layer() -> None:
    from dermkit.gan.quality import keras_extractor
    from dermkit.models.lfn import LFN

    model = LFN(dense=(12,)).build(3, 64)
    features = keras_extractor(model)(np.zeros((2, 32, 32, 3), dtype=np.uint8))
    assert features.shape == (2, 12)  # resized to 64 px, cut before the softmax
