"""The data behind the charts: live bytes along the network and the plan's arena map."""

from __future__ import annotations

from mnv2gen.estimate.memory import Memory
from mnv2gen.planner.plan import Plan, SegmentPlan
from mnv2gen.planner.schedule import FusedUnit


def _ops(up) -> tuple:
    units = up.units if isinstance(up, SegmentPlan) else (up.unit,)
    return tuple(o for u in units for o in (u.ops if isinstance(u, FusedUnit) else (u.op,)))


def _op_span(plan: Plan, up, index: dict[str, int]) -> tuple[int, int]:
    ops = _ops(up)
    positions = [index[o.name] for o in ops]
    return min(positions), max(positions)


def unit_timeline(plan: Plan) -> list[dict]:
    """Return per plan step: name, the operators it runs (first_op..last_op, positions in
    the integer graph), the bytes live at that step (before placement) and, for a
    depth-first segment, the units it chains."""
    index = {op.name: i for i, op in enumerate(plan.graph.ops)}
    rows = []
    for up in plan.units:
        first, last = _op_span(plan, up, index)
        rows.append({"step": up.step, "name": up.name, "first_op": first, "last_op": last,
                     "live_bytes": plan.live_bytes[up.step],
                     "scratch_bytes": sum(up.scratch.values()),
                     "segment": [u.name for u in up.units] if isinstance(up, SegmentPlan)
                     else None})
    return rows


def arena_map(plan: Plan) -> list[dict]:
    """Return the plan's buffers as {name, offset, bytes, first_step, last_step}, by offset."""
    placement = plan.placement
    return [{"name": n, "offset": placement.offsets[n], "bytes": b.size_bytes,
             "first_step": b.first_step, "last_step": b.last_step}
            for n, b in sorted(placement.buffers.items(),
                               key=lambda kv: (placement.offsets[kv[0]], kv[0]))]


def memory_details(memory: Memory) -> dict:
    """Return the JSON-ready memory figures of one kernel set: arenas, constants, the
    timeline of both schedules and the plan's arena map."""
    streamed = memory.streamed
    return {"layer_by_layer_bytes": memory.baseline.peak_bytes,
            "plan_bytes": memory.plan.peak_bytes,
            "lower_bound_bytes": memory.plan.lower_bound_bytes,
            "input_mode": memory.plan.input_mode,
            "resident_plan_bytes": memory.resident.peak_bytes if memory.resident else None,
            "streamed_plan_bytes": streamed.peak_bytes if streamed else None,
            "segments": [{"name": s.name, "step": s.step, "units": [u.name for u in s.units]}
                         for s in memory.plan.segments],
            "const_bytes": memory.const_bytes, "operators": len(memory.plan.graph.ops),
            "io_buffers": sorted({memory.plan.buffer_of.get(n, n) for n in
                                  (*memory.plan.graph.inputs, *memory.plan.graph.outputs)}),
            "timeline": {"layer_by_layer": unit_timeline(memory.baseline),
                         "plan": unit_timeline(memory.plan),
                         **({"streamed": unit_timeline(streamed)} if streamed and
                            streamed is not memory.plan else {})},
            "arena_map": arena_map(memory.plan)}
