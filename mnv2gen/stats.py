"""Per-operator cost figures: multiply-accumulates and constant bytes."""

from __future__ import annotations

from mnv2gen.ir import Graph, Op, OpKind


def op_macs(graph: Graph, op: Op) -> int:
    """Return the multiply-accumulate count of one operator (0 for data movement)."""
    out = graph.tensor(op.outputs[0])
    if op.kind is OpKind.CONV_2D:
        _, kh, kw, in_c = graph.tensor(op.inputs[1]).shape
        return out.num_elements * kh * kw * in_c
    if op.kind is OpKind.DEPTHWISE_CONV_2D:
        _, kh, kw, _ = graph.tensor(op.inputs[1]).shape
        return out.num_elements * kh * kw
    if op.kind is OpKind.FULLY_CONNECTED:
        return out.num_elements * graph.tensor(op.inputs[1]).shape[1]
    return 0


def graph_macs(graph: Graph) -> int:
    """Return the multiply-accumulates of one inference of `graph`."""
    return sum(op_macs(graph, op) for op in graph.ops)


def op_const_bytes(graph: Graph, op: Op) -> int:
    """Return the bytes of the constant tensors (weights, biases) an operator reads."""
    return sum(graph.tensor(n).size_bytes for n in op.inputs if graph.tensor(n).is_const)
