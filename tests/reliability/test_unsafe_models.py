"""Model files that would run code, or need code that is not here: refused by default with
a message; ``--trust-model-code`` (``trust_code=True``) is the explicit opt-in for files
the user trusts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from dermkit.cli.main import main
from dermkit.errors import DataError


@pytest.fixture
def run(finished_run: Path) -> Path:
    return finished_run


def _wrap_with(run: Path, layer: Any, target: Path) -> Path:
    """The run's model with ``layer`` on top, saved as ``target``'s ``model.keras``."""
    import keras

    from dermkit.models import load_model

    shutil.copytree(run, target)
    model = load_model(run / "model.keras", compile=False)
    wrapped = keras.Model(model.inputs, layer(model.outputs[0]))
    wrapped.save(target / "model.keras")
    return target


def test_a_lambda_layer_is_refused_unless_trusted(
    run: Path, tmp_path: Path, tiny_data: Path, capsys: Any
) -> None:
    import keras

    lambda_run = _wrap_with(run, keras.layers.Lambda(lambda x: x * 1.0), tmp_path / "lambda")
    image = str(next(tiny_data.rglob("*.png")))
    assert main(["predict", str(lambda_run), image]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "safe_mode" not in err
    assert f"{lambda_run / 'model.keras'}: the model holds a Lambda layer" in err
    assert "--trust-model-code" in err
    assert main(["predict", str(lambda_run), image, "--trust-model-code", "--json"]) == 0
    assert '"probabilities"' in capsys.readouterr().out


def test_an_unknown_custom_layer_is_refused_trusted_or_not(
    run: Path, tmp_path: Path, tiny_data: Path, capsys: Any
) -> None:
    import keras

    @keras.saving.register_keras_serializable(package="somebody_elses_plugin")
    class Doubling(keras.layers.Layer):  # type: ignore[misc]
        def call(self, inputs: Any) -> Any:
            return inputs * 2.0

    custom_run = _wrap_with(run, Doubling(), tmp_path / "custom")
    del keras.saving.get_custom_objects()["somebody_elses_plugin>Doubling"]  # not installed here
    image = str(next(tiny_data.rglob("*.png")))
    for extra in ([], ["--trust-model-code"]):
        assert main(["predict", str(custom_run), image, *extra]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert "custom layer 'Doubling' that is not registered here" in err
        assert "install and import the plugin" in err


def test_the_python_api_refuses_the_same_way(run: Path, tmp_path: Path) -> None:
    import keras

    from dermkit.models import load_model
    from dermkit.runs import load_run

    lambda_run = _wrap_with(run, keras.layers.Lambda(lambda x: x + 0.0), tmp_path / "lambda")
    with pytest.raises(DataError, match="Lambda layer"):
        load_model(lambda_run / "model.keras")
    with pytest.raises(DataError, match="Lambda layer"):
        load_run(lambda_run)
    assert load_run(lambda_run, trust_code=True).model is not None
