"""Pick options covering the unit chain: dynamic programming over chain positions.

Default objective: the smallest peak whose cheapest covering stays within the
instruction-overhead bound (total cost at most (1 + OVERHEAD_BOUND) times the cost of the
layer-by-layer schedule, or the cheapest covering's cost when that is more). For a peak
P, `cheapest` finds the least total cost of a covering whose every option needs at most
P bytes (a shortest path over positions);
the smallest feasible P is found by bisection over the options' byte counts, since the
cheapest cost only falls as P grows. Under a RAM budget: the cheapest covering within it.
"""

from __future__ import annotations

from mnv2gen.planner.options import Option

OVERHEAD_BOUND = 0.02
# Per kernel set. The portable prices predict plans within ~1 %; CMSIS-NN's speed depends
# on each call's shape (pixels, widths, padding) more than its prices say (bands and
# tiles measured 2-5x the overhead priced), but a tighter bound for it costs far more
# RAM than it saves time, so the bound is the same.
OVERHEAD_BOUNDS = {"portable": OVERHEAD_BOUND, "generated": OVERHEAD_BOUND,
                   "cmsis-c": OVERHEAD_BOUND,
                   "cmsis-dsp": OVERHEAD_BOUND, "cmsis-mve": OVERHEAD_BOUND}


def cheapest(options_by_stop: dict[int, list[Option]], count: int, peak: float,
             must_start: set[int] | None = None) -> tuple[float, list[Option]]:
    """Return (total cost, options) of the cheapest covering of positions 0..count with
    every option's local bytes <= peak (inf, [] when none). `must_start`: positions
    where only segment options may begin (a streamed input at position 0)."""
    inf = float("inf")
    best = [inf] * (count + 1)
    back: list[Option | None] = [None] * (count + 1)
    best[0] = 0.0
    for stop in range(1, count + 1):
        for opt in options_by_stop.get(stop, ()):
            if opt.local_bytes > peak or best[opt.first] == inf:
                continue
            if must_start and opt.first in must_start and opt.kind != "segment":
                continue
            total = best[opt.first] + opt.cost
            if total < best[stop] - 1e-9 or (abs(total - best[stop]) <= 1e-9 and back[stop]
                                             and opt.local_bytes < back[stop].local_bytes):
                best[stop], back[stop] = total, opt
    if best[count] == inf:
        return inf, []
    chosen, at = [], count
    while at > 0:
        opt = back[at]
        chosen.append(opt)
        at = opt.first
    return best[count], chosen[::-1]


def choose(options: list[Option], count: int, ram_budget: int | None = None,
           must_start: set[int] | None = None, reference_cost: float = 0.0,
           bound: float = OVERHEAD_BOUND) -> list[Option]:
    """Return the chosen options in chain order (see the module docstring).

    reference_cost: the layer-by-layer schedule's cost; the overhead bound (`bound`, a
    fraction) is relative to it (or to the cheapest covering when even that costs more)."""
    by_stop: dict[int, list[Option]] = {}
    for opt in options:
        by_stop.setdefault(opt.stop, []).append(opt)
    if ram_budget is not None:
        cost, chosen = cheapest(by_stop, count, ram_budget, must_start)
        return chosen
    free_cost, _ = cheapest(by_stop, count, float("inf"), must_start)
    limit = max(reference_cost * (1 + bound), free_cost)
    peaks = sorted({opt.local_bytes for opt in options})
    lo, hi = 0, len(peaks) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        cost, _ = cheapest(by_stop, count, peaks[mid], must_start)
        if cost <= limit:
            hi = mid
        else:
            lo = mid + 1
    _, chosen = cheapest(by_stop, count, peaks[lo], must_start)
    return chosen


def smallest_peak(options: list[Option], count: int, must_start: set[int] | None = None
                  ) -> int:
    """Return the smallest peak (max local bytes) any covering reaches, cost ignored."""
    by_stop: dict[int, list[Option]] = {}
    for opt in options:
        by_stop.setdefault(opt.stop, []).append(opt)
    peaks = sorted({opt.local_bytes for opt in options})
    lo, hi = 0, len(peaks) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cheapest(by_stop, count, peaks[mid], must_start)[0] < float("inf"):
            hi = mid
        else:
            lo = mid + 1
    return peaks[lo]
