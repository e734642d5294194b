"""The static check of a placed plan: what `plan_model` proves before it returns a plan.

1. no two buffers share bytes while both are alive, except the in-place pairs the
   planner linked (arena.overlaps);
2. every ring of every segment is big enough: each write lands on a slot whose previous
   pixel was read for the last time, each read finds its pixel written
   (SegmentShape.ring_problems);
3. a segment output written over its input (an in-place pair) never lands, at its actual
   offsets, on input bytes that are still to be read.
The simulation (mnv2gen.planner.simulate) checks the same plan on real data.
"""

from __future__ import annotations

import numpy as np

from mnv2gen.planner import arena
from mnv2gen.planner.steps import SegmentPlan


def trail_problems(plan, seg: SegmentPlan) -> list[str]:
    """Return where a segment's in-place output overwrites input still to be read."""
    x_name, y_name = plan.buffer_of.get(seg.input), plan.buffer_of.get(seg.output)
    if x_name is None or frozenset((x_name, y_name)) not in plan.allowed_overlaps:
        return []
    shape = seg.shape
    count = len(shape.stages)
    x, y = shape.access["in0"], shape.access[f"in{count}"]
    x_c, y_c = shape.stages[0].in_shape[2], shape.last.out_shape[2]
    distance = plan.offset(seg.output) - plan.offset(seg.input)
    j = np.arange(y.size)
    first = np.floor_divide(distance + j * y_c, x_c)
    last = np.floor_divide(distance + (j + 1) * y_c - 1, x_c)
    for k in range(-(-y_c // x_c) + 1):
        i = first + k
        hit = (i <= last) & (i >= 0) & (i < x.size)
        bad = np.nonzero(hit & (x.last_read[np.clip(i, 0, x.size - 1)] >= y.write))[0]
        if bad.size:
            p = int(bad[0])
            return [f"{seg.name}: output pixel {p} at time {int(y.write[p])} overwrites input "
                    f"pixel {int(i[p])}, still read at time {int(x.last_read[i[p]])}"]
    return []


def plan_problems(plan) -> list[str]:
    """Return every finding of the static check (empty when the plan is safe)."""
    problems = arena.overlaps(plan.placement, set(plan.allowed_overlaps))
    for seg in plan.segments:
        problems += seg.shape.ring_problems()
        problems += trail_problems(plan, seg)
    return problems
