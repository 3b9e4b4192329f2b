"""Rounding that minimises a layer's output error, not each weight's (GPTQ-style).

Rounding every weight to its nearest int8 level minimises the error of each weight on
its own, but a layer's output is a sum over its inputs, and correlated inputs (next
pixels of a patch, channels that fire together) let one weight's rounding error be
cancelled by rounding a neighbour the other way. With ``X`` the layer's inputs on the
calibration images (patches, for a convolution) and ``H = XᵀX``, the output error of
a weight error ``δ`` is ``δᵀHδ``. Optimal Brain Quantization (Frantar et al., "GPTQ",
2023; the same objective as AdaRound, Nagel et al. 2020, solved greedily) rounds the
inputs one at a time and moves the error each makes onto the weights not yet rounded,
where ``H`` says it cancels best. Every weight still lands on the converter's grid.

Two things keep the result exactly what the converter will keep:

- the grid is the one of the *original* kernel (symmetric per output channel, scale
  ``max |w| / 127``), and the weight that sets each channel's scale is never moved, so
  the channel's largest value stays at ±127 steps and the converter, recomputing the
  scale from the rounded kernel, finds the same grid;
- updates that would push a weight past ±127 steps are clipped there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INT8_LEVELS = 127
"""Symmetric int8 weights: TFLite uses −127..127 (the 'narrow range')."""
DAMPING = 0.01
"""Added to ``H``'s diagonal, as a fraction of its mean: with fewer input rows than
inputs (a Dense layer on a few dozen pooled images) ``H`` is singular, and damping
also keeps a few images from steering the rounding too far."""


def int8_grid(kernel: np.ndarray, out_axis: int) -> np.ndarray:
    """``kernel`` rounded to the symmetric per-channel int8 grid (scale = max |w| / 127).

    The output channels are the axes from ``out_axis`` on: ``(h, w, in, out)`` for
    Conv2D, ``(h, w, channels, multiplier)`` for DepthwiseConv2D, ``(in, out)`` for Dense.
    """
    scale = _scale(kernel, out_axis)
    return np.asarray(np.clip(np.round(kernel / scale), -INT8_LEVELS, INT8_LEVELS) * scale).astype(
        kernel.dtype
    )


def _scale(kernel: np.ndarray, out_axis: int) -> np.ndarray:
    scale = np.max(np.abs(kernel), axis=tuple(range(out_axis)), keepdims=True) / INT8_LEVELS
    return np.where(scale > 0, scale, 1.0)


class InputStatistics:
    """A layer's input statistics over calibration batches: the mean input map (for
    bias correction) and ``H = XᵀX`` of its input rows (for rounding), where a row is
    what one output position sees: a patch for a convolution, for a depthwise
    convolution one per channel."""

    def __init__(self, layer: Any, out_axis: int, *, with_hessian: bool = True) -> None:
        self.layer = layer
        self.out_axis = out_axis
        self.with_hessian = with_hessian
        self.images = 0
        self.input_sum: np.ndarray | None = None
        self.hessian: np.ndarray | None = None

    def add(self, batch: np.ndarray) -> None:
        """Add one batch of the layer's inputs (images first)."""
        total = np.asarray(batch, dtype=np.float64).sum(axis=0)
        self.input_sum = total if self.input_sum is None else self.input_sum + total
        self.images += len(batch)
        if not self.with_hessian:
            return
        columns = self._columns(np.asarray(batch, dtype=np.float32))
        product = np.asarray(columns @ np.swapaxes(columns, -1, -2), dtype=np.float64)
        self.hessian = product if self.hessian is None else self.hessian + product

    @property
    def mean_input(self) -> np.ndarray:
        assert self.input_sum is not None, "no batch added"
        return self.input_sum / self.images

    def _columns(self, batch: np.ndarray) -> np.ndarray:
        """``(inputs, rows)``, or ``(channels, taps, rows)`` for a depthwise layer, with
        inputs in the order of the kernel's input axes (``(h, w, in)`` flattened).
        Contiguous, inputs first: numpy multiplies such stacks with BLAS, a transposed
        view of ``(rows, inputs)`` stacks it multiplies more than ten times slower."""
        if self.out_axis == 1:  # Dense acts on the last axis
            return np.ascontiguousarray(batch.reshape(-1, batch.shape[-1]).T)
        kh, kw = self.layer.kernel_size
        strides, rates = self.layer.strides, self.layer.dilation_rate
        if (kh, kw) == (1, 1) and tuple(strides) == (1, 1):
            patches = batch
        else:
            import tensorflow as tf

            patches = tf.image.extract_patches(
                batch,
                sizes=[1, kh, kw, 1],
                strides=[1, *strides, 1],
                rates=[1, *rates, 1],
                padding=self.layer.padding.upper(),
            ).numpy()
        if self.out_axis == 3:
            return np.ascontiguousarray(patches.reshape(-1, patches.shape[-1]).T)
        channels = batch.shape[-1]  # depthwise: patches are (rows, taps, channels)
        return np.ascontiguousarray(np.transpose(patches.reshape(-1, kh * kw, channels), (2, 1, 0)))


def output_error_rounding(kernel: np.ndarray, out_axis: int, hessian: np.ndarray) -> np.ndarray:
    """``kernel`` on its int8 grid, each weight rounded up or down to keep the layer's
    output error ``δᵀHδ`` small (see the module docstring).

    ``hessian`` is :attr:`InputStatistics.hessian`: ``(inputs, inputs)``, or
    ``(channels, taps, taps)`` for a depthwise kernel ``(h, w, channels, multiplier)``.
    """
    scale = _scale(kernel, out_axis)
    shape = kernel.shape
    if out_axis == 2:  # depthwise: one problem per channel, (channels, taps, multiplier)
        weights = np.transpose(kernel.reshape(-1, shape[2], shape[3]), (1, 0, 2))
        steps = np.transpose(
            np.broadcast_to(scale, shape).reshape(-1, shape[2], shape[3]), (1, 0, 2)
        )
        h = hessian
    else:
        weights = kernel.reshape(1, -1, shape[-1])
        steps = np.broadcast_to(scale, shape).reshape(1, -1, shape[-1])
        h = hessian[np.newaxis]
    rounded = _obq(weights.astype(np.float64), steps.astype(np.float64), h)
    if out_axis == 2:
        rounded = np.transpose(rounded, (1, 0, 2))
    return rounded.reshape(shape).astype(kernel.dtype)


def _obq(weights: np.ndarray, steps: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """Round ``weights`` ``(groups, inputs, outputs)`` on grids of ``steps`` one input
    at a time, each rounding error spread over the inputs after it (the GPTQ update with
    the Cholesky factor of ``H⁻¹``); each output's largest weight stays put."""
    inputs = weights.shape[1]
    h = np.array(hessian, dtype=np.float64)
    diagonal = np.einsum("gii->gi", h)
    dead = diagonal <= 0
    diagonal[dead] = 1.0  # inputs that never fire: any rounding is as good
    damp = DAMPING * diagonal.mean(axis=1, keepdims=True)
    h[:, np.arange(inputs), np.arange(inputs)] = diagonal + damp
    upper = np.linalg.cholesky(np.linalg.inv(h)).transpose(0, 2, 1)  # H⁻¹ = UᵀU
    free = np.ones_like(weights)
    largest = np.abs(weights).argmax(axis=1)
    np.put_along_axis(free, largest[:, np.newaxis, :], 0.0, axis=1)
    work = weights.copy()
    rounded = np.empty_like(weights)
    for i in range(inputs):
        levels = np.clip(np.round(work[:, i, :] / steps[:, i, :]), -INT8_LEVELS, INT8_LEVELS)
        rounded[:, i, :] = levels * steps[:, i, :]
        error = (work[:, i, :] - rounded[:, i, :]) / upper[:, i, i, np.newaxis]
        work[:, i + 1 :, :] -= (
            upper[:, i, i + 1 :, np.newaxis] * error[:, np.newaxis, :] * free[:, i + 1 :, :]
        )
    return rounded
