"""Every custom Keras object a saved dermkit classifier can name, in one place.

A ``.keras`` file names its custom layers and, when saved compiled, its loss. Loading
in safe mode needs each of them registered, so the loader needs one list of all of
them; keeping that list here (above the models and training packages) lets the model
loader find the training loss without the models package depending on training.
"""

from __future__ import annotations

from typing import Any


def custom_objects() -> dict[str, type[Any]]:
    """The preprocessing layers and training losses by registered name (imports Keras)."""
    from dermkit.models.preprocessing import CUSTOM_OBJECTS
    from dermkit.training.losses import LOSS_OBJECTS

    return {**CUSTOM_OBJECTS, **LOSS_OBJECTS}
