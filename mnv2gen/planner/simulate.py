"""Execute a plan inside ONE flat bytearray of `peak_bytes`, at the planned offsets.

Every tensor, window, depthwise band, shortcut band and int32 accumulator lives at its
planned arena offset; units run in plan order, fused units band by band and group by
group exactly as the generated C does, segments entry by entry and tile by tile
(mnv2gen.planner.segment_sim), and every read copies what is in the arena at
that moment. A wrong offset or an unsafe in-place write therefore changes the outputs,
which `simulate` returns for comparison with the reference.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mnv2gen import quant
from mnv2gen.ir import Graph, Op, Padding, QuantParams, Tensor
from mnv2gen.planner.plan import Plan, SegmentPlan
from mnv2gen.planner.schedule import FusedUnit, LayerUnit
from mnv2gen.planner.segment_lower import describe_segment
from mnv2gen.planner.segment_sim import SegmentRunner, ring_write
from mnv2gen.reference import KERNELS, check_inputs


class Arena:
    """Typed views into one bytearray."""

    def __init__(self, size: int) -> None:
        self.raw = bytearray(size)

    def view(self, offset: int, dtype, shape) -> np.ndarray:
        """Return a writable NumPy view of `shape` at byte `offset`."""
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self.raw, dtype=dtype, count=count, offset=offset).reshape(shape)


def _tensor_view(arena: Arena, plan: Plan, name: str) -> np.ndarray:
    t = plan.graph.tensor(name)
    return arena.view(plan.offset(name), t.dtype.np, t.shape)


def _sub_call(graph: Graph, op: Op, x: np.ndarray, out_rows: int, pad_top: int,
              channels: tuple[int, int] | None = None):
    """Run `op` (conv or depthwise) on a slab of input rows; return its output rows.

    The slab starts `pad_top` padding rows below the top of the op's window; bottom
    padding is whatever the op needs to produce `out_rows` rows (zero-point padding at the
    image border). `channels` restricts the output channels (weights, bias, scales), like
    the generated code's channel groups; `x` is passed as given (for a depthwise it
    already holds just the group's channels).
    """
    x_t, w_t, b_t, y_t = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    a = op.attrs
    w, b = w_t.data, b_t.data
    w_scales = w_t.quant.scale
    if channels is not None:
        c0, c1 = channels
        axis = w_t.quant.axis
        w = np.take(w, range(c0, c1), axis=axis)
        b = b[c0:c1]
        w_scales = w_scales[c0:c1]
    kh = w.shape[1]
    need = (out_rows - 1) * a.stride_h + (kh - 1) * a.dilation_h + 1
    pad_bottom = max(0, need - pad_top - x.shape[1])
    padding = Padding(pad_top, pad_bottom, a.padding.left, a.padding.right)
    out_shape = (1, out_rows, y_t.shape[2], w.shape[0] if w_t.quant.axis == 0 else w.shape[3])
    sub_w = Tensor(w_t.name, w.shape, w_t.dtype, QuantParams(w_scales, (0,) * len(w_scales),
                                                              w_t.quant.axis), w)
    sub_b = Tensor(b_t.name, b.shape, b_t.dtype, b_t.quant, b)
    sub_x = replace(x_t, shape=x.shape)
    sub_y = replace(y_t, shape=out_shape)
    sub = Graph("sub", {t.name: t for t in (sub_x, sub_w, sub_b, sub_y)}, (), (x_t.name,),
                (y_t.name,))
    sub_op = replace(op, attrs=replace(a, padding=padding))
    return KERNELS[op.kind](sub, sub_op, [x, w, b])


def _project_partial(graph: Graph, op: Op, x: np.ndarray, channels: tuple[int, int]):
    """Return the int64 partial projection sums of input channels [c0, c1) (no bias)."""
    x_t, w_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    c0, c1 = channels
    w = w_t.data[:, 0, 0, c0:c1].astype(np.float64)
    rows = x.reshape(-1, c1 - c0).astype(np.float64) - x_t.zero_point
    return (rows @ w.T).astype(np.int64)


def _requantize_projection(graph: Graph, op: Op, acc: np.ndarray) -> np.ndarray:
    """Return the int8 projection output of int32 sums (bias added here)."""
    x_t, w_t, b_t, y_t = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    mult, shift = quant.per_channel_multipliers(x_t.scale, w_t.quant.scale, y_t.scale,
                                                w_t.shape[0])
    lo, hi = quant.activation_range(op.attrs.activation, y_t.scale, y_t.zero_point)
    total = quant.wrap32(acc.astype(np.int64) + b_t.data.astype(np.int64))
    out = quant.multiply_by_quantized_multiplier(total, mult, shift)
    return np.clip(out + y_t.zero_point, lo, hi).astype(np.int8)


def _run_layer(arena: Arena, plan: Plan, unit: LayerUnit) -> None:
    graph, op = plan.graph, unit.op
    if unit.alias_of is not None and op.kind.value == "RESHAPE":
        return  # a view: same bytes, nothing to do
    args = [graph.tensor(n).data if graph.tensor(n).is_const
            else _tensor_view(arena, plan, n).copy() for n in op.inputs]
    result = KERNELS[op.kind](graph, op, args)
    _tensor_view(arena, plan, unit.output)[...] = result


def _run_fused(arena: Arena, plan: Plan, step: int, unit: FusedUnit) -> None:
    graph, choice = plan.graph, plan.units[step].choice
    dw, proj = unit.depthwise, unit.project
    _, _, width_e, _ = graph.tensor(unit.expanded).shape
    _, _, width_o, out_c = graph.tensor(proj.outputs[0]).shape
    x_view = _tensor_view(arena, plan, unit.input)
    y_view = _tensor_view(arena, plan, unit.output)

    def scratch(kind: str, dtype, shape):
        return arena.view(plan.offset(f"{unit.name}.{kind}"), dtype, shape)

    rows_cap = max(b.window_rows[1] - b.window_rows[0] for b in choice.bands)
    previous = None
    for band in choice.bands:
        y0, y1 = band.out_rows
        n_out = y1 - y0
        w0, w1 = band.window_rows
        n_win = w1 - w0
        acc = None
        if len(choice.groups) > 1:
            acc = scratch("acc", np.int32, (1, n_out, width_o, out_c))
            acc[...] = 0
        for _g, (c0, c1) in enumerate(choice.groups):
            width_g = c1 - c0
            if unit.producer is not None:
                window = scratch("window", np.int8, (1, rows_cap, width_e, width_g))
                if band.keep_rows:
                    src = w0 - previous[0]
                    window[:, :band.keep_rows] = window[:, src:src + band.keep_rows].copy()
                n0, n1 = band.new_rows
                if n1 > n0:
                    p0, p1 = band.producer_rows
                    slab = x_view[:, p0:p1].copy()
                    window[:, band.keep_rows:band.keep_rows + n1 - n0] = _sub_call(
                        graph, unit.producer, slab, n1 - n0, band.producer_pad_top,
                        None if len(choice.groups) == 1 else (c0, c1))
                dw_in = window[:, :n_win].copy()
            else:
                dw_in = x_view[:, w0:w1].copy()
            dw_out = scratch("dw_out", np.int8,
                             (1, n_out, width_o, width_g * dw.attrs.depth_multiplier))
            dw_out[...] = _sub_call(graph, dw, dw_in, n_out, band.window_pad_top,
                                    None if len(choice.groups) == 1 else (c0, c1))
            if acc is not None:
                partial = _project_partial(graph, proj, dw_out.copy(), (c0, c1))
                acc[...] = quant.wrap32(acc.reshape(-1, out_c).astype(np.int64) + partial
                                        ).reshape(acc.shape)
        if acc is not None:
            projected = _requantize_projection(graph, proj, acc.copy())
        else:
            projected = _sub_call(graph, proj, dw_out.copy(), n_out, 0)
        if unit.add is not None:
            temp = scratch("shortcut", np.int8, (1, n_out, width_o, out_c))
            temp[...] = projected
            add = unit.add
            a_in = [x_view[:, y0:y1].copy() if n == unit.input else temp.copy()
                    for n in add.inputs]
            sub = _band_graph(graph, add, n_out)
            y_view[:, y0:y1] = KERNELS[add.kind](sub, add, a_in)
        else:
            y_view[:, y0:y1] = projected
        previous = band.window_rows


def _band_graph(graph: Graph, op: Op, rows: int) -> Graph:
    """Return a graph holding `op`'s tensors reshaped to `rows` rows (for ADD on a band)."""
    tensors = {}
    for n in (*op.inputs, op.outputs[0]):
        t = graph.tensor(n)
        tensors[n] = replace(t, shape=(t.shape[0], rows, *t.shape[2:]))
    return Graph("band", tensors, (), (), ())


def _feed_and_run(arena: Arena, plan: Plan, runner: SegmentRunner, tables, image) -> None:
    """Feed a streamed input row by row into the first segment's input ring, running
    every entry as soon as the rows it needs are there (as mnv2_feed_rows does)."""
    ring = tables.stages[0].input
    rows = image.reshape(image.shape[1], -1)
    entry, total = 0, len(tables.entries)
    for k in range(rows.shape[0]):
        ring_write(arena.raw, ring, k * ring.width, rows[k].view(np.int8))
        stop = entry
        while stop < total and tables.rows_needed[stop] <= k + 1:
            stop += 1
        runner.run(entry, stop)
        entry = stop
    runner.run(entry, total)


def simulate(plan: Plan, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run `plan` on `inputs` in one arena of `plan.peak_bytes`; return the graph outputs.

    A streamed input is fed row by row into the first segment's input ring."""
    graph = plan.graph
    arena = Arena(plan.peak_bytes)
    given = check_inputs(graph, inputs)
    if plan.input_mode != "streamed":
        for name, array in given.items():
            _tensor_view(arena, plan, name)[...] = array
    for step, unit_plan in enumerate(plan.units):
        if isinstance(unit_plan, SegmentPlan):
            tables = describe_segment(plan, unit_plan)
            runner = SegmentRunner(graph, arena.raw, tables, unit_plan.shape.stages)
            if tables.streamed:
                _feed_and_run(arena, plan, runner, tables, given[graph.inputs[0]])
            else:
                runner.run(0, len(tables.entries))
            continue
        unit = unit_plan.unit
        if isinstance(unit, FusedUnit):
            _run_fused(arena, plan, step, unit)
        else:
            _run_layer(arena, plan, unit)
    return [graph.tensor(n).data.copy() if graph.tensor(n).is_const
            else _tensor_view(arena, plan, n).copy() for n in graph.outputs]
