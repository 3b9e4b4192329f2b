"""Find out before the first epoch whether a model can be saved and loaded back safely.

Every model a run writes is later loaded in Keras' safe mode (``evaluate``,
``predict``, resume), which refuses to run pickled Python code: a ``Lambda`` layer or
an unregistered custom layer saves without complaint and only fails to load after the
whole training. So the freshly built model makes the round trip once, through a
temporary file, and must give the same outputs afterwards; for the small models used
here that takes well under a second, and for big ones it is still only done once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dermkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import keras

LAMBDA_HINT = (
    "replace each Lambda layer by a small layer class registered with "
    "@keras.saving.register_keras_serializable() (with get_config() for its options), "
    "and make sure the plugin that defines it is imported before the model is loaded"
)
CUSTOM_HINT = (
    "register every custom layer with @keras.saving.register_keras_serializable() and "
    "give it a get_config() that returns all its constructor options"
)


def check_model_reloads(model: keras.Model, *, model_name: str) -> None:
    """Raise :class:`ConfigError` unless ``model`` saves, reloads in safe mode, and agrees.

    The reloaded model must give the same outputs for two random inputs; a custom
    layer whose ``get_config`` forgets an option loads fine but computes something else.
    """
    from dermkit.models import load_model

    where = f"model {model_name!r}"
    with tempfile.TemporaryDirectory(prefix="dermkit-reload-check-") as folder:
        path = Path(folder) / "model.keras"
        try:
            model.save(path)
        except Exception as error:
            raise ConfigError(
                f"the model cannot be saved: {type(error).__name__}: {error}",
                where=where,
                hint=CUSTOM_HINT,
            ) from None
        try:
            reloaded = load_model(path, compile=False)
        except Exception as error:
            cause = error.__cause__ or error
            text = f"{type(cause).__name__}: {cause}"
            raise ConfigError(
                "the model saves but cannot be loaded back in Keras safe mode, so the "
                f"trained run could not be evaluated or resumed ({_first_line(text)})",
                where=where,
                hint=LAMBDA_HINT if "lambda" in text.lower() else CUSTOM_HINT,
            ) from None
    sample = _random_input(model)
    if sample is None:  # several inputs: saving and loading was all that could be checked
        return
    before = np.asarray(model(sample, training=False), dtype=np.float64)
    after = np.asarray(reloaded(sample, training=False), dtype=np.float64)
    if before.shape != after.shape or not np.allclose(before, after, rtol=1e-3, atol=1e-4):
        raise ConfigError(
            "the model reloads from its saved file with different outputs, so a saved "
            "run would not predict what was trained",
            where=where,
            hint="a custom layer's get_config() probably misses one of its options; " + CUSTOM_HINT,
        )


def _random_input(model: keras.Model) -> np.ndarray | None:
    declared = model.input_shape
    if not isinstance(declared, tuple) or not all(
        size is None or isinstance(size, int) for size in declared
    ):
        return None
    shape = [1 if size is None else int(size) for size in declared]
    shape[0] = 1
    rng = np.random.default_rng(0)
    # A full-range image and a faint one: a softmax saturated by the first can hide a
    # difference that the second shows.
    samples = [rng.uniform(0.0, high, size=shape) for high in (255.0, 2.0)]
    return np.concatenate(samples).astype(np.float32)


def _first_line(text: str) -> str:
    """The first sentence of an error: Keras goes on to suggest ``safe_mode=False``,
    which would make the saved run unsafe to open, so that part is not repeated."""
    line = text.strip().splitlines()[0] if text.strip() else text
    line = line.split(". ")[0].rstrip(".")
    return line if len(line) <= 300 else line[:297] + "..."
