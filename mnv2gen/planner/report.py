"""`mnv2gen plan`: the plan as a JSON-ready dict, a readable table and an arena map."""

from __future__ import annotations

from mnv2gen.errors import shown
from mnv2gen.planner.arena import render
from mnv2gen.planner.plan import Plan, SegmentPlan
from mnv2gen.planner.schedule import FusedUnit


def _ring(pixels: int, width: int, channels: int) -> dict | None:
    if not pixels:
        return None
    return {"pixels": pixels, "rows": round(pixels / width, 2),
            "bytes": -(-pixels * channels // 16) * 16}


def segment_entry(plan: Plan, seg: SegmentPlan) -> dict:
    """Return the JSON-ready description of a segment: its stages (unit, kind, tile
    columns), the ring of each tensor between them (rows, pixels, bytes), the E rings of
    fused stages and the shared transient pool."""
    shape = seg.shape
    stages = []
    for i, st in enumerate(shape.stages):
        _, w, c = st.in_shape
        stages.append({
            "unit": st.name, "kind": st.kind, "input": st.input, "output": st.output,
            "tile_columns": shape.widths[i], "tiles": len(shape.tiles[i]),
            "input_ring": _ring(shape.ring_pixels[i], w, c),
            "e_ring": _ring(shape.e_ring_pixels[i], st.e_shape[1], st.e_shape[2]),
            "prefetched_rows": list(shape.prefetched[i]),
            "transient_bytes": shape.layouts[i].total})
    return {"units": [u.name for u in seg.units],
            "input": "streamed ring" if shape.streamed else "whole tensor",
            "row_steps": len(shape.schedule), "stages": stages,
            "pool_bytes": shape.pool_bytes, "acc_bytes": shape.acc_bytes,
            "state_bytes": shape.state_bytes}


def _segment_unit_entry(plan: Plan, seg: SegmentPlan) -> dict:
    ops = [o.name for u in seg.units for o in (u.ops if isinstance(u, FusedUnit) else (u.op,))]
    out = plan.buffer_of.get(seg.output, seg.output)
    inp = plan.buffer_of.get(seg.input, seg.input)
    return {
        "step": seg.step, "name": seg.name, "kind": "segment", "ops": ops,
        "input": seg.input, "output": seg.output,
        "live_bytes": plan.live_bytes[seg.step],
        "scratch_bytes": sum(seg.scratch.values()), "scratch": dict(seg.scratch),
        "chunking": None, "in_place": frozenset((inp, out)) in plan.allowed_overlaps,
        "segment": segment_entry(plan, seg)}


def _unit_entry(plan: Plan, unit_plan) -> dict:
    if isinstance(unit_plan, SegmentPlan):
        return _segment_unit_entry(plan, unit_plan)
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
    elif u.alias_of is not None:
        entry["in_place"] = True
    return entry


def _input_entry(plan: Plan, name: str) -> dict:
    entry = {"name": name, "bytes": plan.graph.tensor(name).size_bytes}
    ring = plan.input_ring()
    if ring is None:
        return {**entry, "offset": plan.offset(name)}
    offset, rows = ring
    width, channels = plan.graph.tensor(name).shape[2:4]
    return {**entry, "offset": offset, "streamed": True, "ring_rows": rows,
            "ring_bytes": rows * width * channels}


def plan_report(plan: Plan, baseline: Plan, tflm_arena_bytes: int | None,
                tflm_reason: str | None = None) -> dict:
    """Return the plan report (DESIGN.md's `plan --json` contract plus details);
    `tflm_reason` says why `tflm_arena_bytes` is None when TFLite Micro was asked."""
    graph = plan.graph
    report = {
        "model": graph.name, "sha256": graph.source_sha256,
        "scheme": plan.scheme, "kernel_set": plan.kernel_set,
        "peak_bytes": plan.peak_bytes,
        "layer_by_layer_bytes": baseline.peak_bytes,
        "lower_bound_bytes": plan.lower_bound_bytes,
        "ratio_to_layer_by_layer": round(plan.peak_bytes / baseline.peak_bytes, 4),
        "tflm_arena_bytes": tflm_arena_bytes,
        "tflm_arena_bytes_reason": None if tflm_arena_bytes is not None else tflm_reason,
        "input_mode": plan.input_mode,
        "inputs": [_input_entry(plan, n) for n in graph.inputs],
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
    lines = [f"model   {shown(report['model'])}  scheme {report['scheme']}  "
             f"kernels {report['kernel_set']}", "",
             f"{'step':>4} {'unit':<22} {'kind':<17} {'chunking':<14} {'in-place':<8} "
             f"{'live B':>9} {'scratch B':>9}"]
    for u in report["units"]:
        ch = u["chunking"]
        label = f"R={ch['rows']} G={ch['groups']}" if ch else "-"
        if u["kind"] == "segment":
            label = f"{len(u['segment']['units'])} units"
        name = shown(u["name"], 22)[:22]
        lines.append(f"{u['step']:>4} {name:<22} {u['kind']:<17} {label:<14} "
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
    elif report.get("tflm_arena_bytes_reason"):
        lines.append(f"TFLite Micro             n/a  ({report['tflm_arena_bytes_reason']})")
    lines += _segment_lines(report)
    lines += ["", "arena map (rows = steps, columns = offset):",
              render(plan.placement, len(plan.units), is_ring=_is_ring)]
    return "\n".join(lines)


def _is_ring(name: str) -> bool:
    suffix = name.rsplit(".", 1)[-1]
    return suffix.startswith(("ring", "e"))


def _ring_text(ring: dict | None, absent: str) -> str:
    return f"{ring['rows']:.2f} rows {ring['bytes']:,} B" if ring else absent


def _segment_lines(report: dict) -> list[str]:
    """Return one block per segment: its stages, tile columns and ring sizes."""
    lines = []
    for u in report["units"]:
        if u["kind"] != "segment":
            continue
        seg = u["segment"]
        lines += ["", f"{shown(u['name'])} (step {u['step']}): depth-first over "
                  f"{', '.join(shown(n, 40) for n in seg['units'])}; input "
                  f"{shown(seg['input'])}; {seg['row_steps']} row "
                  f"steps; transient pool {seg['pool_bytes']:,} B"]
        for st in seg["stages"]:
            lines.append(f"  {shown(st['unit'], 20)[:20]:<20} {st['kind']:<8} tiles of "
                         f"{st['tile_columns']:>3} columns  input ring "
                         f"{_ring_text(st['input_ring'], 'none (whole)'):<22} E ring "
                         f"{_ring_text(st['e_ring'], '-')}")
    return lines
