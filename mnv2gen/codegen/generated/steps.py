"""Lower plan units to generated band steps and layer steps (templates/gen/).

A fused unit whose producer, depthwise, projection and add all have a specialised kernel
(kernels.kind_of) becomes one C function per unit, `mnv2_gs_<unit>(band, arena)`, that
runs one band exactly as the portable mnv2_fused_band does (sliding window, channel
groups with int32 partial sums, in-place outputs, shortcut add) but with the kernel
instances of this model. A conv, depthwise or ADD layer unit, or an elementwise one a
lookup table replaces (tables.py), becomes `mnv2_gs_<unit>(arena)`. Anything else returns
None: the caller falls back to the portable lowering.
"""

from __future__ import annotations

from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.generated import kernels, tables
from mnv2gen.codegen.generated.instances import InstanceSet
from mnv2gen.ir import Graph, Op
from mnv2gen.planner.plan import Plan, UnitPlan
from mnv2gen.planner.schedule import FusedUnit


def _dims(graph: Graph, name: str) -> tuple[int, int, int]:
    _, h, w, c = graph.tensor(name).shape
    return h, w, c


def _windowed_call(graph: Graph, op: Op, kind: str, pool: ConstPool, symbol: str,
                   channels: tuple[int, int] | None):
    if kind == "dw":
        return kernels.depthwise(graph, op, pool, symbol, channels)
    return kernels.conv(graph, op, pool, symbol, channels)


def _fused_kinds(graph: Graph, unit: FusedUnit, groups) -> dict | None:
    """Return the kernel kind of each part, or None if one part has no specialised kernel."""
    kinds = {"producer": kernels.kind_of(graph, unit.producer) if unit.producer else "none",
             "depthwise": kernels.kind_of(graph, unit.depthwise),
             "project": kernels.kind_of(graph, unit.project),
             "add": kernels.kind_of(graph, unit.add) if unit.add else "none"}
    if kinds["depthwise"] != "dw" or kinds["project"] != "pw" or None in kinds.values():
        return None
    if kinds["add"] not in ("add", "none"):
        return None
    if kinds["producer"] == "dw" and len(groups) > 1:
        return None  # a depthwise producer would read a channel slice of the unit input
    return kinds


def fused_step(plan: Plan, up: UnitPlan, pool: ConstPool, instances: InstanceSet,
               bands: list[list[int]]) -> dict | None:
    """Return the context of templates/gen/fused.c.j2 for a fused unit, or None."""
    graph, unit, choice = plan.graph, up.unit, up.choice
    kinds = _fused_kinds(graph, unit, choice.groups)
    if kinds is None:
        return None
    name = up.name
    _, x_w, x_c = _dims(graph, unit.input)
    _, e_w, _ = _dims(graph, unit.expanded)
    _, y_w, y_c = _dims(graph, unit.output)
    grouped = len(choice.groups) > 1
    groups = []
    for g0, g1 in choice.groups:
        part = (g0, g1) if grouped else None
        group = {"start": g0, "stop": g1, "e_row": e_w * (g1 - g0), "producer": None,
                 "acc": None}
        if unit.producer is not None:
            if kinds["producer"] == "pw":
                call = kernels.pointwise(graph, unit.producer, pool, f"{name}_producer", part)
            else:
                call = _windowed_call(graph, unit.producer, kinds["producer"], pool,
                                      f"{name}_producer", part)
            group["producer"] = instances.call(call)
        group["dw"] = instances.call(kernels.depthwise(graph, unit.depthwise, pool,
                                                       f"{name}_depthwise", part))
        if grouped:
            group["acc"] = instances.call(kernels.pointwise(
                graph, unit.project, pool, f"{name}_project", inputs=(g0, g1), accumulate=True))
        groups.append(group)
    project = (kernels.requant_acc(graph, unit.project, pool, f"{name}_project") if grouped
               else kernels.pointwise(graph, unit.project, pool, f"{name}_project"))
    offset = plan.offset
    scratch = {k: (offset(f"{name}.{k}") if k in up.scratch else 0)
               for k in ("window", "dw_out", "shortcut", "acc")}
    return {
        "function": f"mnv2_gs_{name}", "bands": bands,
        "x_offset": offset(unit.input), "y_offset": offset(unit.output),
        "window_offset": scratch["window"], "dw_out_offset": scratch["dw_out"],
        "shortcut_offset": scratch["shortcut"], "acc_offset": scratch["acc"],
        "x_row": x_w * x_c, "x_width": x_w, "y_row": y_w * y_c, "y_width": y_w, "out_c": y_c,
        "producer": kinds["producer"] if unit.producer is not None else None,
        "groups": groups, "grouped": grouped, "project": instances.call(project),
        "add": (instances.call(kernels.add(graph, unit.add, unit.input, pool, f"{name}_add"))
                if unit.add is not None else None),
    }


def layer_step(plan: Plan, up: UnitPlan, pool: ConstPool, instances: InstanceSet) -> dict | None:
    """Return the context of templates/gen/layer.c.j2 for a layer unit, or None."""
    graph, op = plan.graph, up.unit.op
    name = up.name
    if tables.has_table(graph, op):
        return {"function": f"mnv2_gs_{name}", "kind": "lut",
                "table": tables.add_table(graph, op, pool, f"{name}_table"),
                "x_offset": plan.offset(tables.table_input(graph, op)),
                "y_offset": plan.offset(op.outputs[0]),
                "count": graph.tensor(op.outputs[0]).num_elements}
    kind = kernels.kind_of(graph, op)
    if kind is None:
        return None
    context = {"function": f"mnv2_gs_{name}", "kind": kind,
               "y_offset": plan.offset(op.outputs[0])}
    if kind == "add":
        call = kernels.add(graph, op, op.inputs[0], pool, name)
        return {**context, "call": instances.call(call),
                "x1_offset": plan.offset(op.inputs[0]), "x2_offset": plan.offset(op.inputs[1]),
                "count": graph.tensor(op.outputs[0]).num_elements}
    if kind == "fc":
        call = kernels.fully_connected(graph, op, pool, name)
        in_f = graph.tensor(op.inputs[1]).shape[1]
        return {**context, "kind": "pw", "call": instances.call(call),
                "x_offset": plan.offset(op.inputs[0]),
                "pixels": graph.tensor(op.inputs[0]).num_elements // in_f}
    x_h, x_w, _ = _dims(graph, op.inputs[0])
    y_h, y_w, _ = _dims(graph, op.outputs[0])
    if kind == "pw":
        call = kernels.pointwise(graph, op, pool, name)
    else:
        call = _windowed_call(graph, op, kind, pool, name, None)
    return {**context, "call": instances.call(call), "x_offset": plan.offset(op.inputs[0]),
            "in_rows": x_h, "pad_top": op.attrs.padding.top, "out_rows": y_h,
            "pixels": x_h * x_w}
