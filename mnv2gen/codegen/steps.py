"""How generated C names and comments each plan step: its unit name (numbered by the
model file's operator index, see mnv2gen.planner.schedule.unit_name), the operators it
runs, and the bands after which it calls the yield hook."""

from __future__ import annotations

from mnv2gen.planner.plan import SegmentPlan
from mnv2gen.planner.schedule import FusedUnit
from mnv2gen.planner.steps import UnitPlan


def _operators(ops) -> str:
    """Return e.g. "operators 6 (CONV_2D), 7 (DEPTHWISE_CONV_2D)": indices in the model file."""
    return ("operator " if len(ops) == 1 else "operators ") + ", ".join(
        f"{o.source_index if o.source_index >= 0 else 'added'} ({o.kind.value})" for o in ops)


def _unit_ops(unit) -> tuple:
    return unit.ops if isinstance(unit, FusedUnit) else (unit.op,)


def describe_step(up: UnitPlan | SegmentPlan) -> str:
    """Return the comment of one step: its unit name and the model-file operators it runs."""
    if isinstance(up, SegmentPlan):
        shape = up.shape
        stages = "; ".join(f"{st.unit.name} ({st.kind}): {_operators(_unit_ops(st.unit))}, "
                           f"tiles of {w} column(s)"
                           for st, w in zip(shape.stages, shape.widths, strict=True))
        source = "a streamed input ring" if shape.streamed else "a whole input"
        return (f"{up.name}, depth-first over {len(shape.stages)} unit(s) reading {source}, "
                f"{len(shape.schedule)} row steps: {stages}")
    unit = up.unit
    if isinstance(unit, FusedUnit):
        c = up.choice
        return (f"{unit.name}, fused {_operators(unit.ops)}; {len(c.bands)} band(s) of "
                f"{c.chunking.rows} row(s), {c.chunking.groups} channel group(s)")
    return f"{unit.name}, {_operators((unit.op,))}"


def step_bands(up: UnitPlan | SegmentPlan) -> int:
    """Return how often a step calls the yield hook: per row band of a fused unit, per row
    step of a segment, once for a single layer."""
    if isinstance(up, SegmentPlan):
        return len(up.shape.schedule)
    return len(up.choice.bands) if isinstance(up.unit, FusedUnit) else 1
