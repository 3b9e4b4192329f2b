"""Grad-CAM on a tiny conv net that learns to find a bright square, flat and nested."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dermkit.errors import ConfigError, DataError  # noqa: E402
from dermkit.evaluation.gradcam import (  # noqa: E402
    find_last_conv_layer,
    gradcam,
    overlay,
    resolve_layer,
)

SIZE = 32
SQUARE = 8


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Dim noise; half the images get a bright square at a random position."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 90, size=(n, SIZE, SIZE, 3)).astype("float32")
    y = (np.arange(n) % 2).astype("int64")
    corners = []
    for i in range(n):
        r, c = (int(v) for v in rng.integers(0, SIZE - SQUARE + 1, 2))
        corners.append((r, c))
        if y[i]:
            x[i, r : r + SQUARE, c : c + SQUARE] = 255.0
    return x, y, corners


@pytest.fixture(scope="module")
def trained() -> tuple[keras.Model, keras.Model]:
    """The same trained layers as a flat model and as an outer model around a trunk."""
    keras.utils.set_random_seed(0)
    rescale = keras.layers.Rescaling(1 / 255)
    conv1 = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")
    pool = keras.layers.MaxPooling2D(name="pool")
    conv2 = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")
    gmp = keras.layers.GlobalMaxPooling2D(name="gmp")
    head = keras.layers.Dense(2, activation="softmax", name="head")

    trunk_in = keras.Input((SIZE, SIZE, 3))
    trunk = keras.Model(trunk_in, conv2(pool(conv1(trunk_in))), name="trunk")
    outer_in = keras.Input((SIZE, SIZE, 3))
    nested = keras.Model(outer_in, head(gmp(trunk(rescale(outer_in)))), name="nested")
    flat_in = keras.Input((SIZE, SIZE, 3))
    flat = keras.Model(flat_in, head(gmp(conv2(pool(conv1(rescale(flat_in)))))), name="flat")

    x, y, _ = _images(512, seed=0)
    nested.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    nested.fit(x, y, batch_size=32, epochs=3, verbose=0, shuffle=False)
    return flat, nested


def test_finds_last_conv_layer_flat_and_nested(trained: tuple[keras.Model, keras.Model]) -> None:
    flat, nested = trained
    assert find_last_conv_layer(flat) == ("conv2",)
    assert find_last_conv_layer(nested) == ("trunk", "conv2")
    assert resolve_layer(nested, "conv1") == ("trunk", "conv1")
    assert resolve_layer(nested, "trunk/conv1") == ("trunk", "conv1")
    with pytest.raises(ConfigError, match="no layer named"):
        resolve_layer(nested, "conv9")


def test_heatmap_peaks_inside_the_square(trained: tuple[keras.Model, keras.Model]) -> None:
    _, nested = trained
    x, y, corners = _images(16, seed=1)
    positives = np.flatnonzero(y == 1)[:6]
    assert (nested.predict(x, verbose=0).argmax(axis=1) == y).mean() >= 0.9
    heat = gradcam(nested, x[positives], class_index=1)
    assert heat.shape == (len(positives), SIZE, SIZE)
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    hits = 0
    for k, i in enumerate(positives):
        r, c = np.unravel_index(np.argmax(heat[k]), heat[k].shape)
        top, left = corners[i]
        hits += top <= r < top + SQUARE and left <= c < left + SQUARE
    assert hits >= len(positives) - 1


def test_nested_and_flat_models_give_the_same_heatmap(
    trained: tuple[keras.Model, keras.Model],
) -> None:
    flat, nested = trained
    x, _, _ = _images(4, seed=2)
    np.testing.assert_allclose(gradcam(flat, x), gradcam(nested, x), atol=1e-5)
    single = gradcam(nested, x[0], layer="conv1", class_index=0)
    assert single.shape == (SIZE, SIZE)


def test_keras_applications_backbone_inside_a_functional_model() -> None:
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(64, 64, 3), alpha=0.35
    )
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(base(x))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    assert find_last_conv_layer(model) == (base.name, "out_relu")
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    heat = gradcam(model, images)
    assert heat.shape == (2, 64, 64) and np.all((heat >= 0) & (heat <= 1))


def test_overlay_is_uint8_rgb_of_the_image_size() -> None:
    image = np.full((40, 30, 3), 128, dtype=np.uint8)
    heat = np.zeros((10, 10))
    heat[0, 0] = 1.0
    out = overlay(image, heat, alpha=0.5)
    assert out.shape == (40, 30, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[0, 0], out[-1, -1])  # hot corner differs from cold one
    assert np.array_equal(overlay(image, heat, alpha=0.0), image)
    grey = overlay(np.zeros((8, 8), dtype=np.uint8), np.ones((8, 8)))
    assert grey.shape == (8, 8, 3)
    with pytest.raises(DataError):
        overlay(image, np.zeros((2, 2, 2)))
    with pytest.raises(ConfigError):
        overlay(image, heat, colormap="no-such-map")


def test_heatmap_goes_back_onto_the_original_geometry() -> None:
    from dermkit.evaluation.gradcam_figure import heatmap_on_original

    heat = np.zeros((8, 8))
    heat[:, :4] = 1.0  # the left half of what the model saw
    squash = heatmap_on_original(heat, (30, 60), "squash")
    assert squash.shape == (30, 60)
    assert squash[:, :25].min() > 0.9 and squash[:, 35:].max() < 0.1
    crop = heatmap_on_original(heat, (30, 60), "center_crop")
    assert crop.shape == (30, 60)
    assert crop[:, :15].max() == 0.0 and crop[:, 45:].max() == 0.0  # never seen
    assert crop[:, 16:28].min() > 0.9 and crop[:, 32:44].max() < 0.1
    pad_heat = np.zeros((8, 8))
    pad_heat[2:6, :] = 1.0  # a 60x30 image padded to a square sits in rows 2-5
    pad = heatmap_on_original(pad_heat, (30, 60), "pad")
    assert pad.shape == (30, 60) and pad.min() > 0.9
    with pytest.raises(ConfigError, match="resize mode"):
        heatmap_on_original(heat, (30, 60), "stretch")


def test_gradcam_figure_puts_the_original_beside_its_overlay_under_a_label() -> None:
    from dermkit.evaluation.gradcam_figure import caption, gap_width, gradcam_figure

    original = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    heat = np.ones((8, 8))
    label = caption("mel", 0.8734)
    assert label == "mel p=0.87"
    figure = gradcam_figure(original, heat, label)
    gap = gap_width(70)
    banner = figure.shape[0] - 45
    assert figure.dtype == np.uint8 and figure.shape == (banner + 45, 70 + gap + 70, 3)
    assert banner > 0
    np.testing.assert_array_equal(figure[banner:, :70], original)  # untouched original
    assert not np.array_equal(figure[banner:, 70 + gap :], original)  # the overlay
    text = figure[:banner]
    assert text.min() < 100 and text.max() == 255  # dark text on a white strip
    unlabelled = gradcam_figure(original, heat, "")
    assert unlabelled[:banner].min() == 255
