"""Trained-looking weights for the zoo's float layers, made on a calibration batch.

Layers are initialised in order while the batch flows through them:
1. He-normal weights with smoothly correlated 3x3 taps;
2. each filter projected onto the principal subspace of its receptive field that holds
   KEPT_VARIANCE of the input variance on the batch;
3. batch norm folded in: every pre-activation channel is normalised over the batch and
   given a random scale and shift (RELU6 layers wider and shifted so they use [0, 6]);
   classifier logits get per-class offsets and an input-dependent spread of LOGIT_STD;
4. every tensor's (min, max) on the batch is recorded for the int8 quantiser.

Why 1 and 2: random filters mostly respond to directions the input barely uses (high
spatial frequencies, minor principal components). There they pass quantisation noise
and little signal, batch norm scales that noise up with the channel, and through 50
layers int8 drifts far from float (30-60 % relative error at the logits without them,
2-5 % with them). Trained filters are matched to their input; these imitate that while
keeping feature diversity (projection, not re-weighting by variance, which collapses
features onto one direction).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mnv2gen.ir import Activation, OpKind
from mnv2gen.zoo_float import INPUT, KERNELS, FloatLayer, Init, activate, last_uses, windows

TAP_CORRELATION = 1.0  # correlation length of filter taps, in pixels
KEPT_VARIANCE = 0.95
RELU6_SHIFT = 1.5  # mean of the batch-norm shift before RELU6
LOGIT_STD = 4.0
_COVARIANCE_ROWS = 4096  # receptive fields sampled per layer


def _channel_axis(layer: FloatLayer) -> int:
    return 3 if layer.kind is OpKind.DEPTHWISE_CONV_2D else 0


def _he_normal(layer: FloatLayer, rng: np.random.Generator) -> np.ndarray:
    """Return He-normal weights whose spatial taps are correlated (smooth filters)."""
    shape = layer.weights_shape
    fan_in = int(np.prod(shape)) // shape[_channel_axis(layer)]
    w = rng.standard_normal(shape)
    if len(shape) == 4 and shape[1] * shape[2] > 1:
        kh, kw = shape[1], shape[2]
        r, c = np.divmod(np.arange(kh * kw), kw)
        d2 = (r[:, None] - r[None]) ** 2 + (c[:, None] - c[None]) ** 2
        chol = np.linalg.cholesky(np.exp(-d2 / (2 * TAP_CORRELATION ** 2))
                                  + 1e-6 * np.eye(kh * kw))
        chol /= np.sqrt((chol ** 2).sum(axis=1, keepdims=True))  # unit variance per tap
        taps = np.moveaxis(w, (1, 2), (-2, -1)).reshape(*w.shape[::3], kh * kw) @ chol.T
        w = np.moveaxis(taps.reshape(*w.shape[::3], kh, kw), (-2, -1), (1, 2))
    return w * np.sqrt(2.0 / fan_in)


def _receptive_fields(layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    """Return centred samples of what one filter sees: (rows, kh*kw*in_c) in weight order
    for CONV_2D, (C, rows, kh*kw) per channel for DEPTHWISE_CONV_2D."""
    _, kh, kw, _ = layer.weights_shape
    per_image = int(np.prod(layer.shape[1:3]))
    x = x[:-(-_COVARIANCE_ROWS // per_image)]  # enough whole images for the row budget
    if layer.kind is OpKind.DEPTHWISE_CONV_2D and layer.attrs.depth_multiplier != 1:
        x = np.repeat(x, layer.attrs.depth_multiplier, axis=-1)
    views = [v for _, _, v in windows(x, layer.attrs, kh, kw)]
    if layer.kind is OpKind.CONV_2D:
        rows = np.concatenate(views, axis=-1).reshape(-1, kh * kw * x.shape[-1])
        rows = rows[::max(1, rows.shape[0] // _COVARIANCE_ROWS)]
    else:
        rows = np.stack(views, axis=-1).reshape(-1, x.shape[-1], kh * kw)
        rows = rows[::max(1, rows.shape[0] // _COVARIANCE_ROWS)].transpose(1, 0, 2)
    return rows - rows.mean(axis=-2, keepdims=True)


def _principal_basis(rows: np.ndarray) -> np.ndarray:
    """Return orthonormal columns (..., K, K) spanning the leading principal directions of
    `rows` (..., m, K) that hold KEPT_VARIANCE of its variance; other columns are zero."""
    m, k = rows.shape[-2:]
    if m >= k:
        lam, u = np.linalg.eigh((np.swapaxes(rows, -1, -2) @ rows).astype(np.float64))
    else:  # same non-zero spectrum from the smaller Gram matrix
        lam, v = np.linalg.eigh((rows @ rows.T).astype(np.float64))
        u = rows.T @ v / np.sqrt(np.maximum(lam, 1e-30))
    lam = np.maximum(lam, 0.0)  # ascending
    tail = np.cumsum(lam, axis=-1) / np.maximum(lam.sum(axis=-1, keepdims=True), 1e-30)
    keep = tail > 1.0 - KEPT_VARIANCE
    keep[..., -1] = True
    return u * keep[..., None, :]


def _matched_weights(layer: FloatLayer, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return random weights for `layer` restricted to its input's principal subspace."""
    w = _he_normal(layer, rng)
    basis = _principal_basis(_receptive_fields(layer, x))
    if layer.kind is OpKind.CONV_2D:
        basis = basis[:, basis.any(axis=0)]
        return (w.reshape(w.shape[0], -1) @ basis @ basis.T).reshape(w.shape)
    taps = w.reshape(-1, w.shape[-1]).T  # (C, kh*kw)
    projected = (taps[:, None, :] @ basis @ np.swapaxes(basis, 1, 2))[:, 0]
    return projected.T.reshape(w.shape)


def _batch_norm(layer: FloatLayer, z: np.ndarray, rng: np.random.Generator):
    """Return per-channel (gain, shift) turning pre-activation z into a trained-BN output."""
    axes = tuple(range(z.ndim - 1))
    mean, std = z.mean(axis=axes), z.std(axis=axes) + 1e-3
    n = mean.shape[0]
    if layer.init is Init.LOGITS:
        gain = np.full(n, LOGIT_STD / float(np.sqrt(np.mean(std ** 2))))
        shift = rng.normal(0.0, 1.0, n)
    elif layer.attrs.activation is Activation.RELU6:
        gain = rng.uniform(1.0, 2.0, n) / std
        shift = rng.normal(RELU6_SHIFT, 0.5, n)
    else:
        gain = rng.uniform(0.6, 1.4, n) / std
        shift = rng.normal(0.0, 0.25, n)
    return gain, shift - mean * gain


def _initialised(layer: FloatLayer, x: np.ndarray, rng: np.random.Generator):
    """Return (layer with folded weights and bias, its pre-activation output on x)."""
    if layer.init is Init.BATCH_NORM:
        w = _matched_weights(layer, x, rng)
    else:
        w = _he_normal(layer, rng)
    n = layer.shape[-1]
    raw = replace(layer, weights=w.astype(np.float32), bias=np.zeros(n, np.float32))
    z = KERNELS[layer.kind](raw, x)
    gain, bias = (v.astype(np.float32) for v in _batch_norm(layer, z, rng))
    scale_shape = [1] * w.ndim
    scale_shape[_channel_axis(layer)] = n
    folded = replace(raw, weights=(w * gain.reshape(scale_shape)).astype(np.float32), bias=bias)
    return folded, z * gain + bias  # == the folded layer's output, without recomputing it


def calibrate(layers: list[FloatLayer], images: np.ndarray, seed: int):
    """Return (layers with trained-looking weights, {tensor: (min, max) on `images`}).

    Deterministic for a given seed (and BLAS); see the module docstring for the recipe.
    """
    rng = np.random.default_rng([seed, 0x3E1647])
    values = {INPUT: images.astype(np.float32)}
    ranges = {INPUT: (float(images.min()), float(images.max()))}
    last = last_uses(layers)
    done = []
    for i, layer in enumerate(layers):
        inputs = [values[n] for n in layer.inputs]
        if layer.init is Init.NONE:
            z = KERNELS[layer.kind](layer, *inputs)
        else:
            layer, z = _initialised(layer, inputs[0], rng)
        out = activate(layer, z).astype(np.float32, copy=False)
        values[layer.name] = out
        ranges[layer.name] = (float(out.min()), float(out.max()))
        for name in layer.inputs:
            if last[name] == i:
                del values[name]
        done.append(layer)
    return done, ranges
