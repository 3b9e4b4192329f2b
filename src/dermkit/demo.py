"""A procedural, clearly synthetic lesion-like dataset, for a first run without real data.

These images are *not* dermatoscopic images and say nothing about real diagnoses: they
are drawn with OpenCV so that the four classes differ in shape, colour and texture, as
real classes do, which lets ``dermkit demo`` exercise the whole flow (split, balance,
train, evaluate) in a minute or two on a laptop. The classes are deliberately
imbalanced, like HAM10000, so balancing has something to do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

DEMO_CLASSES: dict[str, int] = {
    "synthetic-round-brown": 120,  # the "common" class, like nv
    "synthetic-irregular-dark": 50,
    "synthetic-red-lacunae": 30,
    "synthetic-speckled": 30,
}
"""Class folder name -> image count."""

README = """# dermkit demo data (SYNTHETIC)

Every image in this folder was drawn by `dermkit.demo` with random shapes and noise.
They are NOT medical images and carry no diagnostic meaning; they exist only so the
whole dermkit flow can run in a minute without downloading anything.
"""


def _skin(rng: np.random.Generator, size: int) -> np.ndarray:
    tone = np.array([rng.uniform(200, 240), rng.uniform(160, 200), rng.uniform(140, 180)])
    image = np.ones((size, size, 3)) * tone
    image += rng.normal(0, 6, (size, size, 1))
    return np.asarray(image, dtype=np.float64)


def _blob_mask(rng: np.random.Generator, size: int, irregular: float) -> np.ndarray:
    import cv2

    centre = np.array([size / 2, size / 2]) + rng.normal(0, size * 0.06, 2)
    radius = size * rng.uniform(0.2, 0.32)
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1 + irregular * rng.uniform(-1, 1, 48)
    wobble = np.convolve(np.r_[wobble[-3:], wobble, wobble[:3]], np.ones(3) / 3, "same")[3:-3]
    points = np.stack(
        [
            centre[0] + radius * wobble * np.cos(angles),
            centre[1] + radius * wobble * np.sin(angles),
        ],
        axis=1,
    ).astype(np.int32)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [points], 255)
    blurred = cv2.GaussianBlur(mask, (0, 0), size * 0.02)
    return np.asarray(blurred, dtype=np.float64) / 255.0


def _paint(image: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    painted: np.ndarray = image * (1 - mask[..., None]) + colour * mask[..., None]
    return painted


def _round_brown(rng: np.random.Generator, size: int) -> np.ndarray:
    colour = np.array([rng.uniform(120, 160), rng.uniform(80, 100), rng.uniform(50, 70)])
    return _paint(_skin(rng, size), _blob_mask(rng, size, 0.05), colour)


def _irregular_dark(rng: np.random.Generator, size: int) -> np.ndarray:
    image = _paint(_skin(rng, size), _blob_mask(rng, size, 0.45), np.array([70.0, 45, 40]))
    inner = _blob_mask(rng, size, 0.5) * rng.uniform(0.4, 0.8)
    return _paint(image, inner * 0.8, np.array([30.0, 25, 45]))


def _red_lacunae(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    image = _paint(_skin(rng, size), _blob_mask(rng, size, 0.1) * 0.6, np.array([200.0, 90, 100]))
    for _ in range(int(rng.integers(5, 10))):
        centre = (int(rng.uniform(0.3, 0.7) * size), int(rng.uniform(0.3, 0.7) * size))
        cv2.circle(image, centre, int(size * rng.uniform(0.03, 0.06)), (170, 20, 40), -1)
    return image


def _speckled(rng: np.random.Generator, size: int) -> np.ndarray:
    mask = _blob_mask(rng, size, 0.2)
    image = _paint(_skin(rng, size), mask * 0.5, np.array([150.0, 110, 80]))
    dots = (rng.uniform(0, 1, (size, size)) < 0.08) * mask
    return _paint(image, dots, np.array([40.0, 30, 30]))


PAINTERS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "synthetic-round-brown": _round_brown,
    "synthetic-irregular-dark": _irregular_dark,
    "synthetic-red-lacunae": _red_lacunae,
    "synthetic-speckled": _speckled,
}


def make_demo_dataset(
    root: str | Path, *, size: int = 64, seed: int = 0, scale: float = 1.0
) -> Path:
    """Write the synthetic dataset as one folder per class (PNG files) under ``root``.

    ``scale`` multiplies every class's image count (tests use a small fraction).
    """
    import cv2

    root = Path(root)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text(README, encoding="utf-8")
    for name, count in DEMO_CLASSES.items():
        folder = root / name
        folder.mkdir(exist_ok=True)
        for i in range(max(3, round(count * scale))):
            image = PAINTERS[name](rng, size)
            image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{name}-{i:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root
