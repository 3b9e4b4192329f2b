"""How good are the generated images? KID, FID and a classifier two-sample test, per class.

All three compare *features* of real and generated images, never pixels. The metric
functions take feature arrays, and :func:`evaluate_quality` takes any feature-extractor
callable ``uint8 images (n, s, s, 3) -> features (n, d)``, so the metrics do not depend
on which network provides the features. The extractors offered here are, in order of
preference:

1. ImageNet features of EfficientNet-Lite0 (``dermkit.models.create_model(
   "efficientnet_lite0", ..., weights="imagenet")``, cut at its pooled features), the
   closest thing to the Inception features of published FID figures that these
   machines can use offline;
2. the penultimate layer of a dermkit classifier run trained on the same data (its
   ``model.keras``), when the ImageNet weights are not available.

Numbers only mean something next to their references, so every class gets:

- **floor** (real vs real): the same metric between two disjoint halves of the real
  images. No generator can be expected to beat it; a generator "within a factor *k*
  of the floor" is the honest way to state quality on small classes.
- **ceilings**: blurred real images (Gaussian, σ = image size / 16) and uniform noise
  against the same reference half. A generator must sit far below both.
- **C2ST**: held-out accuracy of a logistic regression telling real from generated
  features (5-fold cross-validation, equal numbers of each): 0.5 means
  indistinguishable, 1.0 means trivially told apart. Its floor (real half vs real half)
  shows what chance looks like at this sample size.

KID (Bińkowski et al. 2018) is the squared MMD with the kernel ``(x·y/d + 1)^3``,
estimated without bias, as mean ± standard deviation over random subsets; being
unbiased, it is comparable across sample sizes, which matters for classes of a few
dozen images. FID (Heusel et al. 2017) is biased upwards at small *n* (its covariance
estimates need far more samples than 1,280 dimensions), so FID values are compared
only at equal *n*: the generated, floor and ceiling sets all have the size of the
reference half.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from dermkit.errors import ConfigError, DermkitError

FeatureExtractor = Callable[[np.ndarray], np.ndarray]
"""``uint8 images (n, s, s, 3) -> float features (n, d)``."""

LITE0 = "efficientnet_lite0"
MIN_REAL = 8
"""Real images a class needs: two halves of four, so KID has subsets of two to compare."""


# ----------------------------------------------------------------------------- metrics


def kid(
    x: np.ndarray, y: np.ndarray, *, subset_size: int = 1000, subsets: int = 100, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance between feature sets: ``(mean, std)`` over subsets.

    Each subset draws ``m`` rows of each set without replacement, ``m`` being
    ``subset_size`` or half the smaller set, whichever is less. The mean over subsets
    estimates the same (unbiased) value as one estimate on all rows would; taking at
    most half keeps the subsets different from each other, so that on the small sets
    of rare classes the standard deviation shows the estimate's spread instead of
    being zero. ``nan`` when either set has fewer than four rows.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = min(subset_size, min(len(x), len(y)) // 2)
    if m < 2:
        return math.nan, math.nan
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1.0) ** 3
        kyy = (b @ b.T / d + 1.0) ** 3
        kxy = (a @ b.T / d + 1.0) ** 3
        same = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(same - 2.0 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    result: np.ndarray = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return result


def fid(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    ``trace(sqrt(S1 S2))`` is computed as the sum of the square roots of the
    eigenvalues of ``sqrt(S1) S2 sqrt(S1)``, which is symmetric, so no complex
    matrix square root (and no SciPy) is needed.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    cov_x = np.atleast_2d(np.cov(x, rowvar=False))
    cov_y = np.atleast_2d(np.cov(y, rowvar=False))
    root = _sqrt_psd(cov_x)
    middle = root @ cov_y @ root
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)).sum()
    diff = mu_x - mu_y
    return float(diff @ diff + np.trace(cov_x) + np.trace(cov_y) - 2.0 * cross)


def c2st_accuracy(x: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0) -> float:
    """Held-out accuracy of a logistic regression telling ``x`` from ``y`` (0.5 = chance).

    The larger set is subsampled to the size of the smaller, so chance is exactly 0.5.
    Features are standardised and the regression is L2-regularised (C = 0.1), because
    there are usually more feature dimensions than images.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        raise ConfigError(
            "the classifier two-sample test needs scikit-learn",
            hint="pip install scikit-learn",
        ) from None
    n = min(len(x), len(y))
    folds = min(folds, n)
    if folds < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    a = np.asarray(x, dtype=np.float64)[rng.choice(len(x), n, replace=False)]
    b = np.asarray(y, dtype=np.float64)[rng.choice(len(y), n, replace=False)]
    features = np.concatenate([a, b])
    labels = np.concatenate([np.zeros(n, dtype=int), np.ones(n, dtype=int)])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    scores = cross_val_score(
        model, features, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed)
    )
    return float(np.mean(scores))


# ----------------------------------------------------------------------------- references


def blurred(images: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Gaussian-blurred copies (σ defaults to image size / 16): the "blur" ceiling."""
    import cv2

    size = images.shape[1]
    sigma = sigma if sigma is not None else size / 16.0
    return np.stack([cv2.GaussianBlur(image, (0, 0), sigmaX=sigma) for image in images])


def noise_images(count: int, size: int, seed: int) -> np.ndarray:
    """Uniform-noise RGB images: the "noise" ceiling."""
    rng = np.random.default_rng([seed, 0x0153])
    return rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)


@attrs.frozen
class ClassQuality:
    """The quality figures of one class (or ``"all"``, the classes pooled)."""

    name: str
    n_real: int
    n_generated: int
    kid: float
    kid_std: float
    kid_floor: float
    kid_floor_std: float
    kid_blur: float
    kid_noise: float
    fid: float
    fid_floor: float
    fid_blur: float
    fid_noise: float
    c2st: float
    c2st_floor: float

    @property
    def kid_over_floor(self) -> float:
        """KID divided by the real-vs-real KID.

        ``nan`` unless the floor is clearly above zero (more than twice its spread over
        subsets): a floor that is zero within its noise makes any ratio meaningless, and
        the unbiased estimate of a zero floor is as often negative as positive.
        """
        if self.kid_floor > 2.0 * self.kid_floor_std and self.kid_floor > 0:
            return self.kid / self.kid_floor
        return math.nan

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["kid_over_floor"] = self.kid_over_floor
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}


@attrs.frozen
class _Features:
    gen: np.ndarray
    real: np.ndarray
    half_a: np.ndarray
    half_b: np.ndarray
    blur: np.ndarray
    noise: np.ndarray


def _features(
    real: np.ndarray, generated: np.ndarray, extract: FeatureExtractor, seed: int
) -> _Features:
    rng = np.random.default_rng([seed, 0x4A1F])
    order = rng.permutation(len(real))
    half = len(real) // 2
    a_index, b_index = order[:half], order[half : 2 * half]
    real_features = extract(real)
    return _Features(
        gen=extract(generated),
        real=real_features,
        half_a=real_features[a_index],
        half_b=real_features[b_index],
        blur=extract(blurred(real[a_index])) if half else real_features[:0],
        noise=extract(noise_images(half, real.shape[1], seed)) if half else real_features[:0],
    )


def _quality(name: str, f: _Features, seed: int) -> ClassQuality:
    half = len(f.half_a)
    gen_kid, gen_std = kid(f.gen, f.half_b, seed=seed)
    floor_kid, floor_std = kid(f.half_a, f.half_b, seed=seed)
    return ClassQuality(
        name=name,
        n_real=len(f.real),
        n_generated=len(f.gen),
        kid=gen_kid,
        kid_std=gen_std,
        kid_floor=floor_kid,
        kid_floor_std=floor_std,
        kid_blur=kid(f.blur, f.half_b, seed=seed)[0],
        kid_noise=kid(f.noise, f.half_b, seed=seed)[0],
        fid=fid(f.gen[:half], f.half_b),
        fid_floor=fid(f.half_a, f.half_b),
        fid_blur=fid(f.blur, f.half_b),
        fid_noise=fid(f.noise, f.half_b),
        c2st=c2st_accuracy(f.gen, f.real, seed=seed),
        c2st_floor=c2st_accuracy(f.half_a, f.half_b, seed=seed),
    )


def evaluate_quality(
    real: Mapping[str, np.ndarray],
    generated: Mapping[str, np.ndarray],
    extract: FeatureExtractor,
    *,
    seed: int = 0,
) -> list[ClassQuality]:
    """One :class:`ClassQuality` per class in ``generated``, then one for all pooled."""
    per_class: dict[str, _Features] = {}
    for name, fakes in generated.items():
        if name not in real or len(real[name]) < MIN_REAL:
            raise ConfigError(
                f"class {name!r} has {len(real.get(name, ()))} real images; at least "
                f"{MIN_REAL} are needed for a real-vs-real floor",
                where="gan evaluate",
            )
        per_class[name] = _features(real[name], fakes, extract, seed)
    rows = [_quality(name, f, seed) for name, f in per_class.items()]
    if len(per_class) > 1:
        pooled = _Features(
            *(
                np.concatenate([getattr(f, field) for f in per_class.values()])
                for field in ("gen", "real", "half_a", "half_b", "blur", "noise")
            )
        )
        rows.append(_quality("all", pooled, seed))
    return rows


def _number(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def quality_table(rows: Sequence[ClassQuality], features: str) -> str:
    """The quality figures as a Markdown table (KID ×10³), with how to read them."""
    lines = [
        f"Features: {features}. KID ×10³ (mean ± std over subsets); FID at equal n; "
        "C2ST = held-out accuracy telling real from generated (0.5 = indistinguishable).",
        "",
        "| class | real | gen | KID | floor | KID/floor | blur | noise | FID | FID floor "
        "| FID blur | FID noise | C2ST | C2ST floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.n_real} | {r.n_generated} "
            f"| {_number(r.kid * 1e3)} ± {_number(r.kid_std * 1e3)} "
            f"| {_number(r.kid_floor * 1e3)} ± {_number(r.kid_floor_std * 1e3)} "
            f"| {_number(r.kid_over_floor, 1)} "
            f"| {_number(r.kid_blur * 1e3)} | {_number(r.kid_noise * 1e3)} "
            f"| {_number(r.fid, 1)} | {_number(r.fid_floor, 1)} | {_number(r.fid_blur, 1)} "
            f"| {_number(r.fid_noise, 1)} | {_number(r.c2st)} | {_number(r.c2st_floor)} |"
        )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- features


def feature_model(model: Any) -> Any:
    """``model`` cut at its pooled features.

    The output of the last top-level global-average-pooling layer if there is one (an
    ImageNet backbone's pooled features), else the output of a nested backbone model
    that already returns ``(batch, d)``, else the input of the ``probabilities`` layer
    (the penultimate layer of a dermkit classifier).
    """
    import keras

    from dermkit.models.heads import OUTPUT_NAME

    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            return keras.Model(model.inputs, layer.output)
    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model) and len(layer.output.shape) == 2:
            return keras.Model(model.inputs, layer.output)
    try:
        head = model.get_layer(OUTPUT_NAME)
    except ValueError:
        raise ConfigError(
            f"cannot find the features of model {model.name!r}: it has no global pooling and "
            f"no {OUTPUT_NAME!r} layer",
            hint="use a dermkit classifier run",
        ) from None
    return keras.Model(model.inputs, head.input)


def keras_extractor(model: Any, *, batch_size: int = 32) -> FeatureExtractor:
    """A :data:`FeatureExtractor` from a dermkit-style model (raw RGB [0, 255] input).

    Images are resized (bilinear, antialiased) to the model's input size first.
    """
    import tensorflow as tf

    cut = feature_model(model)
    size = cut.input_shape[1:3]

    def features(batch: tf.Tensor) -> tf.Tensor:
        images = tf.cast(batch, tf.float32)
        if tuple(images.shape[1:3]) != tuple(size):
            images = tf.image.resize(images, size, method="bilinear", antialias=True)
        return cut(images, training=False)

    run = tf.function(features, reduce_retracing=True)

    def extract(images: np.ndarray) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, int(cut.output_shape[-1])), dtype=np.float64)
        parts = [
            np.asarray(run(tf.constant(images[i : i + batch_size])), dtype=np.float64)
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts).reshape(len(images), -1)

    return extract


def lite0_extractor(input_size: int = 224, batch_size: int = 32) -> FeatureExtractor:
    """ImageNet EfficientNet-Lite0 pooled features; a DermkitError if they are unavailable."""
    from dermkit.models import create_model

    model = create_model(LITE0, 2, input_size=input_size, weights="imagenet")
    return keras_extractor(model, batch_size=batch_size)


def classifier_extractor(run_dir: str | Path, batch_size: int = 32) -> FeatureExtractor:
    """The penultimate layer of a dermkit classifier run's ``model.keras``."""
    from dermkit.models import load_model

    path = Path(run_dir) / "model.keras"
    if not path.is_file():
        raise ConfigError(
            "no model.keras in this folder",
            where=str(run_dir),
            hint="pass the folder of a dermkit classifier run (dermkit train --out ...), "
            "lite0, auto or none",
        )
    return keras_extractor(load_model(path, compile=False), batch_size=batch_size)


FEATURE_CHOICES: tuple[str, ...] = ("auto", "lite0", "classifier", "none")


def resolve_extractor(
    choice: str = "auto", classifier_run: str | Path | None = None
) -> tuple[FeatureExtractor | None, str]:
    """``(extractor or None, description)`` for one of :data:`FEATURE_CHOICES`.

    ``auto`` uses Lite0's ImageNet features when they can be built, else the
    penultimate layer of ``classifier_run`` when one is given, else returns ``None``
    with the reason in the description. ``lite0`` and ``classifier`` insist.
    """
    if choice not in FEATURE_CHOICES:
        raise ConfigError(
            f"unknown feature source {choice!r}",
            where="--features",
            hint=f"choose from {', '.join(FEATURE_CHOICES)}",
        )
    if choice == "none":
        return None, "none"
    if choice in ("lite0", "auto"):
        try:
            return lite0_extractor(), f"{LITE0} ImageNet, pooled features at 224 px"
        except DermkitError as error:
            if choice == "lite0":
                raise
            reason = error.render()
        if classifier_run is None:
            return None, f"none ({LITE0} ImageNet weights unavailable: {reason})"
    if classifier_run is None:
        raise ConfigError(
            "features from a classifier need its run folder",
            where="--features classifier",
            hint="pass --classifier RUN (a dermkit classifier run trained on the same data)",
        )
    return (
        classifier_extractor(classifier_run),
        f"penultimate layer of classifier run {classifier_run}",
    )
