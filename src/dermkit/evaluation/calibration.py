"""Temperature scaling: one number that makes a classifier's confidences honest.

Networks trained with cross-entropy on a few thousand images are usually
over-confident: a "95%" melanoma call is right far less often than 95% of the time.
Temperature scaling (Guo et al., 2017) divides the logits by a scalar ``T`` fitted on
the *validation* part by minimising the negative log-likelihood. It never changes the
arg-max, so accuracy and recall stay as they are, only the confidences move.

Models in dermkit end in a softmax, so we usually only have probabilities. Their logs
are logits up to a per-row constant, which softmax ignores, so ``log p`` serves as the
logits. The fit is a safeguarded Newton iteration on ``beta = 1/T``: the NLL is convex
in ``beta`` (a log-sum-exp of functions linear in ``beta``), so its derivative crosses
zero at most once and bisection keeps Newton honest. ``T`` is kept within
``[T_MIN, T_MAX]``: data a model separates perfectly would otherwise drive ``T`` to 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs
import numpy as np
import numpy.typing as npt

from dermkit.errors import ConfigError, DataError
from dermkit.evaluation._io import atomic_write_text
from dermkit.evaluation.metrics import FloatArray, as_labels

T_MIN = 0.01
T_MAX = 100.0
_TINY = 1e-300

ScoreKind = Literal["probabilities", "logits"]


def _logits(scores: npt.ArrayLike, kind: ScoreKind) -> FloatArray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 2:
        raise DataError(
            f"expected an (n, num_classes) array with at least 2 classes, got {values.shape}",
            where=kind,
        )
    if kind == "logits":
        if not np.all(np.isfinite(values)):
            raise DataError("logits contain NaN or infinity", where="logits")
        return values
    if kind != "probabilities":
        raise ConfigError(f"unknown score kind {kind!r}", hint="use 'probabilities' or 'logits'")
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise DataError(
            "probabilities must be finite and non-negative",
            where="probabilities",
            hint="pass kind='logits' for raw network outputs",
        )
    return np.log(np.maximum(values, _TINY))


def softmax(logits: npt.ArrayLike) -> FloatArray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return out


def _nll_and_derivatives(
    logits: FloatArray, labels: npt.NDArray[np.int64], beta: float
) -> tuple[float, float, float]:
    """NLL of softmax(beta * z) and its first two derivatives in ``beta``."""
    z = logits
    scaled = beta * z
    top = scaled.max(axis=1, keepdims=True)
    lse = np.log(np.exp(scaled - top).sum(axis=1, keepdims=True)) + top
    p = np.exp(scaled - lse)
    zy = z[np.arange(z.shape[0]), labels]
    nll = float(np.mean(lse[:, 0] - beta * zy))
    mean_z = (p * z).sum(axis=1)
    var_z = (p * z * z).sum(axis=1) - mean_z**2
    return nll, float(np.mean(mean_z - zy)), float(np.mean(np.maximum(var_z, 0.0)))


def nll(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    temperature: float = 1.0,
    *,
    kind: ScoreKind = "probabilities",
) -> float:
    """Mean negative log-likelihood of ``labels`` after scaling by ``temperature``."""
    z = _logits(scores, kind)
    y = as_labels(labels, z.shape[1])
    return _nll_and_derivatives(z, y, 1.0 / temperature)[0]


def fit_temperature(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    kind: ScoreKind = "probabilities",
    tol: float = 1e-10,
    max_iter: int = 200,
) -> float:
    """The ``T`` in ``[T_MIN, T_MAX]`` that minimises the NLL of ``labels``."""
    z = _logits(scores, kind)
    y = as_labels(labels, z.shape[1])
    if y.size != z.shape[0]:
        raise DataError(f"{y.size} labels for {z.shape[0]} rows of scores", where="labels")
    if y.size == 0:
        raise DataError("cannot fit a temperature on no samples", where="labels")
    lo, hi = 1.0 / T_MAX, 1.0 / T_MIN
    if np.all(np.ptp(z, axis=1) == 0):
        return 1.0  # every row is flat: no temperature changes anything
    if _nll_and_derivatives(z, y, lo)[1] >= 0:
        return T_MAX  # the scores carry no usable signal: flatten them as far as allowed
    if _nll_and_derivatives(z, y, hi)[1] <= 0:
        return T_MIN
    beta = 1.0 if lo < 1.0 < hi else (lo + hi) / 2
    for _ in range(max_iter):
        _, grad, curv = _nll_and_derivatives(z, y, beta)
        if abs(grad) < tol:
            break
        if grad > 0:
            hi = beta
        else:
            lo = beta
        step = beta - grad / curv if curv > 0 else np.nan
        beta = float(step) if lo <= step <= hi else (lo + hi) / 2
        if hi - lo < tol * beta:
            break
    return float(1.0 / beta)


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ConfigError(
            f"temperature must be a positive number, got {value}", where="temperature"
        )


@attrs.frozen(slots=True)
class TemperatureScaling:
    """A fitted temperature; ``apply`` rescales probabilities (or logits) with it.

    Fit on validation predictions, apply to test predictions::

        scaler = TemperatureScaling.fit(val_probs, val_labels)
        test_probs = scaler.apply(test_probs)
        scaler.save(run / "temperature.json")
    """

    name: ClassVar[str] = "temperature"
    temperature: float = attrs.field(default=1.0, converter=float, validator=_positive)

    @classmethod
    def fit(
        cls, scores: npt.ArrayLike, labels: npt.ArrayLike, *, kind: ScoreKind = "probabilities"
    ) -> TemperatureScaling:
        return cls(fit_temperature(scores, labels, kind=kind))

    def apply(self, scores: npt.ArrayLike, *, kind: ScoreKind = "probabilities") -> FloatArray:
        """Calibrated probabilities: ``softmax(logits / T)``."""
        return softmax(_logits(scores, kind) / self.temperature)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.name, "temperature": self.temperature}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemperatureScaling:
        if data.get("kind", cls.name) != cls.name or "temperature" not in data:
            raise DataError(
                "not a temperature-scaling file",
                hint='expected {"kind": "temperature", "temperature": <number>}',
            )
        return cls(float(data["temperature"]))

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        atomic_write_text(target, json.dumps(self.to_json(), indent=2) + "\n")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TemperatureScaling:
        source = Path(path)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError("file not found", where=str(source)) from None
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON: {error}", where=str(source)) from None
        if not isinstance(data, Mapping):
            raise DataError("expected a JSON object", where=str(source))
        try:
            return cls.from_json(data)
        except (DataError, ConfigError) as error:
            raise DataError(error.message, where=str(source), hint=error.hint) from None
