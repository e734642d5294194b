"""The generated backend's lowering: a specialised step where every part of a unit has a
generated kernel, the portable lowering (mnv2gen.codegen.lower) everywhere else."""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.generated import kernels, tables
from mnv2gen.codegen.generated.instances import InstanceSet
from mnv2gen.codegen.generated.steps import fused_step, layer_step
from mnv2gen.codegen.lower import (
    _conv_numbers,
    add_params,
    band_table,
    lower_fused,
    lower_unit,
)
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
    `pool` and its kernel instances to `instances`. Depth-first segments, and fused units
    with activation ops or squeeze-excite, run on the portable runtime with generated
    kernels for their convolutions (_segment, _fused_on_runtime; channel-grouped ones of
    the latter keep the portable kernels). Operators without a specialised kernel (the
    family's heads and edges, for instance) get the portable lowering."""
    if isinstance(up, SegmentPlan):
        return _segment(plan, up, pool, instances)
    if isinstance(up.unit, FusedUnit):
        context = fused_step(plan, up, pool, instances, band_table(up)) \
            if up.unit.plain else None
        if context is not None:
            return Lowered("gen/fused.c.j2", context,
                           f"int32_t {context['function']}(const mnv2_band *b, int8_t *arena);")
        if len(up.choice.groups) == 1:
            return _fused_on_runtime(plan, up, pool, instances)
    else:
        context = layer_step(plan, up, pool, instances)
        if context is not None:
            return Lowered("gen/layer.c.j2", context,
                           f"int32_t {context['function']}(int8_t *arena);")
    template, context = lower_unit(plan, up, pool)
    return Lowered(f"ops/{template}", context)


def _hook(instances: InstanceSet, wrappers: list, tile: bool):
    """Return a conv_numbers function (mnv2gen.codegen.lower) that gives each convolution
    with a generated kernel the wrapper the portable runtime calls instead: 1x1 ones
    through mnv2_fused_conv.kernel, depthwise and k x k ones through window_kernel (one
    output row of a segment tile: tile) or band_kernel (whole-width band rows)."""

    def numbers(graph, op, pool_, symbol):
        kind = kernels.kind_of(graph, op)
        if kind not in ("pw", "dw", "conv"):
            return _conv_numbers(graph, op, pool_, symbol)
        result = _conv_numbers(graph, op, ConstPool(), symbol)  # the params, no arrays
        short = symbol.removeprefix("mnv2_")
        if kind == "pw":
            made = kernels.pointwise(graph, op, pool_, short)
        else:
            make = kernels.depthwise if kind == "dw" else kernels.conv
            made = make(graph, op, pool_, short, tile=tile)
        name = f"mnv2_gw_{short}"
        wrappers.append({"name": name, "call": instances.call(made)})
        field = "kernel" if kind == "pw" else ("window_kernel" if tile else "band_kernel")
        return {**result, "filter": "0", "bias": "0", "multiplier": "0", "shift": "0",
                field: name}

    return numbers


def _prototypes(wrappers: list) -> str | None:
    """Return the C prototypes of the wrappers (templates/gen/wrappers.c.j2)."""
    lines = []
    for w in wrappers:
        kind = w["call"]["kind"]
        if kind == "pw":
            args = "const int8_t *input, int8_t *output, int32_t pixels"
        elif kind in ("dw_tile", "conv_tile"):
            args = ("const int8_t *input, int32_t in_rows, int32_t in_w, int32_t pad_top, "
                    "int32_t pad_left, int8_t *output, int32_t out_w")
        else:
            args = ("const int8_t *input, int32_t in_rows, int32_t pad_top, int8_t *output, "
                    "int32_t out_rows")
        lines.append(f"int32_t {w['name']}({args});")
    return "\n".join(lines) or None


def _fused_on_runtime(plan: Plan, up: UnitPlan, pool: ConstPool,
                      instances: InstanceSet) -> Lowered:
    """Return a fused unit of one channel group that the portable runtime (mnv2_fused.c)
    runs, for its activation ops or squeeze-excite, with generated kernels for its
    convolutions."""
    wrappers: list = []
    template, context = lower_fused(plan, up, pool, _hook(instances, wrappers, tile=False))
    for role in ("producer_act", "depthwise_act"):
        op = getattr(up.unit, role)
        if tables.has_table(plan.graph, op):
            context[role] = {**context[role],
                             "table": tables.add_table(plan.graph, op, pool,
                                                       f"{up.name}_{role}_table")}
    return Lowered(f"ops/{template}", {**context, "wrappers": wrappers}, _prototypes(wrappers))


def _segment(plan: Plan, step: SegmentPlan, pool: ConstPool,
             instances: InstanceSet) -> Lowered:
    """Return a segment on the portable runtime (mnv2_segment.c) whose convolutions run
    generated kernels: 1x1 ones (stride 1, no padding: expansions, projections,
    MobileNetV1's pointwise layers) over each tile's pixels, depthwise and k x k ones one
    output row of a tile at a time (the window's width and padding at run time); see
    _hook. Convolutions without a generated kernel keep the portable ones."""
    wrappers: list = []
    template, context = lower_segment(plan, step, pool, _hook(instances, wrappers, tile=True),
                                      add_params)
    return Lowered(f"ops/{template}", {**context, "wrappers": wrappers}, _prototypes(wrappers))


def const_bytes(plan: Plan) -> int:
    """Return the flash bytes of the constant arrays the generated backend writes."""
    pool = ConstPool()
    instances = InstanceSet()
    for up in plan.units:
        lower_generated(plan, up, pool, instances)
    return pool.total_bytes
