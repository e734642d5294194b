"""Exact memory figures of one model under one kernel set: arenas, constant bytes, MACs."""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.generated.lower import const_bytes as generated_const_bytes
from mnv2gen.codegen.lower import lower_unit
from mnv2gen.errors import MnvError
from mnv2gen.ir import Graph
from mnv2gen.planner.plan import Plan, plan_model
from mnv2gen.stats import graph_macs


@dataclass(frozen=True)
class Memory:
    """The plan `build` would generate, its layer-by-layer baseline and what they cost.

    `plan` is the plan of the chosen input mode; `resident` and `streamed` are both
    modes' plans (streamed is None when the first layer cannot read rows one by one)."""

    plan: Plan
    baseline: Plan
    const_bytes: int
    macs: int
    resident: Plan | None = None
    streamed: Plan | None = None

    @property
    def kernel_set(self) -> str:
        """Return the kernel set whose scratch rules the plans follow."""
        return self.plan.kernel_set


def const_pool_bytes(plan: Plan) -> int:
    """Return the flash bytes of the generated constant arrays (weights, biases,
    requantisation tables, channel-group copies) of `plan`, exactly as `write_library`
    reports them, without writing any file."""
    if plan.kernel_set == "generated":
        return generated_const_bytes(plan)
    pool = ConstPool()
    for up in plan.units:
        lower_unit(plan, up, pool)
    return pool.total_bytes


def model_macs(core: Graph) -> int:
    """Return the multiply-accumulates of one inference of the integer graph."""
    return graph_macs(core)


def plan_memory(core: Graph, kernel_set: str, input_mode: str = "resident") -> Memory:
    """Return the Memory of the integer graph `core` under `kernel_set`: the default
    plans (scheme auto) of both input modes, `input_mode`'s as the plan, and the
    layer-by-layer baseline, as `mnv2gen plan` and `build` compute them."""
    resident = plan_model(core, "auto", kernel_set)
    try:
        streamed = plan_model(core, "auto", kernel_set, input_mode="streamed")
    except MnvError:
        if input_mode == "streamed":
            raise
        streamed = None
    plan = streamed if input_mode == "streamed" else resident
    baseline = plan_model(core, "layer", kernel_set)
    return Memory(plan, baseline, const_pool_bytes(plan), model_macs(core), resident,
                  streamed)
