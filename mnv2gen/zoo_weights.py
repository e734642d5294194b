"""Random weights for the zoo that look trained: smooth He-normal filters matched to the
int8 input they will see.

1. He-normal weights (`seeded.Stream`) whose spatial taps are correlated (smooth filters);
2. each filter shrunk towards the directions its input uses. With C the covariance of the
   layer's receptive fields on the calibration batch (exact integers, from the int8 input)
   the filter becomes w C (C + mu I)^-1 = w - mu w (C + mu I)^-1: along a principal
   direction of variance lambda it keeps lambda / (lambda + mu) of itself. mu is RIDGE
   times the mean variance per direction, and at least the variance of int8 rounding
   (1/12 of a step squared): directions the data barely uses are suppressed.

Why 2: random filters mostly respond to directions the input barely uses (high spatial
frequencies, minor principal components). There they pass quantisation noise and little
signal, batch norm scales that noise up with the channel, and through 50 layers int8 drifts
far from float. Trained filters are matched to their input; shrinkage imitates that while
keeping feature diversity (it does not re-weight by variance, which would collapse the
filters onto the first principal direction). A hard projection on the leading eigenvectors
would need an eigensolver, whose output differs in its last bits between LAPACK builds;
the shrinkage needs only a linear solve, done with `exact.cholesky_solve` (elementwise, the
same everywhere), on a covariance that is exact.
"""

from __future__ import annotations

import math

import numpy as np

from mnv2gen import exact
from mnv2gen.ir import OpKind
from mnv2gen.seeded import Stream
from mnv2gen.zoo_float import FloatLayer, windows

TAP_RHO = 0.6065306597126334  # correlation of neighbouring taps: exp(-1/2), 1-pixel length
RIDGE = 0.05
ROUNDING_VARIANCE = 1.0 / 12.0  # of int8 rounding, in squared quantisation steps
COVARIANCE_ROWS = 4096  # receptive fields sampled per layer (at least)


def channel_axis(kind: OpKind) -> int:
    """Return the output-channel axis of a weight tensor of `kind`."""
    return 3 if kind is OpKind.DEPTHWISE_CONV_2D else 0


def _tap_mixing(kh: int, kw: int) -> list[list[float]]:
    """Return the lower Cholesky factor of the tap correlation TAP_RHO ** squared distance
    (plus 1e-6 on the diagonal) with unit-norm rows, computed with correctly rounded
    scalar operations only."""
    n = kh * kw
    pos = [divmod(i, kw) for i in range(n)]
    corr = [[0.0] * n for _ in range(n)]
    for i, (ri, ci) in enumerate(pos):
        for j, (rj, cj) in enumerate(pos):
            value = 1.0
            for _ in range((ri - rj) ** 2 + (ci - cj) ** 2):
                value *= TAP_RHO
            corr[i][j] = value + (1e-6 if i == j else 0.0)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = corr[i][j] - math.fsum(low[i][k] * low[j][k] for k in range(j))
            low[i][j] = math.sqrt(s) if i == j else s / low[j][j]
    for row in low:
        norm = math.sqrt(math.fsum(v * v for v in row))
        row[:] = [v / norm for v in row]
    return low


def he_normal(layer: FloatLayer, stream: Stream) -> np.ndarray:
    """Return float64 He-normal weights of `layer` whose spatial taps are correlated."""
    shape = layer.weights_shape
    fan_in = int(np.prod(shape)) // shape[channel_axis(layer.kind)]
    w = stream.normal(0.0, 1.0, shape)
    if len(shape) == 4 and shape[1] * shape[2] > 1:
        kh, kw = shape[1], shape[2]
        mixing = _tap_mixing(kh, kw)
        taps = np.moveaxis(w, (1, 2), (-2, -1)).reshape(*w.shape[::3], kh * kw)
        mixed = np.zeros_like(taps)
        for i, row in enumerate(mixing):  # taps @ mixing.T in a fixed order
            for j in range(i + 1):
                mixed[..., i] += taps[..., j] * row[j]
        w = np.moveaxis(mixed.reshape(*w.shape[::3], kh, kw), (-2, -1), (1, 2))
    return w * math.sqrt(2.0 / fan_in)


def receptive_fields(layer: FloatLayer, x: np.ndarray, zero_point: int) -> np.ndarray:
    """Return integer samples of what one filter sees in the int8 input `x` (N, H, W, C):
    (rows, kh*kw*in_c) in weight order for CONV_2D, (C, rows, kh*kw) per channel for
    DEPTHWISE_CONV_2D; values are q - zero_point, zero in the padding."""
    _, kh, kw, _ = layer.weights_shape
    per_image = int(np.prod(layer.shape[1:3]))
    x = x[:-(-COVARIANCE_ROWS // per_image)].astype(np.int32) - zero_point
    if layer.kind is OpKind.DEPTHWISE_CONV_2D and layer.attrs.depth_multiplier != 1:
        x = np.repeat(x, layer.attrs.depth_multiplier, axis=-1)
    views = [v for _, _, v in windows(x, layer.attrs, kh, kw)]
    if layer.kind is OpKind.CONV_2D:
        rows = np.concatenate(views, axis=-1).reshape(-1, kh * kw * x.shape[-1])
        return rows[::max(1, rows.shape[0] // COVARIANCE_ROWS)]
    rows = np.stack(views, axis=-1).reshape(-1, x.shape[-1], kh * kw)
    return rows[::max(1, rows.shape[0] // COVARIANCE_ROWS)].transpose(1, 0, 2)


def _shrunk(filters: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Return `filters` (..., F, K) shrunk towards the principal directions of integer
    `rows` (..., m, K) (see the module docstring); filters of a constant input stay."""
    m, k = rows.shape[-2:]
    sums = rows.astype(np.int64).sum(axis=-2)
    scaled_cov = m * exact.integer_gram(rows) - sums[..., :, None] * sums[..., None, :]
    trace = np.trace(scaled_cov, axis1=-2, axis2=-1)  # exact: m^2 * the total variance
    mu = np.maximum(RIDGE * trace.astype(np.float64) / k, m * m * ROUNDING_VARIANCE)
    system = scaled_cov.astype(np.float64) + mu[..., None, None] * np.eye(k)
    solved = exact.cholesky_solve(system, np.swapaxes(filters, -1, -2))
    shrunk = filters - mu[..., None, None] * np.swapaxes(solved, -1, -2)
    return np.where((trace > 0)[..., None, None], shrunk, filters)


def matched_weights(layer: FloatLayer, x: np.ndarray, zero_point: int,
                    stream: Stream) -> np.ndarray:
    """Return float64 He-normal weights of `layer` shrunk towards what its int8 input
    `x` (N, H, W, C, zero point `zero_point`) uses."""
    w = he_normal(layer, stream)
    rows = receptive_fields(layer, x, zero_point)
    if layer.kind is OpKind.CONV_2D:
        return _shrunk(w.reshape(w.shape[0], -1), rows).reshape(w.shape)
    taps = w.reshape(-1, w.shape[-1]).T[:, None, :]  # (C, 1, kh*kw)
    return _shrunk(taps, rows)[:, 0].T.reshape(w.shape)
