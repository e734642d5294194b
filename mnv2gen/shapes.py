"""Output-shape rules per operator kind, used by Graph.verify() and by builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

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


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """Return the NumPy broadcast of two shapes, or None when they do not broadcast."""
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b, strict=True)):
        return None
    return tuple(max(x, y) for x, y in zip(a, b, strict=True))


def _binary(graph: Graph, op: Op) -> tuple[int, ...]:
    a, b = (graph.tensor(n).shape for n in op.inputs)
    shape = broadcast_shape(a, b)
    if shape is None:
        raise IRError(f"{op.describe()}: shapes {a} and {b} do not broadcast")
    return shape


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


def _resize(graph: Graph, op: Op) -> tuple[int, ...]:
    n, _, _, c = graph.tensor(op.inputs[0]).shape
    return (n, op.attrs.height, op.attrs.width, c)


def _concatenation(graph: Graph, op: Op) -> tuple[int, ...]:
    shapes = [graph.tensor(n).shape for n in op.inputs]
    axis = op.attrs.axis
    first = shapes[0]
    for s in shapes[1:]:
        if len(s) != len(first) or any(
                d != e for i, (d, e) in enumerate(zip(s, first, strict=True)) if i != axis):
            raise IRError(f"{op.describe()}: cannot concatenate shapes {first} and {s} "
                          f"along axis {axis}")
    return tuple(sum(s[axis] for s in shapes) if i == axis else d for i, d in enumerate(first))


def _drop_axis(graph: Graph, op: Op) -> tuple[int, ...]:
    shape = graph.tensor(op.inputs[0]).shape
    return tuple(d for i, d in enumerate(shape) if i != op.attrs.axis)


def _shape(graph: Graph, op: Op) -> tuple[int, ...]:
    return (len(graph.tensor(op.inputs[0]).shape),)


def _strided_slice(graph: Graph, op: Op) -> tuple[int, ...]:
    from mnv2gen.reference.shape_ops import slice_index  # local: reference imports shapes

    shape = graph.tensor(op.inputs[0]).shape
    view = np.broadcast_to(np.zeros((), dtype=bool), shape)  # no memory, any size
    return view[slice_index(op.attrs, len(shape))].shape


def _pack(graph: Graph, op: Op) -> tuple[int, ...]:
    shapes = {graph.tensor(n).shape for n in op.inputs}
    if len(shapes) != 1:
        raise IRError(f"{op.describe()}: PACK of differing shapes {sorted(shapes)}")
    shape = shapes.pop()
    return shape[:op.attrs.axis] + (len(op.inputs),) + shape[op.attrs.axis:]


def _gather(graph: Graph, op: Op) -> tuple[int, ...]:
    params, indices = (graph.tensor(n).shape for n in op.inputs)
    axis = op.attrs.axis
    return params[:axis] + indices[op.attrs.batch_dims:] + params[axis + 1:]


def _tile(graph: Graph, op: Op) -> tuple[int, ...]:
    x, multiples = (graph.tensor(n) for n in op.inputs)
    if not multiples.is_const:  # computed in the graph: fold_constants checks it later
        return graph.tensor(op.outputs[0]).shape
    return tuple(int(d) * int(m) for d, m in zip(x.shape, multiples.data.reshape(-1),
                                                  strict=True))


_ANY = range(1, 1 << 16)

# kind -> (allowed numbers of inputs, output-shape rule)
SHAPE_RULES: dict[OpKind, tuple[range, Callable[[Graph, Op], tuple[int, ...]]]] = {
    OpKind.CONV_2D: (range(3, 4), _conv),
    OpKind.DEPTHWISE_CONV_2D: (range(3, 4), _conv),
    OpKind.ADD: (range(2, 3), _binary),
    OpKind.AVERAGE_POOL_2D: (range(1, 2), _pool),
    OpKind.MEAN: (range(1, 2), _mean),
    OpKind.FULLY_CONNECTED: (range(3, 4), _fully_connected),
    OpKind.RESHAPE: (range(1, 3), _reshape),
    OpKind.SOFTMAX: (range(1, 2), _same),
    OpKind.PAD: (range(1, 2), _pad),
    OpKind.TRANSPOSE: (range(1, 2), _transpose),
    OpKind.QUANTIZE: (range(1, 2), _same),
    OpKind.DEQUANTIZE: (range(1, 2), _same),
    OpKind.MUL: (range(2, 3), _binary),
    OpKind.SUB: (range(2, 3), _binary),
    OpKind.HARD_SWISH: (range(1, 2), _same),
    OpKind.LOGISTIC: (range(1, 2), _same),
    OpKind.RESIZE_BILINEAR: (range(1, 2), _resize),
    OpKind.RESIZE_NEAREST_NEIGHBOR: (range(1, 2), _resize),
    OpKind.CONCATENATION: (_ANY, _concatenation),
    OpKind.MAX_POOL_2D: (range(1, 2), _pool),
    OpKind.ARG_MAX: (range(1, 2), _drop_axis),
    OpKind.SHAPE: (range(1, 2), _shape),
    OpKind.STRIDED_SLICE: (range(1, 2), _strided_slice),
    OpKind.PACK: (_ANY, _pack),
    OpKind.GATHER: (range(2, 3), _gather),
    OpKind.TILE: (range(2, 3), _tile),
}

# kinds whose every input and output is a quantised int8 tensor (ARG_MAX: input only)
INT8_BODY = {OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.ADD, OpKind.AVERAGE_POOL_2D,
             OpKind.MEAN, OpKind.FULLY_CONNECTED, OpKind.SOFTMAX, OpKind.MUL, OpKind.SUB,
             OpKind.HARD_SWISH, OpKind.LOGISTIC, OpKind.RESIZE_BILINEAR,
             OpKind.RESIZE_NEAREST_NEIGHBOR, OpKind.CONCATENATION, OpKind.MAX_POOL_2D}
_WEIGHTED = {OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED}
# kinds that may also compute in float32 after a model's last DEQUANTIZE (all operands float)
FLOAT_TAIL = {OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.CONCATENATION}


def is_float_tail(graph: Graph, op: Op) -> bool:
    """Return True for a FLOAT_TAIL operator whose every operand is float32."""
    return op.kind in FLOAT_TAIL and all(
        graph.tensor(n).dtype is DType.FLOAT32 for n in (*op.inputs, op.outputs[0]))


def _int8_operands(graph: Graph, op: Op) -> tuple[str, ...]:
    if is_float_tail(graph, op):
        return ()
    if op.kind in _WEIGHTED:
        return (op.inputs[0], op.outputs[0])
    if op.kind is OpKind.ARG_MAX:
        return (op.inputs[0],)
    return (*op.inputs, op.outputs[0])


def check_op(graph: Graph, op: Op) -> None:
    """Raise IRError if `op`'s operand count, output shape or int8 typing is wrong."""
    n_inputs, rule = SHAPE_RULES[op.kind]
    if len(op.inputs) not in n_inputs or len(op.outputs) != 1:
        raise IRError(f"{op.describe()}: expected {n_inputs.start}"
                      f"{'' if len(n_inputs) == 1 else '+'} inputs and 1 output, "
                      f"got {len(op.inputs)} and {len(op.outputs)}")
    out = graph.tensor(op.outputs[0])
    expected = rule(graph, op)
    if tuple(expected) != tuple(out.shape):
        raise IRError(f"{op.describe()}: output {quoted(out.name)} has shape {out.shape}, "
                      f"expected {tuple(expected)}")
    if op.kind in INT8_BODY or op.kind is OpKind.ARG_MAX:
        for name in _int8_operands(graph, op):
            t = graph.tensor(name)
            if t.dtype is not DType.INT8 or t.quant is None:
                raise IRError(f"{op.describe()}: tensor {quoted(name)} must be quantised int8")
