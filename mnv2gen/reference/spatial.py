"""Spatial and data-movement int8 kernels: RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR,
MAX_POOL_2D, CONCATENATION, ARG_MAX.

TFLite Micro reference semantics: reference_ops::ResizeBilinearInteger (10-bit fixed-point
coordinates, no floating point), ResizeNearestNeighbor (its float32 index mapping depends
only on the shapes: `nearest_indices` computes it once, the C code reads the table),
reference_integer_ops::MaxPool, reference_ops::Concatenation (a copy: TFLite requires
every input to share the output's quantisation) and ArgMinMax with std::greater (the
first maximum wins). None of them rescales: the output keeps the input's quantisation.
"""

from __future__ import annotations

import numpy as np

from mnv2gen import quant
from mnv2gen.errors import UnsupportedError, quoted
from mnv2gen.ir import Graph, Op
from mnv2gen.reference_ops import _windows


def _c_div(a, b):
    """Return C's truncating integer division of int64 arrays by a positive int."""
    a = np.asarray(a, np.int64)
    return np.where(a >= 0, a // b, -((-a) // b))


def bilinear_scale_10(in_size: int, out_size: int, align_corners: bool) -> int:
    """Return the 10-bit fixed-point input/output size ratio ResizeBilinearInteger uses."""
    if align_corners and out_size > 1:
        return ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return ((1 << 10) * in_size + out_size // 2) // out_size


def bilinear_coordinates(out_size: int, in_size: int, scale_10: int, half_pixel: bool):
    """Return per output index (scaled coordinate, lower index, upper index), 10-bit."""
    value = np.arange(out_size, dtype=np.int64) * scale_10
    if half_pixel:
        value = value + scale_10 // 2 - (1 << 9)
    lower = np.maximum(_c_div(value, 1 << 10), 0)
    upper = np.minimum(_c_div(value + (1 << 10) - 1, 1 << 10), in_size - 1)
    return value, lower, upper


def resize_bilinear(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 RESIZE_BILINEAR (ResizeBilinearInteger, double-rounding build)."""
    x = args[0].astype(np.int64)
    a = op.attrs
    _, in_h, in_w, _ = x.shape
    if a.align_corners and a.half_pixel_centers:
        raise UnsupportedError(f"{op.describe()}: align_corners and half_pixel_centers "
                               "together", "TFLite allows one of the two")
    ys, y0, y1 = bilinear_coordinates(a.height, in_h, bilinear_scale_10(in_h, a.height,
                                                                       a.align_corners),
                                      a.half_pixel_centers)
    xs, x0, x1 = bilinear_coordinates(a.width, in_w, bilinear_scale_10(in_w, a.width,
                                                                      a.align_corners),
                                      a.half_pixel_centers)
    dy = (ys - (y0 << 10))[None, :, None, None]
    dx = (xs - (x0 << 10))[None, None, :, None]
    top, bottom = x[:, y0], x[:, y1]
    total = (top[:, :, x0] * ((1 << 10) - dy) * ((1 << 10) - dx)
             + bottom[:, :, x0] * dy * ((1 << 10) - dx)
             + top[:, :, x1] * ((1 << 10) - dy) * dx
             + bottom[:, :, x1] * dy * dx)
    rounded = _c_div(total + np.where(total > 0, 1 << 19, -(1 << 19)), 1 << 20)
    return rounded.astype(np.int8)


def nearest_indices(out_size: int, in_size: int, align_corners: bool,
                    half_pixel: bool) -> np.ndarray:
    """Return GetNearestNeighbor's input index per output index (its float32 arithmetic)."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel else 0.0)
    position = (np.arange(out_size, dtype=np.float32) + offset) * scale
    index = quant.round_half_away(position) if align_corners else np.floor(position)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return np.maximum(index, 0) if half_pixel else index


def resize_nearest_neighbor(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 RESIZE_NEAREST_NEIGHBOR (a gather of input pixels)."""
    a = op.attrs
    _, in_h, in_w, _ = args[0].shape
    rows = nearest_indices(a.height, in_h, a.align_corners, a.half_pixel_centers)
    cols = nearest_indices(a.width, in_w, a.align_corners, a.half_pixel_centers)
    return np.ascontiguousarray(args[0][:, rows][:, :, cols])


def max_pool2d(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 MAX_POOL_2D: the maximum of the in-image part of each window, clamped."""
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.zero_point != out.zero_point or abs(np.float32(x.scale) - np.float32(out.scale)) > 1e-6:
        raise UnsupportedError(f"{op.describe()}: input and output quantisation differ",
                               "MAX_POOL_2D does not rescale (as in TFLite Micro)")
    a, p = op.attrs, op.attrs.padding
    _, ho, wo, _ = out.shape
    pads = ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0))
    values = np.pad(args[0].astype(np.int16), pads, constant_values=-1000)  # below any int8
    windows = _windows(values, (ho, wo), (a.filter_h, a.filter_w), (a.stride_h, a.stride_w),
                       (1, 1))
    lo, hi = quant.activation_range(a.activation, out.scale, out.zero_point)
    return np.clip(windows.max(axis=(3, 4)), max(lo, -128), hi).astype(np.int8)


def concatenation(graph: Graph, op: Op, args) -> np.ndarray:
    """Return CONCATENATION along its axis (passes.requantize_concat equalises scales)."""
    out = graph.tensor(op.outputs[0])
    for name in op.inputs:
        t = graph.tensor(name)
        if t.quant is not None and out.quant is not None and (
                np.float32(t.scale) != np.float32(out.scale) or t.zero_point != out.zero_point):
            raise UnsupportedError(f"{op.describe()}: input {quoted(name)} is quantised "
                                   "differently from the output", "TFLite concatenates int8 "
                                   "tensors of one quantisation; requantise the inputs first")
    return np.concatenate([np.asarray(a) for a in args], axis=op.attrs.axis)


def arg_max(graph: Graph, op: Op, args) -> np.ndarray:
    """Return ARG_MAX along its axis as the output dtype (the first maximum on ties)."""
    out = graph.tensor(op.outputs[0])
    return np.argmax(args[0], axis=op.attrs.axis).astype(out.dtype.np)
