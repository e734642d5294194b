"""Turn a TRANSPOSE that keeps the order of its non-unit dimensions into a RESHAPE.

Moving size-1 axes changes the shape, never the order of the bytes, so such a transpose
is a view (e.g. onnx2tf's [1, 1, 1, C] -> [1, C, 1, 1] before the classifier).
"""

from __future__ import annotations

from mnv2gen.ir import Graph, NoAttrs, Op, OpKind


def is_reshape(shape: tuple[int, ...], perm: tuple[int, ...]) -> bool:
    """Return True when permuting `shape` by `perm` leaves the bytes in place."""
    moved = [axis for axis in perm if shape[axis] != 1]
    return moved == sorted(moved)


def transpose_reshape(graph: Graph) -> Graph:
    """Return `graph` with byte-order-preserving transposes rewritten as RESHAPE."""
    ops = tuple(
        Op(OpKind.RESHAPE, op.name, op.inputs, op.outputs, NoAttrs(), op.source_index)
        if op.kind is OpKind.TRANSPOSE
        and is_reshape(graph.tensor(op.inputs[0]).shape, op.attrs.perm) else op
        for op in graph.ops)
    return graph.replace(ops=ops)
