"""The data behind the charts: live bytes along the network and the plan's arena map."""

from __future__ import annotations

from mnv2gen.estimate.memory import Memory
from mnv2gen.planner.plan import Plan
from mnv2gen.planner.schedule import FusedUnit


def _op_span(plan: Plan, up, index: dict[str, int]) -> tuple[int, int]:
    ops = up.unit.ops if isinstance(up.unit, FusedUnit) else (up.unit.op,)
    positions = [index[o.name] for o in ops]
    return min(positions), max(positions)


def unit_timeline(plan: Plan) -> list[dict]:
    """Return per plan step: name, the operators it runs (first_op..last_op, positions in
    the integer graph) and the bytes live at that step (before placement)."""
    index = {op.name: i for i, op in enumerate(plan.graph.ops)}
    rows = []
    for up in plan.units:
        first, last = _op_span(plan, up, index)
        rows.append({"step": up.step, "name": up.name, "first_op": first, "last_op": last,
                     "live_bytes": plan.live_bytes[up.step],
                     "scratch_bytes": sum(up.scratch.values())})
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
    return {"layer_by_layer_bytes": memory.baseline.peak_bytes,
            "plan_bytes": memory.plan.peak_bytes,
            "lower_bound_bytes": memory.plan.lower_bound_bytes,
            "const_bytes": memory.const_bytes, "operators": len(memory.plan.graph.ops),
            "io_buffers": sorted({memory.plan.buffer_of.get(n, n) for n in
                                  (*memory.plan.graph.inputs, *memory.plan.graph.outputs)}),
            "timeline": {"layer_by_layer": unit_timeline(memory.baseline),
                         "plan": unit_timeline(memory.plan)},
            "arena_map": arena_map(memory.plan)}
