"""Frozen-feature caching: cutting a model, dihedral views, and the on-disk store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dermkit.errors import ConfigError
from dermkit.features import FeatureCache, apply_view, prefix_key, split_at
from dermkit.features.views import DIHEDRAL_VIEWS


def _residual_model(seed: int = 0):  # type: ignore[no-untyped-def]
    import keras

    keras.utils.set_random_seed(seed)
    image = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="scale")(image)
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="inner")(x)
    x = keras.layers.Add(name="block_out")([x, y])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(image, out)
    model.get_layer("stem").trainable = False
    model.get_layer("inner").trainable = False
    return model


def test_views_are_the_eight_distinct_dihedral_images() -> None:
    image = np.arange(3 * 3 * 1, dtype=np.uint8).reshape(3, 3, 1)
    views = [apply_view(image, k).tobytes() for k in range(DIHEDRAL_VIEWS)]
    assert len(set(views)) == DIHEDRAL_VIEWS
    assert np.array_equal(apply_view(image, 0), image)
    batch = np.stack([image, image + 1])
    for k in range(DIHEDRAL_VIEWS):
        assert np.array_equal(apply_view(batch, k)[1], apply_view(image + 1, k))
    with pytest.raises(ValueError):
        apply_view(image, 8)


def test_prefix_then_tail_equals_the_model() -> None:
    model = _residual_model()
    cut = split_at(model, "block_out")
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    whole = np.asarray(model(images))
    parts = np.asarray(cut.tail(cut.prefix(images)))
    np.testing.assert_allclose(parts, whole, atol=1e-6)
    # pushed through the weightless pooling after the block: only the Dense layer trains
    assert cut.layer == "pool" and cut.feature_shape == (4,) and cut.frontier == ()
    # The tail shares the model's layers: changing one changes the other.
    dense = cut.tail.get_layer("predictions")
    assert dense is model.get_layer("predictions")


def test_a_cut_inside_a_residual_block_caches_the_shortcut_too() -> None:
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(image)
    y = keras.layers.Conv2D(4, 3, padding="same", name="inner")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="inner_trained")(y)
    x = keras.layers.Add(name="block_out")([x, y])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(image, keras.layers.Dense(3, name="predictions")(x))
    model.get_layer("stem").trainable = False
    model.get_layer("inner").trainable = False

    cut = split_at(model, "stem")  # the factory's single-tensor cut, pushed to "inner"
    assert cut.layer == "inner" and cut.frontier == ("stem", "inner")
    assert cut.feature_shape == (2 * 16 * 16 * 4,)
    images = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(cut.tail(cut.prefix(images))), np.asarray(model(images)), atol=1e-5
    )
    assert {w.path.split("/")[0] for w in cut.tail.trainable_weights} == {
        "inner_trained",
        "predictions",
    }
    with pytest.raises(ConfigError, match="no layer"):
        split_at(model, "nonexistent")


def test_prefix_key_changes_with_weights_cut_and_settings() -> None:
    from dermkit.data.images import ImageSettings

    model = _residual_model()
    settings = ImageSettings(size=16)
    key = prefix_key(split_at(model, "block_out").prefix, "block_out", settings)
    assert key == prefix_key(split_at(_residual_model(), "block_out").prefix, "block_out", settings)
    other_weights = _residual_model(seed=1)
    assert key != prefix_key(split_at(other_weights, "block_out").prefix, "block_out", settings)
    assert key != prefix_key(split_at(model, "stem").prefix, "stem", settings)
    assert key != prefix_key(
        split_at(model, "block_out").prefix, "block_out", ImageSettings(size=16, resize_mode="pad")
    )
    # An initialiser does not change a built layer's output: same weights, same key.
    import keras

    reinitialised = keras.models.clone_model(
        model,
        clone_function=lambda layer: layer.__class__.from_config(
            {**layer.get_config(), "kernel_initializer": "zeros"}
            if "kernel_initializer" in layer.get_config()
            else layer.get_config()
        ),
    )
    reinitialised.set_weights(model.get_weights())
    for layer in reinitialised.layers:
        layer.trainable = model.get_layer(layer.name).trainable
    assert key == prefix_key(split_at(reinitialised, "block_out").prefix, "block_out", settings)


def test_cache_computes_once_and_reads_back_every_view(tmp_path: Path, write_image) -> None:  # type: ignore[no-untyped-def]
    from dermkit.data.images import ImageSettings
    from dermkit.data.loader import ImageLoader

    paths = [write_image(tmp_path / "images" / f"{i}.png", 16, 16, seed=i) for i in range(5)]
    model = _residual_model()
    cut = split_at(model, "block_out")
    loader = ImageLoader(ImageSettings(size=16))
    key = prefix_key(cut.prefix, cut.layer, loader.settings)
    calls: list[int] = []

    def prefix(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return np.asarray(cut.prefix.predict_on_batch(batch.astype("float32")))

    cache = FeatureCache(tmp_path / "features")
    first = cache.features(prefix, key, cut.feature_shape, paths, loader, views=3, batch_size=2)
    assert first.shape == (5, 3, *cut.feature_shape) and first.dtype == np.float16
    assert cache.computed == 15 and sum(calls) == 15
    # Each view is the prefix applied to that view of the image.
    images = loader.load_batch(paths)
    for view in range(3):
        expected = cut.prefix.predict_on_batch(apply_view(images, view).astype("float32"))
        np.testing.assert_allclose(first[:, view], expected, rtol=2e-3, atol=2e-3)

    again = FeatureCache(tmp_path / "features")
    second = again.features(prefix, key, cut.feature_shape, paths, loader, views=3)
    assert again.computed == 0 and again.read == 15
    np.testing.assert_array_equal(first, second)

    # A damaged entry is recomputed, not read.
    entry = Path(again.entry(key, 1, paths[0]))
    entry.write_bytes(entry.read_bytes()[:40])
    third = FeatureCache(tmp_path / "features")
    third.features(prefix, key, cut.feature_shape, paths, loader, views=3)
    assert third.computed == 1


def test_entries_follow_the_image_bytes_not_its_path_or_time(tmp_path: Path, write_image) -> None:  # type: ignore[no-untyped-def]
    import os
    import shutil

    from dermkit.data.images import ImageSettings
    from dermkit.data.loader import ImageLoader

    paths = [write_image(tmp_path / "a" / f"{i}.png", 16, 16, seed=i) for i in range(3)]
    model = _residual_model()
    cut = split_at(model, "block_out")
    loader = ImageLoader(ImageSettings(size=16), cache=None)
    key = prefix_key(cut.prefix, cut.layer, loader.settings)

    def prefix(batch: np.ndarray) -> np.ndarray:
        return np.asarray(cut.prefix.predict_on_batch(batch.astype("float32")))

    FeatureCache(tmp_path / "f").features(prefix, key, cut.feature_shape, paths, loader)
    # The dataset copied elsewhere and touched: same bytes, so nothing is recomputed.
    copied = shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = [Path(copied) / Path(p).name for p in paths]
    for path in moved:
        os.utime(path, ns=(1, 1))
    again = FeatureCache(tmp_path / "f")
    again.features(prefix, key, cut.feature_shape, moved, loader)
    assert again.computed == 0 and again.read == 3
    # One image edited: only that one is computed afresh.
    write_image(moved[1], 16, 16, seed=99)
    third = FeatureCache(tmp_path / "f")
    third.features(prefix, key, cut.feature_shape, moved, loader)
    assert third.computed == 1 and third.read == 2
