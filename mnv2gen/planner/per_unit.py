"""The per-unit plan (scheme "bottleneck"): one chunking per fused unit, chosen alone.

Default: the smallest peak among chunkings that cost at most OVERHEAD_BOUND more than
each unit's cheapest chunking; under a budget, the cheapest chunking of each unit that
fits the target. This is the plan mnv2gen made before depth-first segments, kept as a
scheme of its own and as the plan the segment planner must never be worse than.
"""

from __future__ import annotations

from mnv2gen.ir import Graph
from mnv2gen.planner.candidates import candidates
from mnv2gen.planner.options import Option
from mnv2gen.planner.schedule import FusedUnit

OVERHEAD_BOUND = 0.10


def choose_per_unit(graph: Graph, units, kernel_set: str, budget: int | None,
                    forced) -> list[Option]:
    """Return one Option per unit: a chunking candidate for fused units, the layer else."""
    options = [candidates(graph, u, kernel_set, forced) if isinstance(u, FusedUnit) else None
               for u in units]
    if budget is None:
        allowed = []
        for opts in options:
            if opts is None:
                allowed.append(None)
                continue
            cheapest = min(c.cost for c in opts)
            allowed.append([c for c in opts if c.cost <= cheapest * (1 + OVERHEAD_BOUND)])
    else:
        allowed = options
    target = max((min(c.local_bytes for c in a) for a in allowed if a), default=0)
    if budget is not None:
        target = max(target, budget)
    chosen = []
    for i, a in enumerate(allowed):
        if a is None:
            chosen.append(Option(i, i + 1, "layer", 0, 0.0))
            continue
        fitting = [c for c in a if c.local_bytes <= target] or a
        best = min(fitting, key=lambda c: (c.cost, c.local_bytes, c.chunking.rows))
        chosen.append(Option(i, i + 1, "fused", best.local_bytes, best.cost, best))
    return chosen
