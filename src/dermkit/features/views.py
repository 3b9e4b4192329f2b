"""The eight dihedral views of a square image: the augmentations a feature cache keeps.

Dermatoscopic images have no canonical orientation, so every flip and right-angle turn
of a lesion is another valid training image. Unlike zoom or colour jitter these are
exact and finite (eight in all), so the frozen prefix can be run once per view and the
cache can still hand the tail a differently oriented lesion every epoch.

View ``k`` turns the image ``k % 4`` quarter turns counter-clockwise and then, for
``k >= 4``, mirrors it left to right. View 0 is the image itself, so a cache with one
view is a plain, unaugmented cache.
"""

from __future__ import annotations

import numpy as np

DIHEDRAL_VIEWS = 8


def check_views(views: int) -> None:
    if isinstance(views, bool) or not isinstance(views, int) or not 1 <= views <= DIHEDRAL_VIEWS:
        raise ValueError(f"views must be an integer from 1 to {DIHEDRAL_VIEWS}, got {views!r}")


def apply_view(images: np.ndarray, view: int) -> np.ndarray:
    """View ``view`` of a batch ``(n, h, w, c)`` (or one image ``(h, w, c)``)."""
    if not 0 <= view < DIHEDRAL_VIEWS:
        raise ValueError(f"view must be in 0..{DIHEDRAL_VIEWS - 1}, got {view}")
    axes = (1, 2) if images.ndim == 4 else (0, 1)
    out = np.rot90(images, view % 4, axes=axes)
    if view >= 4:
        out = np.flip(out, axis=axes[1])
    return np.ascontiguousarray(out)
