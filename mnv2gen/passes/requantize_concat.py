"""Give every CONCATENATION input the output's quantisation with an explicit requantise.

TFLite concatenates int8 tensors only when they share the output's scale and zero point;
its converter inserts a QUANTIZE (int8 -> int8 Requantize) before each input that differs.
Graphs from other front ends may not, so this pass does the same: the inserted QUANTIZE
is exactly the operator TFLite would run, and the concatenation becomes a copy. A constant
input is requantised here, with the reference's QUANTIZE, into a new constant.
"""

from __future__ import annotations

import numpy as np

from mnv2gen.ir import Graph, NoAttrs, Op, OpKind, Tensor
from mnv2gen.reference import KERNELS


def _same(a: Tensor, b: Tensor) -> bool:
    return (np.float32(a.scale) == np.float32(b.scale)) and a.zero_point == b.zero_point


def _requantized_constant(graph: Graph, requantize: Op, t: Tensor, moved: Tensor) -> Tensor:
    """Return `moved` holding constant `t` requantised by the reference's QUANTIZE."""
    scratch = graph.replace(tensors={**graph.tensors, moved.name: moved})
    data = KERNELS[OpKind.QUANTIZE](scratch, requantize, [t.data])
    data.flags.writeable = False
    return Tensor(moved.name, moved.shape, moved.dtype, moved.quant, data)


def requantize_concat(graph: Graph) -> Graph:
    """Return `graph` with a QUANTIZE before every concatenation input quantised unlike
    the output."""
    tensors, ops = dict(graph.tensors), []
    for op in graph.ops:
        if op.kind is OpKind.CONCATENATION and graph.tensor(op.outputs[0]).quant is not None:
            out = graph.tensor(op.outputs[0])
            inputs = []
            for i, name in enumerate(op.inputs):
                t = tensors[name]
                if t.quant is None or _same(t, out):
                    inputs.append(name)
                    continue
                moved = Tensor(f"{op.name}/input{i}/requantized", t.shape, t.dtype, out.quant)
                requantize = Op(OpKind.QUANTIZE, f"{op.name}/requantize{i}", (name,),
                                (moved.name,), NoAttrs(), op.source_index)
                if t.is_const:  # requantised offline: code has no arena bytes for constants
                    moved = _requantized_constant(graph, requantize, t, moved)
                else:
                    ops.append(requantize)
                tensors[moved.name] = moved
                inputs.append(moved.name)
            op = Op(op.kind, op.name, tuple(inputs), op.outputs, op.attrs, op.source_index)
        ops.append(op)
    return graph.replace(ops=tuple(ops), tensors=tensors)
