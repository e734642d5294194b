"""The numbers of a fused unit's activation ops and squeeze-excite (mnv2_fused.h's
mnv2_fused_act and mnv2_fused_se), and the lowering of its excitation ops.

The excitation ops (1x1 convolutions, gates) run on per-channel vectors between the two
passes of a squeeze-excite unit; they are ordinary layer calls on their arena tensors,
lowered by mnv2gen.codegen.lower like any layer and called from the unit's code.
"""

from __future__ import annotations

from collections.abc import Callable

from mnv2gen import quant, quant_params
from mnv2gen.ir import Graph, Op, OpKind
from mnv2gen.planner.plan import Plan, UnitPlan
from mnv2gen.planner.schedule import FusedUnit, LayerUnit

# mnv2_fused_act.kind of each activation op kind (0: none)
ACT_KINDS = {OpKind.HARD_SWISH: 1, OpKind.LOGISTIC: 2}
SQUEEZE_KINDS = {None: 0, "materialise": 1, "recompute": 2}
_NO_HARD_SWISH = [0] * 6
_NO_LOGISTIC = [0] * 4


def act_numbers(graph: Graph, op: Op | None) -> dict:
    """Return mnv2_fused_act's fields of an activation op (all zero without one)."""
    numbers = {"kind": 0, "hard_swish": _NO_HARD_SWISH, "logistic": _NO_LOGISTIC}
    if op is None:
        return numbers
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    numbers["kind"] = ACT_KINDS[op.kind]
    if op.kind is OpKind.HARD_SWISH:
        p = quant_params.hard_swish_params(x.scale, x.zero_point, y.scale, y.zero_point)
        numbers["hard_swish"] = [p.input_zero_point, p.output_zero_point, p.reluish_multiplier,
                                 p.reluish_exponent, p.output_multiplier, p.output_exponent]
    else:
        p = quant_params.logistic_params(x.scale, x.zero_point)
        numbers["logistic"] = [p.input_zero_point, p.input_multiplier, p.input_left_shift,
                               p.input_range_radius]
    return numbers


def se_numbers(plan: Plan, up: UnitPlan) -> list:
    """Return mnv2_fused_se's fields of a unit (strategy 0 and zeros without SE)."""
    unit, graph = up.unit, plan.graph
    se = unit.se
    if se is None:
        return [0] * 10 + [[0] * 7]
    strategy = up.choice.chunking.squeeze
    x, m = graph.tensor(se.mean.inputs[0]), graph.tensor(se.mean.outputs[0])
    count = x.shape[1] * x.shape[2]
    mult, shift = quant.mean_multiplier(x.scale, m.scale, count)
    t1, t2, y = (graph.tensor(n) for n in (*se.scale.inputs, se.scale.outputs[0]))
    m2, s2 = quant_params.mul_multiplier(t1.scale, t2.scale, y.scale)
    lo, hi = quant.activation_range(se.scale.attrs.activation, y.scale, y.zero_point)
    features = plan.offset(f"{up.name}.features") if strategy == "materialise" else 0
    return [SQUEEZE_KINDS[strategy], features, plan.offset(f"{up.name}.sums"),
            plan.offset(se.mean.outputs[0]), plan.offset(se.vector),
            int(quant.wrap32(-x.zero_point * count)), mult, shift, m.zero_point,
            int(se.scale.inputs[0] == se.features),
            [-t1.zero_point, -t2.zero_point, y.zero_point, m2, s2, lo, hi]]


def excite_steps(plan: Plan, up: UnitPlan, pool, lower_layer: Callable
                 ) -> list[tuple[str, str, dict]]:
    """Return (name, template, context) of every excitation op of a SE unit, in order.

    They use the unit's kernel scratch (sized for them by the planner)."""
    unit = up.unit
    assert isinstance(unit, FusedUnit)
    if unit.se is None:
        return []
    steps = []
    kernel = up.scratch.get("kernel", 0)
    for i, op in enumerate(unit.se.excite):
        name = f"{up.name}_se{i}"
        template, context = lower_layer(plan, UnitPlan(up.step, LayerUnit(name, op), None, {}),
                                        pool)
        if "scratch" in context and kernel:
            context = {**context, "scratch": f"mnv2_arena + {plan.offset(f'{up.name}.kernel')}",
                       "scratch_bytes": kernel}
        steps.append((name, template, context))
    return steps
