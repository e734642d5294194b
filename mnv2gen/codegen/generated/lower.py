"""The generated backend's lowering: a specialised step where every part of a unit has a
generated kernel, the portable lowering (mnv2gen.codegen.lower) everywhere else."""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.generated import kernels
from mnv2gen.codegen.generated.instances import InstanceSet
from mnv2gen.codegen.generated.steps import fused_step, layer_step
from mnv2gen.codegen.lower import _conv_numbers, add_params, band_table, lower_unit
from mnv2gen.codegen.lower_segment import lower_segment
from mnv2gen.planner.plan import Plan, SegmentPlan, UnitPlan
from mnv2gen.planner.schedule import FusedUnit


@dataclass(frozen=True)
class Lowered:
    """A unit's template and context; `prototype` is set for generated steps."""

    template: str
    context: dict
    prototype: str | None = None


def lower_generated(plan: Plan, up: UnitPlan | SegmentPlan, pool: ConstPool,
                    instances: InstanceSet) -> Lowered:
    """Return how a unit is generated under `--kernels generated`, adding its constants to
    `pool` and its kernel instances to `instances`. Operators without a specialised kernel
    (the family's heads and edges, for instance) get the portable lowering; so do
    depth-first segments, except their 1x1 convolutions (see _segment)."""
    if isinstance(up, SegmentPlan):
        return _segment(plan, up, pool, instances)
    if isinstance(up.unit, FusedUnit):
        # activation ops and squeeze-excite inside a unit run on the portable runtime
        context = fused_step(plan, up, pool, instances, band_table(up)) \
            if up.unit.plain else None
        if context is not None:
            return Lowered("gen/fused.c.j2", context,
                           f"int32_t {context['function']}(const mnv2_band *b, int8_t *arena);")
    else:
        context = layer_step(plan, up, pool, instances)
        if context is not None:
            return Lowered("gen/layer.c.j2", context,
                           f"int32_t {context['function']}(int8_t *arena);")
    template, context = lower_unit(plan, up, pool)
    return Lowered(f"ops/{template}", context)


def _segment(plan: Plan, step: SegmentPlan, pool: ConstPool,
             instances: InstanceSet) -> Lowered:
    """Return a segment on the portable runtime (mnv2_segment.c) whose convolutions run
    generated kernels: 1x1 ones (stride 1, no padding: expansions, projections,
    MobileNetV1's pointwise layers) over each tile's pixels through
    mnv2_fused_conv.kernel, depthwise and k x k ones one output row of a tile at a time
    (the window's width and padding at run time) through mnv2_fused_conv.window_kernel.
    Convolutions without a generated kernel keep the portable ones."""
    wrappers = []

    def numbers(graph, op, pool_, symbol):
        kind = kernels.kind_of(graph, op)
        if kind not in ("pw", "dw", "conv"):
            return _conv_numbers(graph, op, pool_, symbol)
        result = _conv_numbers(graph, op, ConstPool(), symbol)  # the params, no arrays
        short = symbol.removeprefix("mnv2_")
        make = {"pw": kernels.pointwise, "dw": kernels.depthwise, "conv": kernels.conv}[kind]
        call = instances.call(make(graph, op, pool_, short) if kind == "pw"
                              else make(graph, op, pool_, short, tile=True))
        name = f"mnv2_gw_{short}"
        wrappers.append({"name": name, "call": call})
        field = "kernel" if kind == "pw" else "window_kernel"
        return {**result, "filter": "0", "bias": "0", "multiplier": "0", "shift": "0",
                field: name}

    template, context = lower_segment(plan, step, pool, numbers, add_params)
    prototype = "\n".join(
        f"int32_t {w['name']}(const int8_t *input, int8_t *output, int32_t pixels);"
        if w["call"]["kind"] == "pw" else
        f"int32_t {w['name']}(const int8_t *input, int32_t in_rows, int32_t in_w, "
        "int32_t pad_top, int32_t pad_left, int8_t *output, int32_t out_w);"
        for w in wrappers)
    return Lowered(f"ops/{template}", {**context, "wrappers": wrappers}, prototype or None)


def const_bytes(plan: Plan) -> int:
    """Return the flash bytes of the constant arrays the generated backend writes."""
    pool = ConstPool()
    instances = InstanceSet()
    for up in plan.units:
        lower_generated(plan, up, pool, instances)
    return pool.total_bytes
