"""The generated backend's lowering: a specialised step where every part of a unit has a
generated kernel, the portable lowering (mnv2gen.codegen.lower) everywhere else."""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.generated.instances import InstanceSet
from mnv2gen.codegen.generated.steps import fused_step, layer_step
from mnv2gen.codegen.lower import band_table, lower_unit
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
    `pool` and its kernel instances to `instances`. Depth-first segments and operators
    without a specialised kernel (the family's heads and edges, for instance) get the
    portable lowering."""
    if isinstance(up, SegmentPlan):
        pass
    elif isinstance(up.unit, FusedUnit):
        context = fused_step(plan, up, pool, instances, band_table(up))
        if context is not None:
            return Lowered("gen/fused.c.j2", context,
                           f"int32_t {context['step']}(const mnv2_band *b, int8_t *arena);")
    else:
        context = layer_step(plan, up, pool, instances)
        if context is not None:
            return Lowered("gen/layer.c.j2", context, f"int32_t {context['step']}(int8_t *arena);")
    template, context = lower_unit(plan, up, pool)
    return Lowered(f"ops/{template}", context)


def const_bytes(plan: Plan) -> int:
    """Return the flash bytes of the constant arrays the generated backend writes."""
    pool = ConstPool()
    instances = InstanceSet()
    for up in plan.units:
        lower_generated(plan, up, pool, instances)
    return pool.total_bytes
