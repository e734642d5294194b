"""Lookup tables of the generated backend's elementwise int8 operators.

An int8 -> int8 activation with per-tensor quantisation (or an ADD, SUB or MUL by a
one-element constant) is a function of the input byte alone, so its 256 outputs,
computed once by the reference's own arithmetic, replace the fixed-point evaluation
exactly: the C reads table[(uint8_t)x].
"""

from __future__ import annotations

import numpy as np

from mnv2gen.ir import DType, Graph, Op, OpKind
from mnv2gen.reference.elementwise import add, hard_swish, logistic, mul, sub

_UNARY = {OpKind.HARD_SWISH: hard_swish, OpKind.LOGISTIC: logistic}
_BINARY = {OpKind.ADD: add, OpKind.SUB: sub, OpKind.MUL: mul}

#: Every int8 value, in the order of its byte (0..127, then -128..-1).
BY_BYTE = np.arange(256, dtype=np.uint8).view(np.int8)


def _int8(graph: Graph, name: str) -> bool:
    return graph.tensor(name).dtype is DType.INT8


def _scalar_operand(graph: Graph, op: Op) -> int | None:
    """Return the index of a binary op's one-element constant operand (the other one not
    constant), else None."""
    consts = [i for i, n in enumerate(op.inputs) if graph.tensor(n).is_const]
    if len(op.inputs) != 2 or len(consts) != 1:
        return None
    return consts[0] if graph.tensor(op.inputs[consts[0]]).num_elements == 1 else None


def has_table(graph: Graph, op: Op | None) -> bool:
    """Return True when `op` is an int8 elementwise op whose output depends on one input
    byte alone (HARD_SWISH, LOGISTIC; ADD, SUB, MUL by a one-element constant), so that a
    lookup table replaces it."""
    if op is None or not all(_int8(graph, n) for n in (*op.inputs, op.outputs[0])):
        return False
    if op.kind in _UNARY:
        return len(op.inputs) == 1
    return op.kind in _BINARY and _scalar_operand(graph, op) is not None


def activation_table(graph: Graph, op: Op) -> np.ndarray:
    """Return the int8 outputs of `op` (see has_table) for each input byte 0..255, by the
    reference's own arithmetic."""
    if op.kind in _UNARY:
        values = _UNARY[op.kind](graph, op, [BY_BYTE.copy()])
    else:
        k = _scalar_operand(graph, op)
        constant = np.asarray(graph.tensor(op.inputs[k]).data).reshape(())
        args = [BY_BYTE.copy(), constant] if k == 1 else [constant, BY_BYTE.copy()]
        values = _BINARY[op.kind](graph, op, args)
    return np.asarray(values, np.int8).reshape(256)


def table_input(graph: Graph, op: Op) -> str:
    """Return the name of the input a table of `op` is indexed by (the non-constant one)."""
    return op.inputs[0] if op.kind in _UNARY else op.inputs[1 - _scalar_operand(graph, op)]


def add_table(graph: Graph, op: Op, pool, name: str) -> str:
    """Return the symbol of `op`'s lookup table (activation_table), added to `pool` (a
    ConstPool) under `name`."""
    return pool.add(name, activation_table(graph, op), np.int8,
                    f"{op.kind.value} of each input byte")
