"""Kernel instances of the generated backend: which specialised kernel of
templates/runtime/mnv2_gen_kernels.h runs an operator (or a channel slice of it), with
its compile-time constants, and the constant tables it reads.

An `Instance` is one specialised C function: its kind (a macro of
templates/gen/instances.c.j2) and the literal constants baked into it. Layers whose
constants are equal share one function; what differs between them (weights, tables)
is passed as pointers. Every number comes from mnv2gen.quant through layout.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnv2gen import quant
from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.generated import layout
from mnv2gen.ir import Graph, Op, OpKind

#: Largest k x k x in_c patch the conv kernel gathers on the stack (int16 values).
CONV_PATCH_MAX = 1022
#: Largest depthwise kernel the unrolled loops are written for.
DW_KERNEL_MAX = 7
#: Stack bytes a 1x1 kernel may use to widen 3 input pixels once (6 bytes per input
#: channel); wider layers widen in the inner loop instead.
WIDE_STACK_MAX = 2048


#: Up to this many input channels a 1x1 instance also fixes its output channel count at
#: compile time (the per-tile work is small, so constant strides pay); wider layers take
#: it at run time and share one instance between output widths.
FIXED_OUT_C_MAX_IN_C = 64


def widens_once(in_c: int) -> bool:
    """Return whether a 1x1 instance over `in_c` input channels widens its 3 pixels once
    on the stack (else it widens them in its inner loop, for every output channel pair)."""
    return 4 * 6 * -(-in_c // 4) <= WIDE_STACK_MAX


def _shape(in_c: int, out_c: int) -> tuple[tuple[str, int | str], ...]:
    """Return the shape constants of a 1x1 instance (OUT_C "out_c": the run-time argument),
    with WIDE's buffer words (0: none; also for at most 2 channel pairs, too few to repay
    widening the pixels once)."""
    words = 6 * -(-in_c // 4)
    wide = words if widens_once(in_c) and out_c > 4 else 0
    return (("IN_C", in_c), ("OUT_C", out_c if in_c <= FIXED_OUT_C_MAX_IN_C else "out_c"),
            ("OUT_ODD", out_c % 2), ("WIDE", wide))


@dataclass(frozen=True)
class Instance:
    """One specialised kernel function: template kind and named literal constants."""

    kind: str
    constants: tuple[tuple[str, int | str], ...]

    def value(self, name: str) -> int | str:
        """Return one constant by name."""
        return dict(self.constants)[name]


@dataclass(frozen=True)
class Call:
    """An instance plus what one call passes to it: const arrays (pool symbols) and, for
    1x1 kernels, the output channel count (a run-time argument, so that layers differing
    only in it share one instance)."""

    instance: Instance
    arrays: tuple[str, ...]
    out_c: int = 0


def _clamp(graph: Graph, op: Op) -> tuple[int, int]:
    y = graph.tensor(op.outputs[0])
    return quant.activation_range(op.attrs.activation, y.scale, y.zero_point)


def _requant_constants(rq: layout.Requant, output_offset: int, amin: int, amax: int):
    """Return the requantisation constants of an instance (the offset only matters to
    EXACT: FAST folds it into the table)."""
    return (("MODE", layout.MODE_MACRO[rq.mode]),
            ("OUT_OFF", output_offset if rq.mode == layout.EXACT else 0),
            ("AMIN", amin), ("AMAX", amax))


def _multipliers(graph: Graph, op: Op, channels: int):
    x, w, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    return quant.per_channel_multipliers(x.scale, w.quant.scale, y.scale, channels)


def _bias(graph: Graph, op: Op, channels: int) -> np.ndarray:
    if len(op.inputs) > 2 and op.inputs[2]:
        return np.asarray(graph.tensor(op.inputs[2]).data, np.int64)
    return np.zeros(channels, np.int64)


def _weights_oc_major(graph: Graph, op: Op) -> np.ndarray:
    """Return the filter as [out_c][kh][kw][in_c] (a depthwise with one input channel as
    the convolution it is)."""
    w = graph.tensor(op.inputs[1]).data
    return np.transpose(w, (3, 1, 2, 0)) if op.kind is OpKind.DEPTHWISE_CONV_2D else w


def _square(op: Op, kh: int, kw: int) -> bool:
    a = op.attrs
    return kh == kw and a.stride_h == a.stride_w and a.dilation_h == a.dilation_w == 1


def kind_of(graph: Graph, op: Op) -> str | None:
    """Return the specialised kernel kind that runs `op` ("pw", "dw", "conv", "add", "fc"),
    or None when it runs on the portable kernels."""
    if op.kind is OpKind.ADD:
        shapes = {graph.tensor(n).shape for n in (*op.inputs, op.outputs[0])}
        constant = any(graph.tensor(n).is_const for n in op.inputs)
        return "add" if len(shapes) == 1 and len(op.inputs) == 2 and not constant else None
    if op.kind is OpKind.FULLY_CONNECTED:
        w = graph.tensor(op.inputs[1])
        return "fc" if w.quant is not None and not any(w.quant.zero_point) else None
    if op.kind not in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D):
        return None
    x = graph.tensor(op.inputs[0])
    _, kh, kw, _ = graph.tensor(op.inputs[1]).shape
    if x.shape[0] != 1 or not _square(op, kh, kw):
        return None
    a = op.attrs
    if op.kind is OpKind.DEPTHWISE_CONV_2D and a.depth_multiplier == 1:
        return "dw" if kh <= DW_KERNEL_MAX else None
    in_c = x.shape[3]
    if op.kind is OpKind.DEPTHWISE_CONV_2D and in_c != 1:
        return None  # channel multiplier > 1 over several input channels
    if op.kind is OpKind.CONV_2D and kh == 1 and a.stride_h == 1 and a.padding == type(a.padding)():
        return "pw"
    return "conv" if kh * kw * in_c <= CONV_PATCH_MAX else None


def pointwise(graph: Graph, op: Op, pool: ConstPool, symbol: str,
              outputs: tuple[int, int] | None = None, inputs: tuple[int, int] | None = None,
              accumulate: bool = False) -> Call:
    """Return the call of a 1x1 convolution over output channels `outputs` (all if None).

    accumulate: the channel-group projection step, adding the int32 partial sums of input
    channels `inputs` to an accumulator (no bias, no requantisation; see requant_acc).
    """
    w = graph.tensor(op.inputs[1]).data
    out_c, in_c = w.shape[0], w.shape[3]
    o0, o1 = outputs or (0, out_c)
    i0, i1 = inputs or (0, in_c)
    w2 = w.reshape(out_c, in_c)
    shape = _shape(i1 - i0, o1 - o0)
    if accumulate:
        stream = pool.add(f"{symbol}_gw", layout.pointwise_stream(w2[o0:o1, i0:i1], None),
                          np.int32, f"1x1 weights {o1 - o0}x{i1 - i0}, channel pairs")
        constants = (*shape, ("MODE", "MNV2_RQ_ACC"), ("OUT_OFF", 0), ("AMIN", -128),
                     ("AMAX", 127))
        return Call(Instance("pw", constants), (stream,), o1 - o0)
    rq = _pointwise_requant(graph, op, w2)
    stream = pool.add(f"{symbol}_gw", layout.pointwise_stream(
        w2[o0:o1], layout.Requant(rq.mode, rq.table[o0:o1])), np.int32,
        f"1x1 weights {o1 - o0}x{in_c} and requantisation, channel pairs")
    y = graph.tensor(op.outputs[0])
    constants = (*shape, *_requant_constants(rq, y.zero_point, *_clamp(graph, op)))
    return Call(Instance("pw", constants), (stream,), o1 - o0)


def fully_connected(graph: Graph, op: Op, pool: ConstPool, symbol: str) -> Call:
    """Return the call of a FULLY_CONNECTED with symmetric weights: a 1x1 convolution whose
    pixels are the input rows (batches)."""
    w2 = graph.tensor(op.inputs[1]).data
    rq = _pointwise_requant(graph, op, w2)
    stream = pool.add(f"{symbol}_gw", layout.pointwise_stream(w2, rq), np.int32,
                      f"fully connected weights {w2.shape[0]}x{w2.shape[1]} and requantisation")
    y = graph.tensor(op.outputs[0])
    constants = (*_shape(w2.shape[1], w2.shape[0]),
                 *_requant_constants(rq, y.zero_point, *_clamp(graph, op)))
    return Call(Instance("pw", constants), (stream,), w2.shape[0])


def _pointwise_requant(graph: Graph, op: Op, w2: np.ndarray) -> layout.Requant:
    x, w, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    out_c = w2.shape[0]
    bias = _bias(graph, op, out_c)
    if op.kind is OpKind.FULLY_CONNECTED and not w.quant.per_channel:
        m, s = quant.fc_per_tensor_multiplier(x.scale, w.scale, y.scale)
        mult, shift = np.full(out_c, m, np.int64), np.full(out_c, s, np.int64)
    else:
        mult, shift = _multipliers(graph, op, out_c)
    bound = layout.acc_bound(bias, np.abs(w2.astype(np.int64)).sum(axis=1), -x.zero_point)
    return layout.requant(layout.folded_bias(bias, w2, -x.zero_point), mult, shift,
                          y.zero_point, bound)


def _slice(rq: layout.Requant, start: int, stop: int) -> layout.Requant:
    return layout.Requant(rq.mode, rq.table[start:stop])


def requant_acc(graph: Graph, op: Op, pool: ConstPool, symbol: str) -> Call:
    """Return the call that requantises a channel-grouped 1x1 projection's int32 sums."""
    w = graph.tensor(op.inputs[1]).data
    out_c, in_c = w.shape[0], w.shape[3]
    rq = _pointwise_requant(graph, op, w.reshape(out_c, in_c))
    table = pool.add(f"{symbol}_grq", rq.table, np.int32, "requantisation of the sums")
    y = graph.tensor(op.outputs[0])
    constants = (("OUT_C", out_c), *_requant_constants(rq, y.zero_point, *_clamp(graph, op)))
    return Call(Instance("requant_acc", constants), (table,))


def _windowed(graph: Graph, op: Op, w_oc: np.ndarray):
    """Return the requantisation table and shape constants shared by dw and conv."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    out_c = w_oc.shape[0]
    bias = _bias(graph, op, out_c)
    mult, shift = _multipliers(graph, op, out_c)
    bound = layout.acc_bound(bias, np.abs(w_oc.astype(np.int64)).reshape(out_c, -1).sum(1),
                             -x.zero_point)
    rq = layout.requant(bias, mult, shift, y.zero_point, bound)
    a = op.attrs
    shape = (("W_IN", x.shape[2]), ("W_OUT", y.shape[2]), ("K", w_oc.shape[1]),
             ("S", a.stride_w), ("PAD_LEFT", a.padding.left), ("IN_OFF", -x.zero_point))
    return rq, shape, _requant_constants(rq, y.zero_point, *_clamp(graph, op))


#: Shape constants a segment tile's kernel takes at run time instead (the tile's window).
_TILE_RUNTIME = ("W_IN", "W_OUT", "PAD_LEFT")


def _tile_shape(shape, tile: bool):
    return tuple(c for c in shape if c[0] not in _TILE_RUNTIME) if tile else shape


def depthwise(graph: Graph, op: Op, pool: ConstPool, symbol: str,
              channels: tuple[int, int] | None = None, tile: bool = False) -> Call:
    """Return the call of a depthwise convolution (multiplier 1) over channels `channels`
    (a channel group: its own input and output slices), all if None.

    tile: the kernel of a segment tile ("dw_tile"), one output row whose window width,
    output width and left padding are run-time arguments."""
    w = graph.tensor(op.inputs[1]).data  # [1, kh, kw, C]
    c0, c1 = channels or (0, w.shape[3])
    rq, shape, requant = _windowed(graph, op, np.transpose(w, (3, 1, 2, 0)))
    offset = -graph.tensor(op.inputs[0]).zero_point
    stream = pool.add(f"{symbol}_gw", layout.depthwise_stream(w[0, :, :, c0:c1],
                                                              _slice(rq, c0, c1), offset),
                      np.int32, f"depthwise channels {c0}..{c1 - 1}: weights, requantisation")
    return Call(Instance("dw_tile" if tile else "dw",
                         (("C", c1 - c0), *_tile_shape(shape, tile), *requant)), (stream,))


def conv(graph: Graph, op: Op, pool: ConstPool, symbol: str,
         outputs: tuple[int, int] | None = None, tile: bool = False) -> Call:
    """Return the call of a k x k convolution with a small patch (or a depthwise with one
    input channel) over output channels `outputs` (all if None); tile: as depthwise's
    ("conv_tile")."""
    w_oc = _weights_oc_major(graph, op)
    o0, o1 = outputs or (0, w_oc.shape[0])
    rq, shape, requant = _windowed(graph, op, w_oc)
    offset = -graph.tensor(op.inputs[0]).zero_point
    stream = pool.add(f"{symbol}_gw", layout.conv_stream(w_oc[o0:o1], _slice(rq, o0, o1), offset),
                      np.int32, f"convolution channels {o0}..{o1 - 1}: weights, requantisation")
    in_c = graph.tensor(op.inputs[0]).shape[3]
    patch = w_oc.shape[1] * w_oc.shape[2] * in_c
    constants = (("IN_C", in_c), ("OUT_C", o1 - o0), *_tile_shape(shape, tile),
                 ("PATCH", patch + patch % 2), *requant)
    return Call(Instance("conv_tile" if tile else "conv", constants), (stream,))


def add(graph: Graph, op: Op, first: str, pool: ConstPool, symbol: str) -> Call:
    """Return the call of an elementwise ADD with `first` as input 1."""
    second = op.inputs[1] if op.inputs[0] == first else op.inputs[0]
    t1, t2, y = graph.tensor(first), graph.tensor(second), graph.tensor(op.outputs[0])
    p = quant.add_params(t1.scale, t2.scale, y.scale)
    table1 = layout.add_input_table(t1.zero_point, p.input1_multiplier, p.input1_shift,
                                    p.left_shift)
    table2 = layout.add_input_table(t2.zero_point, p.input2_multiplier, p.input2_shift,
                                    p.left_shift)
    bound = np.array([int(np.abs(table1.astype(np.int64)).max())
                      + int(np.abs(table2.astype(np.int64)).max())])
    rq = layout.requant([0], [p.output_multiplier], [p.output_shift], y.zero_point, bound)
    symbols = (pool.add(f"{symbol}_gt1", table1, np.int32, "ADD input 1, rescaled per value"),
               pool.add(f"{symbol}_gt2", table2, np.int32, "ADD input 2, rescaled per value"),
               pool.add(f"{symbol}_gq", rq.table[0, 1:], np.int32,
                        "ADD output multiplier, round, shift"))
    return Call(Instance("add", _requant_constants(rq, y.zero_point, *_clamp(graph, op))),
                symbols)
