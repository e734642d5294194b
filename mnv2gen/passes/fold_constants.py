"""Evaluate at compile time what does not depend on the input: shape plumbing and
operators on constants.

SHAPE reads only the (static) shape of its input, so it always folds; every operator
whose inputs are all constants is then evaluated with the reference kernel and replaced
by its value (STRIDED_SLICE/PACK/GATHER on shapes, TILE of a constant, a concatenation of
constant anchors...). A RESHAPE whose shape operand became constant is checked against
its output shape and keeps its data input only. A float QUANTIZE of the graph input and
a DEQUANTIZE to a graph output stay: they are the model's edges, cut by `integer_core`;
float arithmetic after a DEQUANTIZE of constants (anchor or box-prior tables) folds.
Exact by construction: the folded values are what the reference, and TFLite, compute at
run time.
"""

from __future__ import annotations

import numpy as np

from mnv2gen.errors import UnsupportedError
from mnv2gen.ir import DType, Graph, Op, OpKind, Tensor

_EDGES = (OpKind.QUANTIZE, OpKind.DEQUANTIZE)


def _is_edge(graph: Graph, op: Op) -> bool:
    """Return True for a float QUANTIZE of a graph input or DEQUANTIZE to a graph output."""
    if op.kind is OpKind.QUANTIZE:
        return graph.tensor(op.inputs[0]).dtype is DType.FLOAT32 and op.inputs[0] in graph.inputs
    return (op.kind is OpKind.DEQUANTIZE and graph.tensor(op.outputs[0]).dtype is DType.FLOAT32
            and op.outputs[0] in graph.outputs)


def _foldable(graph: Graph, op: Op, constant) -> bool:
    if op.kind is OpKind.SHAPE:
        return True
    if op.kind in _EDGES and _is_edge(graph, op):
        return False
    return all(constant(n) for n in op.inputs)


def _resolved_shape(graph: Graph, op: Op, values: np.ndarray) -> tuple[int, ...]:
    """Return RESHAPE's computed shape with -1 resolved (as TFLite's Prepare does)."""
    shape = [int(v) for v in values.reshape(-1)]
    count = graph.tensor(op.inputs[0]).num_elements
    if shape.count(-1) == 1:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        shape[shape.index(-1)] = count // known if known else 0
    return tuple(shape)


def fold_constants(graph: Graph) -> Graph:
    """Return `graph` with shape plumbing and constant-only operators folded into constants."""
    from mnv2gen.reference import KERNELS  # local: the reference imports the IR passes use

    tensors = dict(graph.tensors)
    ops: list[Op] = []

    def constant(name: str) -> bool:
        return tensors[name].is_const

    for op in graph.ops:
        if op.kind is OpKind.RESHAPE and len(op.inputs) == 2 and constant(op.inputs[1]):
            out = tensors[op.outputs[0]]
            computed = _resolved_shape(graph, op, tensors[op.inputs[1]].data)
            if computed != out.shape:
                raise UnsupportedError(f"{op.describe()}: the computed shape {computed} "
                                       f"differs from the declared {out.shape}",
                                       "the file's static shapes disagree with its graph")
            op = Op(op.kind, op.name, op.inputs[:1], op.outputs, op.attrs, op.source_index)
        if not _foldable(graph, op, constant):
            ops.append(op)
            continue
        args = [tensors[n].data for n in op.inputs]
        sub = graph.replace(tensors=tensors, ops=())
        value = np.array(KERNELS[op.kind](sub, op, args), copy=True)
        value.flags.writeable = False
        out = tensors[op.outputs[0]]
        tensors[out.name] = Tensor(out.name, out.shape, out.dtype, out.quant, value)
    return graph.replace(ops=tuple(ops), tensors=tensors)
