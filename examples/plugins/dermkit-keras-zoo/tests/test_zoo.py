"""dermkit-keras-zoo through dermkit's public API: registration, scaling, shapes, freezing,
saving, weights files and one training step from the command line.

Models are built at the smallest input each backbone accepts (32 pixels; Xception 71)
with random weights: these tests check structure, not what a network learns. Building
is what costs time, so each test builds only what it reads. No test touches the network.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dermkit import ConfigError, plugins
from dermkit.models import load_model, model_factory

from dermkit_keras_zoo import ZOO, KerasApplication

PLUGIN = "dermkit-keras-zoo:keras_zoo"
NAMES = [factory.name for factory in ZOO]
NUM_CLASSES = 3
TRAINABLE = 7
HIDDEN = 8


def smallest(name: str) -> int:
    return model_factory(name).backbone.min_input  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access is disabled in the tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    plugins.reset()
    yield
    plugins.reset()


def build(name: str, **options: Any) -> tuple[KerasApplication, Any]:
    """The factory with random weights and its model at the smallest input size."""
    factory = model_factory(name, weights=None, **options)
    return factory, factory.build(NUM_CLASSES, smallest(name))  # type: ignore[return-value]


def backbone_layers(model: Any) -> list[Any]:
    """The backbone's own layers: no input, no zoo input scaling, no head."""
    return [
        layer
        for layer in model.layers
        if type(layer).__name__ != "InputLayer"
        and not layer.name.endswith("_preprocess")
        and not layer.name.startswith("head_")
        and layer.name != "probabilities"
    ]


# ------------------------------------------------------------------ registration (no Keras)
def test_every_model_is_registered_under_the_plugins_own_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dermkit.cli.main import main

    models = plugins.available()["models"]
    assert {name: models[name] for name in NAMES} == dict.fromkeys(NAMES, PLUGIN)
    assert models["resnet50"] == "dermkit.models.plugin"  # the built-ins are untouched
    info = {p["name"]: p for p in plugins.plugin_info()}
    assert info[PLUGIN]["hooks"] == ["dermkit_models"]
    assert info[PLUGIN]["version"] == "0.1.0"

    assert main(["plugins"]) == 0
    listed = capsys.readouterr().out
    for name in NAMES:
        assert f"{name} " in listed and f"from {PLUGIN}" in listed


def test_importing_the_plugin_does_not_import_tensorflow() -> None:
    code = (
        "import sys\nfrom dermkit import plugins\nplugins.lookup('models', 'densenet121')\n"
        "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_options_round_trip_through_a_run_configuration() -> None:
    from dermkit.config import build_component, component_config

    factory = model_factory("xception", weights=None, dense=(512, 256), pooling="flatten")
    saved = json.loads(json.dumps(component_config(factory)))
    assert saved == {
        "name": "xception",
        "weights": None,
        "trainable_layers": 0,
        "pooling": "flatten",
        "dense": [512, 256],
        "dropout": 0.4,
    }
    assert build_component("models", saved) == factory


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pooling": "max"}, "pooling"),
        ({"dropout": 1.5}, "dropout"),
        ({"trainable_layers": -2}, "trainable_layers"),
        ({"dense": (512, 0)}, "dense width"),
        ({"weights": ""}, "weights"),
        ({"dropuot": 0.5}, "valid options of densenet121"),
    ],
)
def test_bad_options_are_config_errors_that_name_the_option(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        model_factory("densenet121", **options)
    assert "densenet121" in caught.value.render()


def test_impossible_sizes_and_missing_files_fail_before_building(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 71 pixels"):
        model_factory("xception", weights=None).build(NUM_CLASSES, 64)
    with pytest.raises(ConfigError, match="num_classes"):
        model_factory("densenet121", weights=None).build(1, 32)
    missing = tmp_path / "densenet121_notop.h5"
    with pytest.raises(ConfigError, match="does not exist") as caught:
        model_factory("densenet121", weights=str(missing)).build(NUM_CLASSES, 32)
    assert "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5" in caught.value.render()


# ------------------------------------------------------------------ input scaling
@pytest.mark.parametrize("factory", ZOO, ids=NAMES)
def test_input_scaling_inside_the_model_is_keras_own_preprocess_input(
    factory: type[KerasApplication],
) -> None:
    """What the zoo adds in front of the backbone equals ``preprocess_input`` of its module.

    For the backbones marked ``builtin``, Keras' ``preprocess_input`` is the identity
    (their models scale their own input), so the zoo must add nothing.
    """
    import importlib

    from dermkit_keras_zoo.models import _scaling_layer

    module_name = {
        "DenseNet121": "densenet",
        "Xception": "xception",
        "MobileNetV3Large": "mobilenet_v3",
        "ConvNeXtTiny": "convnext",
    }.get(factory.backbone.application)
    if module_name is None:
        module_name = "efficientnet_v2" if "V2" in factory.backbone.application else "efficientnet"
    keras_module = importlib.import_module(f"keras.applications.{module_name}")
    pixels = np.random.default_rng(0).uniform(0, 255, size=(2, 5, 5, 3)).astype("float32")
    expected = keras_module.preprocess_input(pixels.copy())
    layer = _scaling_layer(factory.backbone.scaling, "scale")
    if layer is None:
        np.testing.assert_array_equal(expected, pixels)
    else:
        np.testing.assert_allclose(np.asarray(layer(pixels)), expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ shapes and freezing
@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_the_keras_backbone_plus_the_head_and_only_the_last_layers_train(
    name: str,
) -> None:
    """Counting needs shapes, not values: both models are built in a ``StatelessScope``,
    which skips initialising their weights and so a third of the build time."""
    import keras

    pooling = "avg" if NAMES.index(name) % 2 == 0 else "flatten"  # both heads get counted
    size = smallest(name)
    with keras.StatelessScope():
        factory, model = build(
            name, trainable_layers=TRAINABLE, pooling=pooling, dense=HIDDEN, dropout=0.1
        )
        reference = getattr(keras.applications, factory.backbone.application)(
            include_top=False, weights=None, input_shape=(size, size, 3)
        )
    features = reference.output.shape[1:]
    pooled = int(np.prod(features)) if pooling == "flatten" else int(features[-1])
    head = (pooled * HIDDEN + HIDDEN) + (HIDDEN * NUM_CLASSES + NUM_CLASSES)
    assert model.count_params() == reference.count_params() + head
    assert model.input.shape[1:] == (size, size, 3) and model.output.shape[1:] == (NUM_CLASSES,)

    scaling = [layer for layer in model.layers if layer.name.endswith("_preprocess")]
    assert len(scaling) == (factory.backbone.scaling != "builtin")

    backbone = backbone_layers(model)
    assert len(backbone) == len(reference.layers) - 1  # the reference's own input layer
    frozen = len(backbone) - TRAINABLE
    assert [layer.trainable for layer in backbone] == [False] * frozen + [True] * TRAINABLE
    trainable_backbone = sum(
        int(np.prod(w.shape)) for layer in backbone[frozen:] for w in layer.trainable_weights
    )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == trainable_backbone + head

    # The frozen prefix ends at a top-level layer, before any layer that trains.
    end = factory.frozen_prefix_end(model)
    assert end is not None
    cut = [layer.name for layer in model.layers].index(end)
    assert not any(layer.trainable_weights for layer in model.layers[: cut + 1])
    assert cut <= model.layers.index(backbone[frozen])


SAVED = ["efficientnet_b0", "convnext_tiny", "xception"]
"""One model of each kind of layer a saved file must restore: EfficientNet's adapted
``Normalization`` (B1-B3, V2 and MobileNetV3 use the same kinds of layer), ConvNeXt's
``LayerScale`` and nested ``Sequential`` stages, and the zoo's ``Rescaling``. DenseNet121
and its ``Normalization`` scaling are saved and reloaded by the ``dermkit train`` test."""


@pytest.mark.parametrize("name", SAVED)
def test_a_saved_model_reloads_in_keras_safe_mode(name: str, tmp_path: Path) -> None:
    import keras

    _, model = build(name, trainable_layers=TRAINABLE)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.models.load_model(path, safe_mode=True)  # plain Keras: no custom objects
    size = smallest(name)
    pixels = np.random.default_rng(1).uniform(0, 255, size=(2, size, size, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(again(pixels)), np.asarray(model(pixels)), atol=1e-6)
    trainable = [(layer.name, len(layer.trainable_weights)) for layer in model.layers]
    assert [(layer.name, len(layer.trainable_weights)) for layer in again.layers] == trainable


# ------------------------------------------------------------------ weights
def test_a_local_weights_file_is_loaded_and_efficientnet_gets_imagenet_scaling(
    tmp_path: Path,
) -> None:
    """A ``.weights.h5`` saved from Keras' own EfficientNetB0 loads into the zoo model.

    Keras' EfficientNet files keep the ImageNet standard deviation in the stem's
    variance slot; once loaded, the stem must compute ``(x / 255 - mean) / std``.
    """
    import keras

    from dermkit_keras_zoo.models import IMAGENET_MEAN, IMAGENET_STD

    source = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    stem = next(lyr for lyr in source.layers if isinstance(lyr, keras.layers.Normalization))
    stem.set_weights([np.array(IMAGENET_MEAN), np.array(IMAGENET_STD), np.array(0)])
    kernel = np.random.default_rng(2).normal(size=source.get_layer("stem_conv").kernel.shape)
    source.get_layer("stem_conv").kernel.assign(kernel)
    path = tmp_path / "efficientnetb0.weights.h5"
    source.save_weights(path)

    model = model_factory("efficientnet_b0", weights=str(path)).build(NUM_CLASSES, 32)
    np.testing.assert_allclose(model.get_layer("stem_conv").kernel.numpy(), kernel, rtol=1e-6)
    loaded_stem = next(lyr for lyr in model.layers if isinstance(lyr, keras.layers.Normalization))
    pixels = np.random.default_rng(3).uniform(0, 255, size=(1, 4, 4, 3)).astype("float32")
    expected = (pixels / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(np.asarray(loaded_stem(pixels / 255)), expected, rtol=1e-5)

    # A file of another network is a ConfigError that says what the file must hold.
    other = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(other)
    with warnings.catch_warnings():  # Keras warns about every group it cannot match
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match="could not load weights file") as caught:
            model_factory("efficientnet_b0", weights=str(other)).build(NUM_CLASSES, 32)
    assert "efficientnetb0_notop.h5" in caught.value.render()


def test_imagenet_weights_offline_are_a_config_error_naming_the_file_to_copy() -> None:
    factory = model_factory("mobilenet_v3_large", weights="imagenet")
    cached = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "models"
    if (cached / factory.backbone.imagenet_file).exists():  # type: ignore[attr-defined]
        pytest.skip("the ImageNet file is in the Keras cache, so nothing is downloaded")
    with pytest.raises(ConfigError, match="could not download") as caught:
        factory.build(NUM_CLASSES, 32)
    hint = caught.value.render()
    assert "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5" in hint
    assert "weights=none" in hint


# ------------------------------------------------------------------ the command line
def test_one_training_step_through_dermkit_train(tmp_path: Path) -> None:
    import cv2
    from dermkit.cli.main import main

    rng = np.random.default_rng(4)
    for index, label in enumerate(("akiec", "mel", "nv")):
        (tmp_path / "data" / label).mkdir(parents=True)
        for image in range(6):
            pixels = np.full((32, 32, 3), 60 * index + 40, np.uint8)
            pixels += rng.integers(0, 30, size=pixels.shape, dtype=np.uint8)
            cv2.imwrite(str(tmp_path / "data" / label / f"{image}.png"), pixels)

    out = tmp_path / "run"
    code = main(
        ["train", "--data", str(tmp_path / "data"), "--model", "densenet121",
         "--model-option", "weights=none",
         "--epochs", "1", "--batch-size", "4", "--image-size", "32",
         "--cache-dir", "", "--quiet", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["name"] == "densenet121" and config["model"]["weights"] is None
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1
    model = load_model(out / "model.keras", compile=False)  # dermkit's safe-mode loader
    assert model.name == "densenet121" and model.output.shape[-1] == NUM_CLASSES
