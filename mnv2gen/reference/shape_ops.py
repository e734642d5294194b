"""Shape plumbing: SHAPE, STRIDED_SLICE, PACK, GATHER, TILE (and RESHAPE's computed shape).

Exporters compute static shapes at run time (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE,
or TILE of a constant by a computed batch). These kernels give the reference TFLite's
values, and `passes.fold_constants` evaluates them with the same kernels at compile time,
so nothing of this runs on the device.
"""

from __future__ import annotations

import numpy as np

from mnv2gen.errors import UnsupportedError
from mnv2gen.ir import Graph, Op, StridedSliceAttrs


def shape(graph: Graph, op: Op, args) -> np.ndarray:
    """Return the (static) shape of the input as the output dtype."""
    out = graph.tensor(op.outputs[0])
    return np.array(graph.tensor(op.inputs[0]).shape, dtype=out.dtype.np)


def slice_index(a: StridedSliceAttrs, rank: int) -> tuple:
    """Return the NumPy index equal to TFLite's STRIDED_SLICE (no ellipsis/new-axis masks).

    Masked begin/end take the full extent in the stride's direction; a shrunk axis takes
    the single element at `begin`; axes past the given ones are kept whole.
    """
    index = []
    for i in range(rank):
        if i >= len(a.begin):
            index.append(slice(None))
            continue
        begin, end, stride = a.begin[i], a.end[i], a.strides[i]
        if a.shrink_axis_mask >> i & 1:
            index.append(begin)
            continue
        if a.offset:
            end = begin + end
        index.append(slice(None if a.begin_mask >> i & 1 else begin,
                           None if a.end_mask >> i & 1 else end, stride))
    return tuple(index)


def strided_slice(graph: Graph, op: Op, args) -> np.ndarray:
    """Return STRIDED_SLICE of the input."""
    return np.array(np.asarray(args[0])[slice_index(op.attrs, args[0].ndim)])


def pack(graph: Graph, op: Op, args) -> np.ndarray:
    """Return the inputs stacked along a new axis."""
    out = graph.tensor(op.outputs[0])
    return np.stack([np.asarray(a) for a in args], axis=op.attrs.axis).astype(out.dtype.np)


def gather(graph: Graph, op: Op, args) -> np.ndarray:
    """Return GATHER (batch_dims 0): take(params, indices, axis); indices must be in range."""
    params, indices = np.asarray(args[0]), np.asarray(args[1]).astype(np.int64)
    axis = op.attrs.axis
    if op.attrs.batch_dims != 0:
        raise UnsupportedError(f"{op.describe()}: GATHER with batch_dims "
                               f"{op.attrs.batch_dims}", "only batch_dims 0 is supported")
    if indices.size and (indices.min() < 0 or indices.max() >= params.shape[axis]):
        raise UnsupportedError(f"{op.describe()}: a GATHER index is out of range")
    return np.take(params, indices, axis=axis)


def tile(graph: Graph, op: Op, args) -> np.ndarray:
    """Return the input repeated `multiples` times along each axis."""
    multiples = tuple(int(m) for m in np.asarray(args[1]).reshape(-1))
    if any(m < 0 for m in multiples) or len(multiples) != np.asarray(args[0]).ndim:
        raise UnsupportedError(f"{op.describe()}: TILE multiples {multiples} do not fit the "
                               "input")
    result = np.tile(np.asarray(args[0]), multiples)
    out = graph.tensor(op.outputs[0])
    if result.shape != out.shape:
        raise UnsupportedError(f"{op.describe()}: TILE gives shape {result.shape}, the model "
                               f"declares {out.shape}", "the file's static shapes disagree")
    return result
