"""Output-shape rules per operator kind, used by Graph.verify() and by builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mnv2gen.errors import IRError, quoted
from mnv2gen.ir import DType, OpKind

if TYPE_CHECKING:
    from mnv2gen.ir import Graph, Op


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int = 1) -> int:
    """Return the output length of a sliding window along one axis."""
    effective = (kernel - 1) * dilation + 1
    return (size + pad_before + pad_after - effective) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Return TFLite's (before, after) padding for SAME along one axis."""
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _conv(graph: Graph, op: Op) -> tuple[int, ...]:
    x, w = graph.tensor(op.inputs[0]).shape, graph.tensor(op.inputs[1]).shape
    a = op.attrs
    n, h, wd, c = x
    if op.kind is OpKind.CONV_2D:
        out_c, kh, kw, in_c = w
        if in_c != c:
            raise IRError(f"{op.describe()}: filter has {in_c} input channels, input has {c}")
    else:
        _, kh, kw, out_c = w
        if out_c != c * a.depth_multiplier:
            raise IRError(f"{op.describe()}: filter has {out_c} channels, expected "
                          f"{c} x depth multiplier {a.depth_multiplier}")
    p = a.padding
    return (n, conv_output_size(h, kh, a.stride_h, p.top, p.bottom, a.dilation_h),
            conv_output_size(wd, kw, a.stride_w, p.left, p.right, a.dilation_w), out_c)


def _pool(graph: Graph, op: Op) -> tuple[int, ...]:
    n, h, w, c = graph.tensor(op.inputs[0]).shape
    a, p = op.attrs, op.attrs.padding
    return (n, conv_output_size(h, a.filter_h, a.stride_h, p.top, p.bottom),
            conv_output_size(w, a.filter_w, a.stride_w, p.left, p.right), c)


def _add(graph: Graph, op: Op) -> tuple[int, ...]:
    a, b = (graph.tensor(n).shape for n in op.inputs)
    if a != b:
        raise IRError(f"{op.describe()}: ADD of shapes {a} and {b} (broadcast unsupported)")
    return a


def _fully_connected(graph: Graph, op: Op) -> tuple[int, ...]:
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out_f, in_f = w.shape
    if x.num_elements % in_f:
        raise IRError(f"{op.describe()}: {x.num_elements} inputs is not a multiple of {in_f}")
    return (x.num_elements // in_f, out_f)


def _mean(graph: Graph, op: Op) -> tuple[int, ...]:
    shape = graph.tensor(op.inputs[0]).shape
    axes = op.attrs.axes
    if op.attrs.keep_dims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reshape(graph: Graph, op: Op) -> tuple[int, ...]:
    out = graph.tensor(op.outputs[0])
    if out.num_elements != graph.tensor(op.inputs[0]).num_elements:
        raise IRError(f"{op.describe()}: RESHAPE changes the element count")
    return out.shape


def _pad(graph: Graph, op: Op) -> tuple[int, ...]:
    shape = graph.tensor(op.inputs[0]).shape
    return tuple(d + b + a for d, (b, a) in zip(shape, op.attrs.paddings, strict=True))


def _transpose(graph: Graph, op: Op) -> tuple[int, ...]:
    shape = graph.tensor(op.inputs[0]).shape
    return tuple(shape[p] for p in op.attrs.perm)


def _same(graph: Graph, op: Op) -> tuple[int, ...]:
    return graph.tensor(op.inputs[0]).shape


# kind -> (number of inputs, output-shape rule)
SHAPE_RULES: dict[OpKind, tuple[int, Callable[[Graph, Op], tuple[int, ...]]]] = {
    OpKind.CONV_2D: (3, _conv),
    OpKind.DEPTHWISE_CONV_2D: (3, _conv),
    OpKind.ADD: (2, _add),
    OpKind.AVERAGE_POOL_2D: (1, _pool),
    OpKind.MEAN: (1, _mean),
    OpKind.FULLY_CONNECTED: (3, _fully_connected),
    OpKind.RESHAPE: (1, _reshape),
    OpKind.SOFTMAX: (1, _same),
    OpKind.PAD: (1, _pad),
    OpKind.TRANSPOSE: (1, _transpose),
    OpKind.QUANTIZE: (1, _same),
    OpKind.DEQUANTIZE: (1, _same),
}

_INT8_BODY = {OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.ADD, OpKind.AVERAGE_POOL_2D,
              OpKind.MEAN, OpKind.FULLY_CONNECTED, OpKind.SOFTMAX}


def check_op(graph: Graph, op: Op) -> None:
    """Raise IRError if `op`'s operand count, output shape or int8 typing is wrong."""
    n_inputs, rule = SHAPE_RULES[op.kind]
    if len(op.inputs) != n_inputs or len(op.outputs) != 1:
        raise IRError(f"{op.describe()}: expected {n_inputs} inputs and 1 output, "
                      f"got {len(op.inputs)} and {len(op.outputs)}")
    out = graph.tensor(op.outputs[0])
    expected = rule(graph, op)
    if tuple(expected) != tuple(out.shape):
        raise IRError(f"{op.describe()}: output {quoted(out.name)} has shape {out.shape}, "
                      f"expected {tuple(expected)}")
    if op.kind in _INT8_BODY:
        for name in (op.inputs[0], *op.inputs[1:2], op.outputs[0]):
            t = graph.tensor(name)
            if t.dtype is not DType.INT8 or t.quant is None:
                raise IRError(f"{op.describe()}: tensor {quoted(name)} must be quantised int8")
