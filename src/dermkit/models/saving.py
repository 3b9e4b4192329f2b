"""Loading saved dermkit models safely.

Keras only resolves custom layers that are registered in the running process, and it
never imports a non-Keras module named in a saved file (that is part of what safe mode
means). :func:`load_model` therefore imports the preprocessing layers first and then
loads with ``safe_mode=True``, so no pickled Python code ever runs.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from dermkit.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import keras


def register_layers() -> None:
    """Register dermkit's custom layers with Keras (importing TensorFlow if needed)."""
    from dermkit.models import fused, preprocessing  # noqa: F401  (registration is the import)


def _register_after_import(_: ModuleType) -> None:
    try:
        register_layers()
    except Exception as error:  # never break the user's own `import keras`
        warnings.warn(
            f"dermkit could not register its Keras layers: {type(error).__name__}: {error}; "
            "call dermkit.models.register_layers() before loading a dermkit model",
            RuntimeWarning,
            stacklevel=2,
        )


def register_layers_with_keras() -> None:
    """Register the layers now if Keras is loaded, else as soon as it is, without importing it.

    Uses wrapt's post-import hooks (wrapt comes with TensorFlow). Without wrapt, the
    layers are registered when a model is built or :func:`load_model` is called.
    """
    if "keras" in sys.modules:
        register_layers()
        return
    try:
        import wrapt
    except ImportError:  # pragma: no cover - TensorFlow depends on wrapt
        return
    wrapt.register_post_import_hook(_register_after_import, "keras")


def load_model(path: str | Path, *, compile: bool = True, trust_code: bool = False) -> keras.Model:
    """Load a ``.keras`` file saved from a dermkit model, in Keras safe mode.

    Safe mode refuses a file that would run Python code stored in it (a ``Lambda``
    layer): a model file from elsewhere could do anything on this machine. For a file
    you made yourself or otherwise trust, ``trust_code=True`` (``--trust-model-code``
    on the command line) lifts that refusal. A custom layer is loaded only if the
    code that defines it is imported (registered), with or without trust: install
    and import the plugin that provides it.
    """
    import keras

    from dermkit.keras_objects import custom_objects

    source = Path(path)
    if not source.is_file():
        raise DataError(f"model file {str(source)!r} does not exist", where=str(source))
    try:
        model: keras.Model = keras.models.load_model(
            source,
            custom_objects=custom_objects(),
            compile=compile,
            safe_mode=not trust_code,
        )
    except Exception as error:
        raise _load_error(source, error) from error
    return model


UNKNOWN_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")


def _load_error(source: Path, error: Exception) -> DataError:
    """Why a model file did not load, in one line, with what to do."""
    text = str(error)
    if "Lambda" in text and "safe_mode" in text:
        return DataError(
            "the model holds a Lambda layer, whose Python code dermkit does not run from a "
            "file unless told to",
            where=str(source),
            hint="if you trust this file (you made it), pass --trust-model-code "
            "(trust_code=True in Python); better, replace the Lambda by a registered layer",
        )
    unknown = UNKNOWN_CLASS.search(text)
    if unknown:
        return DataError(
            f"the model uses a custom layer {unknown.group(1)!r} that is not registered here",
            where=str(source),
            hint="install and import the plugin (or module) that defines it, so that "
            "it is registered with @keras.saving.register_keras_serializable, then load again",
        )
    first = text.strip().splitlines()[0] if text.strip() else ""
    return DataError(
        f"could not load the model: {type(error).__name__}: {first[:300]}",
        where=str(source),
        hint="the file must be a whole .keras archive saved from a dermkit model",
    )
