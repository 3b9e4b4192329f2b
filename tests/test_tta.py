"""Test-time augmentation: the eight transforms, invariance, and averaging."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dermkit.errors import ConfigError, DataError  # noqa: E402
from dermkit.evaluation.tta import TRANSFORMS, predict_tta, resolve_transforms  # noqa: E402


def _images(n: int = 10, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _model(pooling: bool, size: int = 8) -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs) if pooling else keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Rescaling(1 / 255)(x))
    return keras.Model(inputs, outputs)


def test_the_eight_transforms_are_the_distinct_symmetries_of_the_square() -> None:
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    outs = {name: fn(image) for name, fn in TRANSFORMS.items()}
    assert len({o.tobytes() for o in outs.values()}) == 8
    for out in outs.values():  # each is a permutation of the pixels
        assert sorted(out.ravel().tolist()) == list(range(16))
    np.testing.assert_array_equal(outs["flip_lr"][0, :, :, 0], image[0, :, ::-1, 0])
    np.testing.assert_array_equal(outs["transpose"][0, :, :, 0], image[0, :, :, 0].T)


def test_invariant_model_gives_plain_predictions() -> None:
    model = _model(pooling=True)
    x = _images()
    plain = model.predict(x, verbose=0)
    np.testing.assert_allclose(predict_tta(model, x, batch_size=4), plain, atol=1e-6)


def test_average_over_transforms_is_computed_correctly() -> None:
    model = _model(pooling=False)
    x = _images()
    names = ("identity", "rot90", "flip_ud")
    expected = np.mean([model.predict(TRANSFORMS[n](x), verbose=0) for n in names], axis=0)
    got = predict_tta(model, x, names, batch_size=3)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, model.predict(x, verbose=0), atol=1e-4)  # it did something
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_accepts_batches_and_datasets() -> None:
    tf = pytest.importorskip("tensorflow")
    model = _model(pooling=False)
    x = _images()
    labels = np.arange(10) % 4
    reference = predict_tta(model, x, "flips")
    as_list = predict_tta(model, [x[:6], x[6:]], "flips")
    dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(4)
    np.testing.assert_allclose(as_list, reference, atol=1e-6)
    np.testing.assert_allclose(predict_tta(model, dataset, "flips"), reference, atol=1e-6)


def test_bad_transforms_and_shapes() -> None:
    model = _model(pooling=False)
    assert resolve_transforms("rotations") == ("identity", "rot90", "rot180", "rot270")
    assert len(resolve_transforms("dihedral")) == 8
    with pytest.raises(ConfigError, match="spin"):
        resolve_transforms(["identity", "spin"])
    with pytest.raises(DataError, match="square"):
        predict_tta(model, np.zeros((2, 8, 6, 3), np.float32), "rotations")
    with pytest.raises(DataError, match="batch"):
        predict_tta(model, [np.zeros((8, 8, 3), np.float32)])


def test_on_batch_counts_every_image_once_per_batch() -> None:
    model = _model(pooling=True)
    seen: list[int] = []
    predict_tta(model, _images(n=10), "dihedral", batch_size=4, on_batch=seen.append)
    assert seen == [4, 4, 2]  # images, not image-views: a progress counter's total is n
