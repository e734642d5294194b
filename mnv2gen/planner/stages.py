"""Units seen as row-streaming stages: which input rows and columns each output row needs.

A depth-first segment runs a chain of units one output row at a time. For that every
unit is described by its *window geometry* along rows and along columns: output row r
of a windowed op (kernel k, stride s, dilation d, padding p before) reads input rows
[r*s - p, r*s - p + d*(k-1)] clipped to the input, and the same along columns. A stage
is one of
- "fused":    producer -> depthwise -> projection [-> shortcut add]; the wide tensor E
              (producer output) exists only as rows kept for later output rows;
- "window":   depthwise -> projection of a fused unit without producer (MobileNetV1);
              the depthwise reads the unit input directly;
- "conv":     a CONV_2D or DEPTHWISE_CONV_2D layer on its own;
- "quantize": an elementwise requantisation (uint8/int8 -> int8);
- "pool":     a global MEAN over H and W or a global AVERAGE_POOL_2D, accumulated row by
              row in int32 and finished after the last row (only at the end of a segment).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from mnv2gen.ir import DType, Graph, Op, OpKind
from mnv2gen.planner.schedule import FusedUnit, LayerUnit, Unit

STAGE_KINDS = ("fused", "window", "conv", "quantize", "pool")


@dataclass(frozen=True)
class Axis:
    """A windowed op along one axis: input extent, kernel, stride, dilation, padding."""

    size: int
    kernel: int
    stride: int
    dilation: int
    pad: int
    out: int

    def span(self, first: int, stop: int) -> tuple[int, int, int]:
        """Return (lo, hi, pad_before): the input positions [lo, hi) that outputs
        [first, stop) read, clipped to the input, and the padding before lo."""
        lo = first * self.stride - self.pad
        hi = (stop - 1) * self.stride - self.pad + (self.kernel - 1) * self.dilation + 1
        start, end = max(lo, 0), min(hi, self.size)
        return start, max(end, start), start - lo


IDENTITY = Axis(0, 1, 1, 1, 0, 0)


def _axes(graph: Graph, op: Op) -> tuple[Axis, Axis]:
    """Return the (rows, columns) geometry of a conv or depthwise op."""
    a = op.attrs
    _, kh, kw, _ = graph.tensor(op.inputs[1]).shape
    _, h, w, _ = graph.tensor(op.inputs[0]).shape
    _, ho, wo, _ = graph.tensor(op.outputs[0]).shape
    return (Axis(h, kh, a.stride_h, a.dilation_h, a.padding.top, ho),
            Axis(w, kw, a.stride_w, a.dilation_w, a.padding.left, wo))


def _unit_axes(h: int, w: int) -> tuple[Axis, Axis]:
    return Axis(h, 1, 1, 1, 0, h), Axis(w, 1, 1, 1, 0, w)


@dataclass(frozen=True, eq=False)
class Stage:
    """A unit as a stage of a segment (see the module docstring for the kinds).

    Stages compare and hash by identity: the planner caches per-stage geometry.

    `rows`/`cols` are the geometry from the stage's windowed tensor E to its output (for
    "window"/"conv"/"quantize"/"pool" E is the stage input itself); `producer_rows`/
    `producer_cols` the producer's geometry from the input to E ("fused" only).
    """

    unit: Unit
    kind: str
    input: str
    output: str
    producer: Op | None
    window_op: Op | None
    project: Op | None
    add: Op | None
    rows: Axis
    cols: Axis
    producer_rows: Axis | None
    producer_cols: Axis | None
    in_shape: tuple[int, int, int]     # H, W, C of the stage input
    e_shape: tuple[int, int, int]      # H, W, C of E (the window's tensor)
    out_shape: tuple[int, int, int]    # H, W, C of the output rows (pool: its input rows)
    dw_channels: int                   # channels the window op writes ("fused"/"window")

    @property
    def name(self) -> str:
        """Return the unit's name."""
        return self.unit.name

    @property
    def steps(self) -> int:
        """Return the number of row steps: output rows, or input rows for a pool."""
        return self.out_shape[0]

    @property
    def ops(self) -> tuple[Op, ...]:
        """Return the operators the stage runs."""
        return self.unit.ops if isinstance(self.unit, FusedUnit) else (self.unit.op,)


def _hwc(graph: Graph, name: str) -> tuple[int, int, int] | None:
    shape = graph.tensor(name).shape
    if len(shape) != 4 or shape[0] != 1:
        return None
    return shape[1], shape[2], shape[3]


def _global_pool(graph: Graph, op: Op) -> bool:
    x = graph.tensor(op.inputs[0])
    if len(x.shape) != 4 or x.shape[0] != 1 or x.dtype is not DType.INT8:
        return False
    if op.kind is OpKind.MEAN:
        return tuple(sorted(set(op.attrs.axes))) == (1, 2)
    if op.kind is OpKind.AVERAGE_POOL_2D:
        a = op.attrs
        return ((a.filter_h, a.filter_w) == tuple(x.shape[1:3])
                and a.padding == type(a.padding)()
                and tuple(graph.tensor(op.outputs[0]).shape[1:3]) == (1, 1)
                and x.zero_point == graph.tensor(op.outputs[0]).zero_point)
    return False


def stage_of(graph: Graph, unit: Unit) -> Stage | None:
    """Return `unit` as a segment stage, or None when it cannot stream row by row."""
    if isinstance(unit, FusedUnit):
        in_shape, out_shape = _hwc(graph, unit.input), _hwc(graph, unit.output)
        e_shape = _hwc(graph, unit.expanded)
        if None in (in_shape, out_shape, e_shape):
            return None
        rows, cols = _axes(graph, unit.depthwise)
        dw_c = graph.tensor(unit.depthwise.outputs[0]).shape[3]
        if unit.producer is None:
            return Stage(unit, "window", unit.input, unit.output, None, unit.depthwise,
                         unit.project, unit.add, rows, cols, None, None, in_shape, e_shape,
                         out_shape, dw_c)
        p_rows, p_cols = _axes(graph, unit.producer)
        return Stage(unit, "fused", unit.input, unit.output, unit.producer, unit.depthwise,
                     unit.project, unit.add, rows, cols, p_rows, p_cols, in_shape, e_shape,
                     out_shape, dw_c)
    assert isinstance(unit, LayerUnit)
    op = unit.op
    if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D):
        in_shape, out_shape = _hwc(graph, op.inputs[0]), _hwc(graph, op.outputs[0])
        if None in (in_shape, out_shape):
            return None
        rows, cols = _axes(graph, op)
        return Stage(unit, "conv", op.inputs[0], op.outputs[0], None, op, None, None, rows,
                     cols, None, None, in_shape, in_shape, out_shape, out_shape[2])
    if op.kind is OpKind.QUANTIZE:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        in_shape = _hwc(graph, op.inputs[0])
        if (in_shape is None or x.dtype not in (DType.UINT8, DType.INT8)
                or y.dtype is not DType.INT8 or x.shape != y.shape):
            return None
        rows, cols = _unit_axes(in_shape[0], in_shape[1])
        return Stage(unit, "quantize", op.inputs[0], op.outputs[0], None, None, None, None,
                     rows, cols, None, None, in_shape, in_shape, in_shape, in_shape[2])
    if op.kind in (OpKind.MEAN, OpKind.AVERAGE_POOL_2D) and _global_pool(graph, op):
        in_shape = _hwc(graph, op.inputs[0])
        rows, cols = _unit_axes(in_shape[0], in_shape[1])
        return Stage(unit, "pool", op.inputs[0], op.outputs[0], None, None, None, None,
                     rows, cols, None, None, in_shape, in_shape, in_shape, in_shape[2])
    return None


def chains(graph: Graph, units: tuple[Unit, ...]) -> list[Stage | None]:
    """Return per unit its Stage, or None when it cannot join a segment (the same Stage
    objects for the same graph and units: the planner caches per-stage geometry)."""
    return list(_chains(graph, tuple(units)))


@lru_cache(maxsize=64)
def _chains(graph: Graph, units: tuple[Unit, ...]) -> tuple[Stage | None, ...]:
    return tuple(stage_of(graph, u) for u in units)


def links(graph: Graph, first: Stage, second: Stage) -> bool:
    """Return True when `second` reads exactly what `first` writes and nothing else does,
    so the tensor between them can live as a ring of rows."""
    name = first.output
    if first.kind == "pool" or second.input != name or name in graph.outputs:
        return False
    readers = graph.consumers(name)
    return bool(readers) and all(op in second.ops for op in readers)


def window_rows(stage: Stage, r: int) -> tuple[int, int, int]:
    """Return (lo, hi, pad_top): the rows of E output row r of the stage reads."""
    if stage.kind == "pool":
        return r, r + 1, 0
    return stage.rows.span(r, r + 1)


def first_reader(stage: Stage, e: int) -> int:
    """Return the first output row whose window contains row e of E."""
    ax = stage.rows
    # smallest r with r*s - p + d*(k-1) >= e
    need = e + ax.pad - ax.dilation * (ax.kernel - 1)
    return max(0, -(-need // ax.stride))


def last_reader(stage: Stage, e: int) -> int:
    """Return the last output row whose window contains row e of E."""
    ax = stage.rows
    return min(ax.out - 1, (e + ax.pad) // ax.stride)
