"""Arithmetic whose results cannot depend on the CPU, the BLAS build, threads or NumPy.

A BLAS matrix product (and NumPy's own reductions) may add in any order, and float
addition is not associative: the last bits of a float product differ between CPUs,
kernels and thread counts, and a different last bit can flip a rounding to int8 further
down. Everything here is exact, or rounded by this module one element at a time with
IEEE-754 operations that are correctly rounded on every platform (+, -, *, /, sqrt):

- products of integers are computed in float64 only while every partial sum is an
  integer of magnitude at most 2**53, so BLAS is exact whatever order it sums in;
- `exact_dot` rounds float operands to fixed point first (its only rounding), then
  multiplies exactly as above;
- sums of many values are formed in int64 (exact) or with `math.fsum` (correctly rounded,
  hence independent of order);
- `accurate_dot` splits each operand into two fixed-point integer parts and adds three
  exact products elementwise: ~2**-40 accuracy, the same everywhere;
- `cholesky_solve` factors and substitutes in blocks: elementwise array operations within a
  block (no reduction, so each element is the result of one fixed sequence of operations),
  `accurate_dot` between blocks.
"""

from __future__ import annotations

import math

import numpy as np

_EXACT_BITS = 52  # |partial sums| <= 2**52 < 2**53: exact in float64


def _exponent(peak: np.ndarray) -> np.ndarray:
    """Return e with |values| < 2**e for the given maxima (0 for an all-zero set)."""
    return np.frexp(peak)[1].astype(np.int64)


def _fixed(values: np.ndarray, bits: int, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Return (values rounded to integers of at most 2**bits magnitude, float64; exponent
    e per tensor (axis None) or per row), with values ~ ints * 2**(e - bits)."""
    values = np.asarray(values, np.float64)
    if axis is None:
        e = _exponent(np.abs(values).max(initial=0.0))
        return np.rint(np.ldexp(values, int(bits - e))), e
    e = _exponent(np.abs(values).max(axis=axis, keepdims=True, initial=0.0))
    return np.rint(np.ldexp(values, bits - e)), e


def exact_dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Return float64 x @ w.T for x (M, K) and w (N, K), the same on every machine.

    x is rounded to a fixed-point grid of its own scale (per tensor) and each row of w to
    one of its scale, with bx + bw + bit_length(K) <= 52 bits, so that the float64 matrix
    product of the integers is exact; relative precision ~2**-(52 - bit_length(K)) / 2.
    """
    k = x.shape[-1]
    kbits = max(k, 1).bit_length()
    bx = (_EXACT_BITS - kbits + 1) // 2
    bw = _EXACT_BITS - kbits - bx
    xi, ex = _fixed(x, bx, None)
    wi, ew = _fixed(w, bw, 1)
    return np.ldexp(xi @ wi.T, (ex - bx) + (ew[:, 0] - bw)[None, :])


def exact_mean(x: np.ndarray, axes: tuple[int, ...], keepdims: bool = False) -> np.ndarray:
    """Return the float64 mean of `x` over `axes`: fixed-point values summed in int64."""
    axes = tuple(a % x.ndim for a in axes)
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    bits = 62 - max(count, 1).bit_length()
    ints, e = _fixed(x, bits, None)
    total = ints.astype(np.int64).sum(axis=axes, keepdims=keepdims)
    return np.ldexp(total.astype(np.float64), int(e - bits)) / count


def integer_gram(rows: np.ndarray) -> np.ndarray:
    """Return the exact int64 Gram matrices rows^T rows of integer `rows` (..., m, K)."""
    rows = np.asarray(rows)
    peak = int(np.abs(rows).max(initial=0))
    if peak * peak * rows.shape[-2] > 1 << _EXACT_BITS:
        raise ValueError(f"integer_gram: {rows.shape[-2]} rows of magnitude {peak} overflow "
                         "exact float64 sums")
    f = rows.astype(np.float64)
    return (np.swapaxes(f, -1, -2) @ f).astype(np.int64)


def fsum(values) -> float:
    """Return the correctly rounded sum of `values` (independent of their order)."""
    return math.fsum(np.asarray(values, np.float64).reshape(-1).tolist())


_MAX_ROWS = 1 << 16


def channel_moments(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return float64 (mean, variance) over all but the last axis of int32-range `acc`.

    The sums of values and squares are exact integers (squares split into 16-bit halves so
    int64 never overflows, at most 2**16 rows, strided), and each statistic is one
    correctly rounded division of Python integers.
    """
    a = np.asarray(acc, np.int64).reshape(-1, acc.shape[-1])
    a = a[::-(-len(a) // _MAX_ROWS)] if len(a) > _MAX_ROWS else a
    if np.abs(a).max(initial=0) >= 1 << 31:
        raise ValueError("channel_moments: accumulators exceed int32")
    n = len(a)
    high, low = a >> 16, a & 0xFFFF
    sums = [s.tolist() for s in (a.sum(axis=0), (high * high).sum(axis=0),
                                 (high * low).sum(axis=0), (low * low).sum(axis=0))]
    mean, var = [], []
    for s1, hh, hl, ll in zip(*sums, strict=True):
        s2 = (hh << 32) + (hl << 17) + ll
        mean.append(s1 / n)
        var.append((n * s2 - s1 * s1) / (n * n))
    return np.array(mean, np.float64), np.array(var, np.float64)


def _split(values: np.ndarray, bits: int):
    """Return (high, low, e) with values ~ (high + low * 2**-bits) * 2**(e - bits) per row,
    high and low integers below 2**bits (the rest, below 2**-2bits of the row, dropped)."""
    values = np.asarray(values, np.float64)
    e = _exponent(np.abs(values).max(axis=-1, keepdims=True, initial=0.0))
    scaled = np.ldexp(values, (bits - e).astype(np.int32))
    high = np.rint(scaled)
    return high, np.rint(np.ldexp(scaled - high, bits)), e  # scaled - high is exact


def accurate_dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Return float64 x @ w.T for x (M, K), w (N, K) to ~2**-40 of the rows' magnitudes,
    the same on every machine: each row split into two fixed-point integer parts, three
    exact float64 products, combined elementwise."""
    bits = (_EXACT_BITS - max(x.shape[-1], 1).bit_length()) // 2
    xh, xl, ex = _split(x, bits)
    wh, wl, ew = _split(w, bits)
    cross = xh @ wl.T + xl @ wh.T
    total = xh @ wh.T + np.ldexp(cross, -bits)
    return np.ldexp(total, (ex + ew.T - 2 * bits).astype(np.int32))


_BLOCK = 64


def _cholesky_columns(panel: np.ndarray) -> np.ndarray:
    """Factor the columns of `panel` (..., n, b) whose top b x b block is the diagonal one,
    in place, right-looking and elementwise; return it with zeros above the diagonal."""
    b = panel.shape[-1]
    for j in range(b):
        column = panel[..., j:, j] / np.sqrt(panel[..., j, j])[..., None]
        panel[..., j:, j] = column
        panel[..., :j, j] = 0.0
        if j + 1 < b:
            panel[..., j + 1:, j + 1:] -= column[..., 1:, None] * column[..., None, 1:b - j]
    return panel


def _cholesky(a: np.ndarray) -> np.ndarray:
    """Return the lower Cholesky factor of `a`: blocked (left-looking, `accurate_dot`
    updates) for one large matrix, elementwise for small or batched ones."""
    a = np.array(a, np.float64, order="C")
    k = a.shape[-1]
    if a.ndim > 2 or k <= _BLOCK:
        return _cholesky_columns(a)
    low = np.zeros_like(a)
    for j0 in range(0, k, _BLOCK):
        j1 = min(j0 + _BLOCK, k)
        panel = a[j0:, j0:j1].copy()
        if j0:
            panel -= accurate_dot(low[j0:, :j0], low[j0:j1, :j0])
        low[j0:, j0:j1] = _cholesky_columns(panel)
    return low


def _blocks(k: int, batched: bool) -> list[tuple[int, int]]:
    step = k if batched else _BLOCK
    return [(j0, min(j0 + step, k)) for j0 in range(0, k, step)]


def cholesky_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return x with a @ x = b for symmetric positive definite `a` (..., K, K), b (..., K, R).

    Cholesky factorisation a = L L^T and two block substitutions; within a block every
    element is updated elementwise in a fixed order, between blocks with `accurate_dot`.
    Batched over leading axes (then unblocked).
    """
    low = _cholesky(a)
    y = np.array(b, np.float64, order="C")
    k, batched = low.shape[-1], low.ndim > 2
    blocks = _blocks(k, batched)
    for j0, j1 in blocks:  # L y = b
        if j0:
            y[j0:j1] -= accurate_dot(low[j0:j1, :j0], y[:j0].T)
        for j in range(j0, j1):
            y[..., j, :] /= low[..., j, j][..., None]
            y[..., j + 1:j1, :] -= low[..., j + 1:j1, j, None] * y[..., j, None, :]
    for j0, j1 in reversed(blocks):  # L^T x = y
        if j1 < k:
            y[j0:j1] -= accurate_dot(low[j1:, j0:j1].T, y[j1:].T)
        for j in range(j1 - 1, j0 - 1, -1):
            y[..., j, :] /= low[..., j, j][..., None]
            y[..., j0:j, :] -= low[..., j, j0:j, None] * y[..., j, None, :]
    return y
