"""`mnv2gen plan`: the plan as a JSON-ready dict, a readable table and an arena map."""

from __future__ import annotations

from mnv2gen.planner.arena import render
from mnv2gen.planner.candidates import candidates
from mnv2gen.planner.chunking import SQUEEZE_STRATEGIES, Chunking
from mnv2gen.planner.plan import Plan
from mnv2gen.planner.schedule import FusedUnit


def _unit_entry(plan: Plan, unit_plan) -> dict:
    u, c = unit_plan.unit, unit_plan.choice
    entry = {
        "step": unit_plan.step, "name": u.name,
        "kind": "fused" if isinstance(u, FusedUnit) else u.op.kind.value,
        "ops": [o.name for o in (u.ops if isinstance(u, FusedUnit) else (u.op,))],
        "input": u.input if isinstance(u, FusedUnit) else
        [n for n in u.op.inputs if not plan.graph.tensor(n).is_const],
        "output": u.output,
        "live_bytes": plan.live_bytes[unit_plan.step],
        "scratch_bytes": sum(unit_plan.scratch.values()),
        "scratch": dict(unit_plan.scratch),
        "chunking": None, "in_place": False,
    }
    if c is not None:
        x, y = plan.buffer_of[u.input], plan.buffer_of[u.output]
        entry["chunking"] = {"rows": c.chunking.rows, "groups": c.chunking.groups,
                             "bands": len(c.bands), "kernel_calls": c.calls, "macs": c.macs}
        entry["in_place"] = frozenset((x, y)) in plan.allowed_overlaps
        entry["producer"] = u.producer.name if u.producer else None
        if u.se is not None:
            entry["chunking"]["squeeze"] = c.chunking.squeeze
            entry["squeeze_excite"] = squeeze_figures(plan, u, c)
    elif u.alias_of is not None:
        entry["in_place"] = True
    return entry


def _figures(c) -> dict:
    return {"bytes": c.local_bytes, "instructions": round(c.cost), "macs": c.macs,
            "chunking": c.chunking.label()}


def squeeze_figures(plan: Plan, unit: FusedUnit, chosen) -> dict:
    """Return both strategies' figures of a squeeze-excite unit: per strategy its
    smallest-bytes candidate and its cheapest (bytes = what the unit needs while it runs,
    instructions = the planner's estimate), and the strategy the plan chose."""
    result = {"strategy": chosen.chunking.squeeze, "chosen": _figures(chosen)}
    for strategy in SQUEEZE_STRATEGIES:
        options = candidates(plan.graph, unit, plan.kernel_set,
                             Chunking(chosen.chunking.rows, 1, strategy)) + [
            c for c in candidates(plan.graph, unit, plan.kernel_set)
            if c.chunking.squeeze == strategy]
        result[strategy] = {
            "smallest": _figures(min(options, key=lambda c: (c.local_bytes, c.cost))),
            "cheapest": _figures(min(options, key=lambda c: (c.cost, c.local_bytes))),
            "same_rows": _figures(options[0])}
    return result


def plan_report(plan: Plan, baseline: Plan, tflm_arena_bytes: int | None) -> dict:
    """Return the plan report (DESIGN.md's `plan --json` contract plus details)."""
    graph = plan.graph
    report = {
        "model": graph.name, "sha256": graph.source_sha256,
        "scheme": plan.scheme, "kernel_set": plan.kernel_set,
        "peak_bytes": plan.peak_bytes,
        "layer_by_layer_bytes": baseline.peak_bytes,
        "lower_bound_bytes": plan.lower_bound_bytes,
        "ratio_to_layer_by_layer": round(plan.peak_bytes / baseline.peak_bytes, 4),
        "tflm_arena_bytes": tflm_arena_bytes,
        "inputs": [{"name": n, "offset": plan.offset(n),
                    "bytes": graph.tensor(n).size_bytes} for n in graph.inputs],
        "outputs": [{"name": n, "offset": None if graph.tensor(n).is_const else plan.offset(n),
                     "bytes": graph.tensor(n).size_bytes, "constant": graph.tensor(n).is_const}
                    for n in graph.outputs],
        "units": [_unit_entry(plan, up) for up in plan.units],
        "buffers": [{"name": n, "offset": plan.placement.offsets[n], "bytes": b.size_bytes,
                     "first_step": b.first_step, "last_step": b.last_step}
                    for n, b in sorted(plan.placement.buffers.items(),
                                       key=lambda kv: (plan.placement.offsets[kv[0]], kv[0]))],
    }
    return report


def render_plan(report: dict, plan: Plan) -> str:
    """Return the plan as a table of units, the headline numbers and an ASCII arena map."""
    lines = [f"model   {report['model']}  scheme {report['scheme']}  "
             f"kernels {report['kernel_set']}", "",
             f"{'step':>4} {'unit':<22} {'kind':<17} {'chunking':<18} {'in-place':<8} "
             f"{'live B':>9} {'scratch B':>9}"]
    for u in report["units"]:
        ch = u["chunking"]
        label = f"R={ch['rows']} G={ch['groups']}" if ch else "-"
        if ch and ch.get("squeeze"):
            label += " SE:" + ch["squeeze"][:4]
        lines.append(f"{u['step']:>4} {u['name'][:22]:<22} {u['kind']:<17} {label:<18} "
                     f"{'yes' if u['in_place'] else '':<8} {u['live_bytes']:>9,} "
                     f"{u['scratch_bytes']:>9,}")
    tflm = report["tflm_arena_bytes"]
    lines += ["", f"peak arena        {report['peak_bytes']:>10,} bytes (input and output "
              "included)",
              f"lower bound       {report['lower_bound_bytes']:>10,} bytes (most bytes live "
              "at one step)",
              f"layer by layer    {report['layer_by_layer_bytes']:>10,} bytes  "
              f"(plan = {report['ratio_to_layer_by_layer']:.3f} x)"]
    if tflm:
        lines.append(f"TFLite Micro      {tflm:>10,} bytes  (plan = "
                     f"{report['peak_bytes'] / tflm:.3f} x)")
    lines += ["", "arena map (rows = steps, columns = offset):",
              render(plan.placement, len(plan.units))]
    return "\n".join(lines)
