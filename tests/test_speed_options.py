"""Speed options that must not change what is learned: LFN's stems, the fused
BatchNormalization and the XLA switch.

The fused layer is checked against Keras' own BatchNormalization on the same weights
and batch: outputs, gradients and moving statistics, eagerly and inside a
``tf.function`` (where oneDNN's graph rewrites apply). The stems must keep the study's
parameter counts and the flatten width at every input size, odd ones included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dermkit.errors import ConfigError
from dermkit.models import LFN, create_model, load_model
from dermkit.training.config import Training

STEMS = ("full", "strided", "resnet")


def _pair(shape: tuple[int, ...], seed: int = 0) -> tuple[Any, Any, Any]:
    """A Keras BN and a fused BN with the same (non-trivial) weights, and a batch."""
    import keras

    from dermkit.models.fused import FusedBatchNormalization

    rng = np.random.default_rng(seed)
    plain = keras.layers.BatchNormalization(momentum=0.9)
    fused = FusedBatchNormalization(momentum=0.9)
    for layer in (plain, fused):
        layer.build(shape)
    channels = shape[-1]
    weights = [
        rng.uniform(0.5, 1.5, channels),  # gamma
        rng.normal(0.0, 0.5, channels),  # beta
        rng.normal(0.0, 1.0, channels),  # moving mean
        rng.uniform(0.5, 2.0, channels),  # moving variance
    ]
    for layer in (plain, fused):
        layer.set_weights([w.astype("float32") for w in weights])
    batch = rng.normal(2.0, 3.0, shape).astype("float32")
    return plain, fused, batch


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_fused_batchnorm_trains_exactly_like_keras(graph: bool) -> None:
    import tensorflow as tf

    plain, fused, batch = _pair((4, 5, 6, 8))
    x = tf.constant(batch)

    def step(layer: Any) -> tuple[Any, ...]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(8, dtype=tf.float32))  # unequal channel weights
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        return (y, *grads)

    run = tf.function(step) if graph else step
    expected = [t.numpy() for t in run(plain)]
    got = [t.numpy() for t in run(fused)]
    for name, want, have in zip(("output", "dx", "dgamma", "dbeta"), expected, got, strict=True):
        np.testing.assert_allclose(have, want, rtol=2e-4, atol=2e-4, err_msg=name)
    # the moving statistics moved, and by the same (biased-variance) update
    assert not np.allclose(fused.moving_mean.numpy(), _pair((4, 5, 6, 8))[1].moving_mean.numpy())
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5
    )


def test_fused_batchnorm_infers_with_keras_code_and_falls_back_off_nhwc() -> None:
    plain, fused, batch = _pair((3, 4, 4, 5), seed=1)
    np.testing.assert_allclose(
        np.asarray(fused(batch, training=False)),
        np.asarray(plain(batch, training=False)),
        rtol=1e-5,
        atol=1e-5,
    )
    flat_plain, flat_fused, flat = _pair((6, 5), seed=2)  # 2-D: not fusable, Keras' path
    np.testing.assert_allclose(
        np.asarray(flat_fused(flat, training=True)),
        np.asarray(flat_plain(flat, training=True)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_a_fused_lfn_saves_and_loads_in_safe_mode(tmp_path: Path) -> None:
    model = LFN(dense=(8,), stem="strided").build(4, input_size=64)
    assert type(model.get_layer("stage1_bn")).__name__ == "FusedBatchNormalization"
    path = tmp_path / "lfn.keras"
    model.save(path)
    loaded = load_model(path, compile=False)
    assert type(loaded.get_layer("stage1_bn")).__name__ == "FusedBatchNormalization"
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )


def test_keras_batchnorm_is_still_available() -> None:
    model = LFN(dense=(8,), fused_batchnorm=False).build(4, input_size=64)
    assert type(model.get_layer("stage1_bn")).__name__ == "BatchNormalization"


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize(
    ("options", "expected"),
    [({}, 1_368_199), ({"dense": (512, 512), "dropout": 0.5}, 1_630_855)],
)
def test_every_stem_keeps_the_study_parameter_counts(
    stem: str, options: dict[str, Any], expected: int
) -> None:
    model = create_model("lfn", 7, stem=stem, **options)
    assert model.count_params() == expected
    assert model.get_layer("head_flatten").output.shape == (None, 2048)


@pytest.mark.parametrize("size", [64, 127, 128, 131])
def test_stems_downsample_alike_at_every_size(size: int) -> None:
    widths = {
        stem: LFN(dense=(), stem=stem).build(7, size).get_layer("head_flatten").output.shape[-1]
        for stem in STEMS
    }
    assert len(set(widths.values())) == 1, widths


def test_stems_differ_where_they_downsample() -> None:
    full = LFN(dense=(), stem="full").build(7, 128)
    strided = LFN(dense=(), stem="strided").build(7, 128)
    resnet = LFN(dense=(), stem="resnet").build(7, 128)
    assert full.get_layer("stage1_conv").output.shape[1:3] == (128, 128)
    assert strided.get_layer("stage1_conv").output.shape[1:3] == (64, 64)
    assert resnet.get_layer("stage2_conv").output.shape[1:3] == (32, 32)
    names = {layer.name for layer in resnet.layers}
    assert "stage1_pool" in names and "stage6_pool" not in names
    assert "stage1_pool" not in {layer.name for layer in strided.layers}


def test_a_bad_stem_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="stem"):
        LFN(stem="space_to_depth")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- XLA


def test_jit_compile_option_is_checked_and_round_trips() -> None:
    assert Training().jit_compile == "auto"
    assert Training.from_config(Training(jit_compile=True).to_config()).jit_compile is True
    with pytest.raises(ConfigError, match="jit_compile"):
        Training(jit_compile="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="jit_compile"):
        Training(jit_compile=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(("option", "expected"), [("auto", False), (True, True)])
def test_fit_compiles_with_the_xla_choice(
    tmp_path: Path, option: bool | str, expected: bool
) -> None:
    """``"auto"`` is off on this CPU-only machine; ``True`` turns XLA on, and a
    resumed call applies its own choice to the loaded checkpoint."""
    from dermkit.core import Record, TrainingPlan
    from dermkit.data.images import ImageSettings
    from dermkit.data.loader import ImageLoader
    from dermkit.demo import make_demo_dataset
    from dermkit.training.trainer import fit

    data = make_demo_dataset(tmp_path / "data", size=64, scale=0.04, seed=1)
    paths = sorted(data.rglob("*.png"))[:8]
    records = tuple(Record(path=str(p), label=i % 2, group=str(i)) for i, p in enumerate(paths))
    plan = TrainingPlan(records=records)
    loader = ImageLoader(ImageSettings(size=64))
    import keras

    seen: list[bool] = []

    class XlaChoice(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_begin(self, logs: Any = None) -> None:
            seen.append(bool(self.model.jit_compile))

    def build() -> Any:
        return LFN(dense=(4,), stem="resnet").build(2, 64)

    recorder = XlaChoice()
    training = Training(epochs=1, batch_size=4, verbose=0, jit_compile=option)  # type: ignore[arg-type]
    fit(
        None,
        build,
        plan,
        records[:4],
        loader,
        training,
        tmp_path / "run",
        extra_callbacks=[recorder],
    )
    resumed = Training(epochs=2, batch_size=4, verbose=0, jit_compile=not expected)
    result = fit(
        None,
        build,
        plan,
        records[:4],
        loader,
        resumed,
        tmp_path / "run",
        resume=True,
        extra_callbacks=[recorder],
    )
    assert result.epochs_done == 2
    assert seen == [expected, not expected]


# --------------------------------------------------------------------------- benchmarks


def _benchmark(name: str) -> Any:
    import importlib.util
    import sys

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # predict_speed imports train_speed by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_train_speed_smoke_prints_the_machine_and_both_tables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DERMKIT_HAM10000", raising=False)
    assert _benchmark("train_speed").main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# CPU: ") and "# instruction sets: " in out
    assert "## LFN-64 trunks" in out and "## lfn-64, batch 4" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "x |" in line]
    assert len(rows) == 5 + 2  # five trunks, then keras and dermkit
    assert "| keras | " in out and "| dermkit | " in out


@pytest.mark.slow
def test_predict_speed_smoke_compares_keras_dermkit_and_tflite(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DERMKIT_HAM10000", raising=False)
    _benchmark("train_speed")
    assert _benchmark("predict_speed").main(["--smoke", "--int8-percentile", "99.9"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# CPU: ")
    arms = ("keras predict", "dermkit predict", "tflite", "tflite float16", "tflite int8")
    for arm in (*arms, "tflite int8 p99.9"):
        assert f"| {arm} | " in out
    assert "| tflite | " in out and "100.0%" in out
