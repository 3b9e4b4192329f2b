"""Where pretrained backbone weights come from: ImageNet downloads or local files.

dermkit downloads the ImageNet files itself (through ``keras.utils.get_file``, so the
Keras cache under ``~/.keras/models`` is shared) instead of passing
``weights="imagenet"`` to ``keras.applications``. That way a failed download, which is
the normal state of an offline cluster node, becomes one :class:`ConfigError` that says
what failed and which local file to pass instead, rather than a urllib traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from dermkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import keras

IMAGENET = "imagenet"
_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications"


@attrs.frozen(slots=True)
class WeightsFile:
    """One published weights file of a ``keras.applications`` backbone without its top."""

    file_name: str
    url: str
    md5: str


IMAGENET_NOTOP: dict[str, WeightsFile] = {
    "resnet50": WeightsFile(
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_BASE_URL}/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "inception_v3": WeightsFile(
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_BASE_URL}/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63",
    ),
}
"""The ImageNet files Keras publishes for each backbone, with their MD5 sums."""


def _file_name(model: str) -> str:
    known = IMAGENET_NOTOP.get(model)
    return known.file_name if known is not None else f"{model}_notop.weights.h5"


def _local_hint(model: str) -> str:
    return f'pass a local weights file instead: weights="/path/to/{_file_name(model)}"'


def resolve_weights(model: str, weights: str | None) -> Path | None:
    """The local file to load for ``weights`` ("imagenet", a path, or ``None``)."""
    if weights is None:
        return None
    where = f"model {model}, option weights"
    if weights == IMAGENET:
        known = IMAGENET_NOTOP.get(model)
        if known is None:
            raise ConfigError(
                f"there are no ImageNet weights for {model}", where=where, hint=_local_hint(model)
            )
        return download_imagenet(model, known)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"weights file {str(path)!r} does not exist",
            where=where,
            hint=(
                f'use weights="imagenet", weights=None (random start) or an existing file such '
                f'as weights="/path/to/{_file_name(model)}"'
            ),
        )
    return path


def download_imagenet(model: str, known: WeightsFile) -> Path:
    """Fetch (or reuse from the Keras cache) and checksum the ImageNet file for ``model``."""
    import keras

    try:
        fetched = keras.utils.get_file(
            known.file_name, known.url, cache_subdir="models", file_hash=known.md5
        )
    except Exception as error:  # urllib, checksum and file-system errors alike
        reason = str(error) or type(error).__name__
        raise ConfigError(
            f"download of ImageNet weights for {model} failed: {reason}",
            where=f"model {model}, option weights",
            hint=(
                f"{_local_hint(model)} (a copy of {known.url}), "
                "or weights=None to start from random weights"
            ),
        ) from error
    return Path(fetched)


def load_backbone_weights(backbone: keras.Model, path: Path, model: str) -> None:
    """Load a weights file into the backbone, turning Keras' errors into a ConfigError.

    Accepts the Keras-published ``*_notop.h5`` files (matched by layer order) and
    ``*.weights.h5`` files saved from ``keras.applications.<Backbone>(include_top=False)``
    (matched by layer name). dermkit's own input layer and preprocessing layer have no
    weights, so they do not disturb either kind of matching.
    """
    try:
        backbone.load_weights(str(path))
    except Exception as error:
        raise ConfigError(
            f"could not load weights file {str(path)!r}: {error}",
            where=f"model {model}, option weights",
            hint=(
                f"the file must hold the weights of keras.applications' {model} without its "
                f"top, e.g. {_file_name(model)} or a .weights.h5 file saved from such a model"
            ),
        ) from error
