"""Model factories: the study's exact parameter counts, freezing, preprocessing, saving.

Big backbones are built at full size only where a parameter count needs it, and never
trained here. No test touches the network: ``keras.utils.get_file`` is replaced by a
function that fails unless a test installs its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from dermkit import plugins
from dermkit.core import ModelFactory
from dermkit.errors import ConfigError, DataError, PluginError
from dermkit.models import LFN, InceptionV3, ResNet50, create_model, load_model, model_factory
from dermkit.models.applications import backbone_layers
from dermkit.models.freezing import frozen_prefix_end
from dermkit.models.lfn import LFN_TRUNK

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

RESNET_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: Any, **kwargs: Any) -> str:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(keras.utils, "get_file", offline)


def param_counts(model: Any) -> tuple[int, int, int]:
    """(total, trainable, non-trainable), as ``model.summary()`` reports them."""
    total = model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return total, trainable, total - trainable


def images(size: int, count: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(count, size, size, 3)).astype("float32")


# --- registry ---------------------------------------------------------------------


def test_importing_the_package_does_not_import_tensorflow() -> None:
    code = (
        "import sys, dermkit.models\n"
        "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_built_in_factories_are_registered_through_the_plugin_hook() -> None:
    found = plugins.provided("models")
    assert found["lfn"].factory is LFN
    assert found["resnet50"].factory is ResNet50
    assert found["inception_v3"].factory is InceptionV3
    assert found["googlenet"].factory is InceptionV3
    assert found["lfn"].plugin == "dermkit.models.plugin"
    for factory in (LFN(), ResNet50(weights=None), InceptionV3(weights=None)):
        assert isinstance(factory, ModelFactory)


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        create_model("resnet50", 7, dropuot=0.5)
    message = str(caught.value)
    assert "'dropuot'" in message
    for option in ("weights", "trainable_layers", "pooling", "dense", "dropout"):
        assert option in message


def test_unknown_model_name_lists_the_available_ones() -> None:
    with pytest.raises(PluginError, match="lfn"):
        create_model("alexnet", 7)


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("lfn", {"dropout": 1.5}, "dropout"),
        ("lfn", {"dense": [512, 0]}, "dense"),
        ("lfn", {"pooling": "max"}, "pooling"),
        ("lfn", {"extra_dropout": "yes"}, "extra_dropout"),
        ("resnet50", {"trainable_layers": -2}, "trainable_layers"),
        ("resnet50", {"weights": ""}, "weights"),
    ],
)
def test_bad_option_values_are_config_errors(
    name: str, options: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        model_factory(name, **options)


def test_bad_build_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("lfn", 1, input_size=64)
    with pytest.raises(ConfigError, match="at least 64x64"):
        create_model("lfn", 7, input_size=32)
    with pytest.raises(ConfigError, match="at least 75x75"):
        create_model("inception_v3", 7, input_size=64, weights=None)


def test_options_round_trip_through_json() -> None:
    factory = model_factory("resnet50", weights=None, trainable_layers=4, dense=[128], dropout=0.4)
    assert factory.dense == (128,)  # type: ignore[attr-defined]
    config = json.loads(json.dumps(attrs.asdict(factory)))  # type: ignore[arg-type]
    assert model_factory("resnet50", **config) == factory
    assert model_factory("lfn", dense=512).dense == (512,)  # type: ignore[attr-defined]


# --- LFN --------------------------------------------------------------------------


def trunk_params(model: Any) -> int:
    names = [layer.name for layer in model.layers]
    end = names.index("head_flatten") if "head_flatten" in names else names.index("head_avg_pool")
    return sum(layer.count_params() for layer in model.layers[:end])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, 1_368_199),
        ({"extra_dropout": True}, 1_368_199),  # the study's attempt 3
        ({"dense": (512, 512), "dropout": 0.5}, 1_630_855),  # the study's attempt 4
    ],
)
def test_lfn_matches_the_study_at_300_pixels(options: dict[str, Any], expected: int) -> None:
    model = create_model("lfn", 7, **options)
    assert model.input_shape == (None, 300, 300, 3)
    assert model.count_params() == expected
    assert trunk_params(model) == 315_520
    assert model.get_layer("head_flatten").output.shape == (None, 2048)
    assert model.layers[0].name == "image"
    assert model.layers[-1].name == "probabilities"
    assert len(LFN_TRUNK) == 6


def test_lfn_head_layers_follow_the_study() -> None:
    attempt3 = [
        layer.name for layer in LFN(extra_dropout=True, extra_dropout_rate=0.3).build(7).layers
    ]
    assert attempt3[-4:] == ["head_flatten", "head_dropout_0", "head_dense_1", "probabilities"]
    model = LFN(dense=(512, 512), dropout=0.5).build(7)
    head = [layer for layer in model.layers if layer.name.startswith("head_")][1:]
    assert [type(layer).__name__ for layer in head] == ["Dense", "Dropout", "Dense", "Dropout"]
    assert [layer.rate for layer in head if hasattr(layer, "rate")] == [0.5, 0.5]


def test_lfn_at_other_sizes_flatten_or_average() -> None:
    small = LFN().build(7, input_size=128)
    assert small.get_layer("head_flatten").output.shape == (None, 2 * 2 * 128)
    assert trunk_params(small) == 315_520
    pooled = [LFN(pooling="avg").build(7, size).count_params() for size in (64, 300)]
    assert pooled[0] == pooled[1] == 315_520 + 128 * 512 + 512 + 512 * 7 + 7


def test_lfn_has_no_frozen_prefix() -> None:
    factory = LFN()
    assert factory.frozen_prefix_end(factory.build(7, input_size=64)) is None


# --- ImageNet backbones: exact counts ----------------------------------------------


@pytest.mark.parametrize(
    ("dense", "trainable_layers", "expected"),
    [
        (256, 4, (49_279_879, 26_746_887, 22_532_992)),
        (128, 10, (36_433_799, 17_311_751, 19_122_048)),
    ],
)
def test_resnet50_matches_the_study(
    dense: int, trainable_layers: int, expected: tuple[int, int, int]
) -> None:
    model = create_model(
        "resnet50",
        7,
        weights=None,
        pooling="flatten",
        dense=(dense,),
        dropout=0.4,
        trainable_layers=trainable_layers,
    )
    assert model.input_shape == (None, 224, 224, 3)
    assert param_counts(model) == expected


def test_inception_v3_counts_with_the_study_head() -> None:
    model = create_model(
        "googlenet", 7, weights=None, dense=(512,), dropout=0.35, trainable_layers=0
    )
    assert model.input_shape == (None, 299, 299, 3)
    # backbone 21,802,784 (all frozen) + Flatten 8*8*2048 -> Dense 512 + Dense 7
    assert param_counts(model) == (88_915_751, 67_112_967, 21_802_784)
    assert model.get_layer("head_dropout_1").rate == 0.35


# --- freezing ---------------------------------------------------------------------


@pytest.mark.parametrize("trainable_layers", [0, 4, 10, -1])
def test_only_the_last_n_backbone_layers_train(trainable_layers: int) -> None:
    model = create_model(
        "resnet50", 7, input_size=32, weights=None, trainable_layers=trainable_layers
    )
    backbone = [layer.name for layer in backbone_layers(model)]
    assert backbone[0] == "conv1_pad"
    assert backbone[-1] == "conv5_block3_out"
    trainable = [name for name in backbone if model.get_layer(name).trainable]
    expected = backbone if trainable_layers == -1 else backbone[len(backbone) - trainable_layers :]
    assert trainable == expected
    weighted = {
        w.path.split("/")[0] for w in model.trainable_weights if not w.path.startswith("head_")
    }
    assert weighted <= set(expected) | {"probabilities"}


def test_more_trainable_layers_than_the_backbone_has_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="only 174 layers"):
        create_model("resnet50", 7, input_size=32, weights=None, trainable_layers=500)


def test_frozen_batchnorm_runs_in_inference_mode_and_trainable_batchnorm_trains() -> None:
    model = create_model("resnet50", 7, input_size=32, weights=None, trainable_layers=4, dropout=0)
    frozen, tail = model.get_layer("conv1_bn"), model.get_layer("conv5_block3_3_bn")
    assert not frozen.trainable and tail.trainable
    before = {bn.name: keras.ops.convert_to_numpy(bn.moving_mean) for bn in (frozen, tail)}
    model(images(32), training=True)
    assert np.array_equal(keras.ops.convert_to_numpy(frozen.moving_mean), before["conv1_bn"])
    assert not np.array_equal(
        keras.ops.convert_to_numpy(tail.moving_mean), before["conv5_block3_3_bn"]
    )


def test_a_fully_frozen_backbone_gives_the_same_output_in_training_mode() -> None:
    model = create_model("resnet50", 7, input_size=32, weights=None, trainable_layers=0, dropout=0)
    x = images(32)
    np.testing.assert_allclose(
        np.array(model(x, training=True)), np.array(model(x, training=False)), rtol=1e-5, atol=1e-6
    )


def test_frozen_prefix_ends_at_a_single_tensor_cut() -> None:
    factory = ResNet50(weights=None, trainable_layers=4)
    model = factory.build(7, input_size=32)
    # the last 4 layers are inside conv5_block3, whose shortcut starts at conv5_block2_out
    assert factory.frozen_prefix_end(model) == "conv5_block2_out"
    pooled = ResNet50(weights=None, trainable_layers=0, pooling="avg")
    assert pooled.frozen_prefix_end(pooled.build(7, input_size=32)) == "head_avg_pool"
    everything = ResNet50(weights=None, trainable_layers=-1)
    assert everything.frozen_prefix_end(everything.build(7, input_size=32)) is None


# --- preprocessing ----------------------------------------------------------------


def test_preprocessing_layers_equal_keras_preprocess_input() -> None:
    from dermkit.models.preprocessing import CaffeImageNet, ScaleToSymmetric, ScaleToUnit

    x = images(8, count=3)
    x[0, 0, 0] = (0.0, 127.5, 255.0)
    caffe = keras.applications.resnet50.preprocess_input(x.copy())
    symmetric = keras.applications.inception_v3.preprocess_input(x.copy())
    np.testing.assert_allclose(np.array(CaffeImageNet()(x)), caffe, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.array(ScaleToSymmetric()(x)), symmetric, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(ScaleToUnit()(x)), x / 255.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "layer"), [("resnet50", "CaffeImageNet"), ("inception_v3", "ScaleToSymmetric")]
)
def test_backbones_start_with_their_own_preprocessing(name: str, layer: str) -> None:
    model = create_model(name, 7, input_size=75, weights=None)
    assert model.layers[0].name == "image"
    assert type(model.layers[1]).__name__ == layer


# --- saving -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "options"),
    [("lfn", 64, {"dense": (16,), "extra_dropout": True}), ("resnet50", 32, {"weights": None})],
)
def test_saved_models_load_in_safe_mode_and_predict_the_same(
    tmp_path: Path, name: str, size: int, options: dict[str, Any]
) -> None:
    model = create_model(name, 7, input_size=size, **options)
    x = images(size)
    expected = model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    again = load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert [layer.trainable for layer in again.layers] == [
        layer.trainable for layer in model.layers
    ]
    assert frozen_prefix_end(again) == frozen_prefix_end(model)


def test_a_fresh_process_loads_a_saved_model_after_importing_dermkit_models(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lfn.keras"
    LFN(dense=(8,)).build(7, input_size=64).save(path)
    # dermkit.models first: the layers must be registered when Keras arrives later
    code = (
        "import dermkit.models\n"
        "import keras\n"
        f"m = keras.models.load_model({str(path)!r}, safe_mode=True)\n"
        "assert type(m.layers[1]).__name__ == 'ScaleToUnit'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_loading_a_missing_or_broken_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_model(tmp_path / "nope.keras")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="could not load"):
        load_model(broken)


# --- weights ----------------------------------------------------------------------


def test_imagenet_weights_without_network_fail_with_a_clear_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        create_model("resnet50", 7, input_size=32)  # weights="imagenet" is the default
    message = str(caught.value)
    assert "download of ImageNet weights for resnet50 failed: network disabled in tests" in message
    assert f'weights="/path/to/{RESNET_NOTOP_FILE}"' in message


def test_a_missing_weights_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        create_model("resnet50", 7, input_size=32, weights=str(tmp_path / "missing.h5"))


def test_a_broken_weights_file_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="could not load weights file"):
        create_model("resnet50", 7, input_size=32, weights=str(broken))


def reference_backbone() -> Any:
    keras.utils.set_random_seed(7)
    return keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))


def assert_same_backbone_weights(model: Any, reference: Any) -> None:
    for name in ("conv1_conv", "conv3_block2_2_bn", "conv5_block3_3_conv"):
        for ours, theirs in zip(
            model.get_layer(name).weights, reference.get_layer(name).weights, strict=True
        ):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs)
            )


def test_a_local_keras_weights_file_loads_into_the_backbone(tmp_path: Path) -> None:
    reference = reference_backbone()
    path = tmp_path / "resnet50_notop.weights.h5"
    reference.save_weights(path)
    model = create_model("resnet50", 7, input_size=32, weights=str(path))
    assert_same_backbone_weights(model, reference)


def test_imagenet_style_h5_file_loads_when_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The published notop files are legacy (layer-order) HDF5; the download path loads them."""
    h5py = pytest.importorskip("h5py")
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    reference = reference_backbone()
    path = tmp_path / RESNET_NOTOP_FILE
    with h5py.File(path, "w") as handle:
        legacy.save_weights_to_hdf5_group(handle, reference)
    calls: list[tuple[Any, ...]] = []

    def fake_get_file(*args: Any, **kwargs: Any) -> str:
        calls.append(args)
        return str(path)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    model = create_model("resnet50", 7, input_size=32)
    assert calls and calls[0][0] == RESNET_NOTOP_FILE
    assert_same_backbone_weights(model, reference)
