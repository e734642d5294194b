"""Lower a depth-first segment step to the numbers of its C tables (mnv2_segment.h).

The tables are mnv2gen.planner.segment_lower's, the very numbers the simulator runs;
this module adds the operators' parameters and constant arrays (weights, requantisation
tables) and names every symbol mnv2_<segment>_s<stage>_<part> or static.
"""

from __future__ import annotations

from mnv2gen import quant
from mnv2gen.codegen.consts import ConstPool
from mnv2gen.ir import DType, OpKind
from mnv2gen.planner.segment_lower import KIND_CODES, Ring, describe_segment
from mnv2gen.planner.steps import SegmentPlan

_NO_CONV = None


def _ring(ring: Ring | None) -> list[int]:
    return ring.fields() if ring is not None else [0, 0, 0, 0]


def _op_kind(op) -> int:
    if op is None:
        return 0
    return 1 if op.kind is OpKind.CONV_2D else 2


def _quantize(graph, st) -> list[int] | None:
    if st.kind != "quantize":
        return None
    op = st.unit.op
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    mult, shift = quant.requantize_multiplier(x.scale, y.scale)
    return [-x.zero_point, mult, shift, y.zero_point, int(x.dtype is DType.UINT8)]


def _pool(graph, st) -> list[int] | None:
    if st.kind != "pool":
        return None
    op = st.unit.op
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    count = st.in_shape[0] * st.in_shape[1]
    if op.kind is OpKind.MEAN:
        mult, shift = quant.mean_multiplier(x.scale, y.scale, count)
        return [1, count, -x.zero_point, mult, shift, y.zero_point, -128, 127]
    lo, hi = quant.activation_range(op.attrs.activation, y.scale, y.zero_point)
    return [0, count, 0, 0, 0, 0, lo, hi]


def lower_segment(plan, step: SegmentPlan, pool: ConstPool, conv_numbers, add_params
                  ) -> tuple[str, dict]:
    """Return ("segment.c.j2", context) of a segment step, adding its constants to `pool`.

    conv_numbers/add_params: mnv2gen.codegen.lower's helpers (passed in to avoid a cycle).
    """
    graph = plan.graph
    tables = describe_segment(plan, step)
    stages = []
    for i, (st, t) in enumerate(zip(step.shape.stages, tables.stages, strict=True)):
        symbol = f"mnv2_{step.name}_s{i}"
        parts = {}
        for role, op in (("producer", st.producer), ("op", st.window_op),
                         ("project", st.project)):
            parts[role] = conv_numbers(graph, op, pool, f"{symbol}_{role}") if op else _NO_CONV
        stages.append({
            "kind": KIND_CODES[st.kind], "kind_macro": f"MNV2_STAGE_{st.kind.upper()}",
            "rows_count": len(t.rows),
            "input": _ring(t.input), "output": _ring(t.output), "e_ring": _ring(t.e_ring),
            "e_channels": st.e_shape[2], "producer_kind": _op_kind(st.producer),
            "op_kind": _op_kind(st.window_op),
            "offsets": [t.window, t.patch, t.dw_out, t.out],
            "scratch": t.kernel if t.kernel_bytes else 0, "scratch_bytes": t.kernel_bytes,
            "parts": parts, "has_add": int(st.add is not None),
            "add": add_params(graph, st.add, st.input) if st.add else None,
            "quantize": _quantize(graph, st), "pool": _pool(graph, st),
            "tiles": [list(x) for x in t.tiles], "rows": [list(x) for x in t.rows],
            "erows": [list(x) for x in t.erows],
        })
    context = {
        "stages": stages, "entries": [list(e) for e in tables.entries],
        "rows_needed": list(tables.rows_needed) if tables.streamed else [],
        "acc": tables.acc, "streamed": tables.streamed,
    }
    return "segment.c.j2", context
