"""A Grad-CAM figure a person can read: the original image beside its heatmap overlay.

The network sees a small square (64 to 300 px) made from the image by squashing,
cropping or padding. A heatmap shown on that square is hard to relate to the lesion
one knows, so :func:`gradcam_figure` maps the heatmap back onto the image's own
geometry (undoing the resize mode), overlays it at the original size, puts the
untouched original on its left, and writes the predicted class and its probability
above both.

Needs OpenCV (text) and matplotlib (colour map), both imported on use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from dermkit.errors import ConfigError, DataError
from dermkit.evaluation.gradcam import overlay, resize_heatmap
from dermkit.evaluation.metrics import FloatArray

RESIZE_MODES = ("squash", "center_crop", "pad")
BACKGROUND = 255
"""White banner and gap."""


def heatmap_on_original(
    heatmap: npt.ArrayLike, original_shape: tuple[int, int], resize_mode: str = "squash"
) -> FloatArray:
    """A heatmap of the model's square input mapped onto the original ``(H, W)`` image.

    ``resize_mode`` is how the image was made square (see
    :class:`~dermkit.data.images.ImageSettings`): ``"squash"`` stretches the map back,
    ``"center_crop"`` places it over the central square (the cut-off edges were never
    seen, so they stay 0), ``"pad"`` drops the padding before stretching.
    """
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.ndim != 2:
        raise DataError(f"expected a 2-D heatmap, got shape {heat.shape}", where="heatmap")
    height, width = (int(v) for v in original_shape)
    if resize_mode == "squash":
        return resize_heatmap(heat, height, width)
    if resize_mode == "center_crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        out = np.zeros((height, width), dtype=np.float64)
        out[top : top + side, left : left + side] = resize_heatmap(heat, side, side)
        return out
    if resize_mode == "pad":
        size = heat.shape[0]
        scale = size / max(height, width)
        inner_w = min(size, max(1, round(width * scale)))
        inner_h = min(size, max(1, round(height * scale)))
        top, left = (size - inner_h) // 2, (size - inner_w) // 2
        inner = heat[top : top + inner_h, left : left + inner_w]
        return resize_heatmap(inner, height, width)
    raise ConfigError(
        f"unknown resize mode {resize_mode!r}",
        where="resize_mode",
        hint=f"use one of {', '.join(RESIZE_MODES)}",
    )


def caption(class_name: str, probability: float) -> str:
    """``"mel p=0.87"``: the predicted class and its probability, the figure's label."""
    return f"{class_name} p={probability:.2f}"


def _banner(text: str, width: int, cv2: Any) -> npt.NDArray[np.uint8]:
    """A white strip with ``text`` in black, sized to the figure's width."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    height = max(18, min(80, width // 16))
    scale = height / 40.0
    thickness = max(1, round(scale * 2))
    (text_w, text_h), _ = cv2.getTextSize(text, font, scale, thickness)
    if text_w > width - 8:  # shrink long captions on narrow figures
        scale *= (width - 8) / text_w
        thickness = max(1, round(scale * 2))
        (text_w, text_h), _ = cv2.getTextSize(text, font, scale, thickness)
    strip = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    origin = (4, (height + text_h) // 2)
    cv2.putText(strip, text, origin, font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return strip


def gap_width(width: int) -> int:
    """White columns between the original and the overlay."""
    return max(2, width // 100)


def gradcam_figure(
    original: npt.ArrayLike,
    heatmap: npt.ArrayLike,
    label: str,
    *,
    resize_mode: str = "squash",
    alpha: float = 0.45,
) -> npt.NDArray[np.uint8]:
    """``label`` above ``original | overlay``, both at the original's size: uint8 RGB.

    ``original`` is the decoded image ``(H, W, 3)`` as on disk, ``heatmap`` the
    Grad-CAM map of the model's input (see :func:`~dermkit.evaluation.gradcam.gradcam`)
    and ``resize_mode`` how that input was made from the image.
    """
    import cv2

    picture = np.asarray(original)
    if picture.ndim != 3 or picture.shape[-1] != 3:
        raise DataError(
            f"expected an RGB image (H, W, 3), got shape {picture.shape}", where="image"
        )
    picture = np.clip(picture, 0, 255).astype(np.uint8)
    height, width = picture.shape[:2]
    heat = heatmap_on_original(heatmap, (height, width), resize_mode)
    blended = overlay(picture, heat, alpha=alpha)
    gap = np.full((height, gap_width(width), 3), BACKGROUND, dtype=np.uint8)
    pair = np.concatenate([picture, gap, blended], axis=1)
    return np.concatenate([_banner(label, pair.shape[1], cv2), pair], axis=0)
