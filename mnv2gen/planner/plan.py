"""The memory plan: units, their chunking, buffers, in-place writes and arena offsets.

`plan_model` chains the planner's steps:
1. cut the graph into units (fused blocks, or single layers for the baseline);
2. list each unit's chunking candidates with their scratch bytes and compute cost;
3. pick one per unit: the smallest peak within a bounded compute overhead, or the
   cheapest plan that fits a RAM budget;
4. turn tensors into buffers with lifetimes; link an output written in place over its
   input (shortcut ADD, trailing writes) into one group with a fixed relative offset;
5. place the buffers (greedy best fit), check overlaps, compute the lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mnv2gen.errors import MnvError
from mnv2gen.ir import Graph
from mnv2gen.planner import arena
from mnv2gen.planner.arena import Buffer, Placement
from mnv2gen.planner.candidates import Candidate, candidates, layer_scratch
from mnv2gen.planner.schedule import FusedUnit, LayerUnit, Unit, build_units

SCHEMES = ("layer", "bottleneck", "auto")
# Default objective: minimise the peak among chunkings that cost at most this much more
# than the unit's cheapest chunking.
OVERHEAD_BOUND = 0.10
# Kernel sets whose default plans keep the memory of another set's plans: the generated
# kernels need no scratch, like the portable ones, and run today's plans (the same arena
# bytes) with the chunking inside each unit's memory picked by their own prices.
MEMORY_REFERENCE = {"generated": "portable"}
ALIGNMENT = 16


@dataclass(frozen=True)
class UnitPlan:
    """One unit at one step, with its chosen chunking (fused units) and scratch."""

    step: int
    unit: Unit
    choice: Candidate | None
    scratch: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Return the unit's name."""
        return self.unit.name


@dataclass(frozen=True)
class Plan:
    """A complete, checked memory plan of a graph."""

    graph: Graph
    scheme: str
    kernel_set: str
    units: tuple[UnitPlan, ...]
    buffer_of: dict[str, str]          # tensor name -> buffer name (aliases share one)
    placement: Placement
    allowed_overlaps: frozenset
    lower_bound_bytes: int
    live_bytes: tuple[int, ...]        # per step, the placement-free live bytes

    @property
    def peak_bytes(self) -> int:
        """Return the arena size the plan needs."""
        return self.placement.arena_bytes

    def offset(self, tensor_or_buffer: str) -> int:
        """Return the arena offset of a tensor (through its buffer) or scratch buffer."""
        return self.placement.offsets[self.buffer_of.get(tensor_or_buffer, tensor_or_buffer)]


def _activation_names(graph: Graph) -> list[str]:
    return [t.name for t in graph.activation_tensors()]


def _choose(graph: Graph, units, kernel_set: str, budget: int | None, forced):
    """Return one candidate per fused unit (None for layer units).

    Default objective: the smallest unit-local peak reachable within OVERHEAD_BOUND of
    each unit's cheapest chunking, then per unit the cheapest chunking within that peak.
    A kernel set in MEMORY_REFERENCE takes the peak from its reference set's prices
    (same scratch rules) and only the choice within it from its own.
    """
    options = [candidates(graph, u, kernel_set, forced) if isinstance(u, FusedUnit) else None
               for u in units]
    reference = MEMORY_REFERENCE.get(kernel_set)
    if budget is None and reference is not None:
        target_plan = _choose(graph, units, reference, None, forced)
        target = max((c.local_bytes for c in target_plan if c is not None), default=0)
        return [None if opts is None else
                min([c for c in opts if c.local_bytes <= target] or opts,
                    key=lambda c: (c.cost, c.local_bytes, c.chunking.rows))
                for opts in options]
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
    for a in allowed:
        if a is None:
            chosen.append(None)
            continue
        fitting = [c for c in a if c.local_bytes <= target] or a
        chosen.append(min(fitting, key=lambda c: (c.cost, c.local_bytes, c.chunking.rows)))
    return chosen


def _buffers(graph: Graph, units, chosen, layer_scratch_bytes, unlinked=frozenset()):
    """Return (buffers, buffer_of, groups, allowed in-place pairs).

    Units in `unlinked` keep their output apart from their input even where an in-place
    write would be safe.
    """
    last = len(units) - 1
    producer_step, reader_steps = {}, {}
    for step, u in enumerate(units):
        ops = u.ops if isinstance(u, FusedUnit) else (u.op,)
        outs = {u.output} if isinstance(u, FusedUnit) else {u.output}
        for op in ops:
            for n in op.inputs:
                if not graph.tensor(n).is_const:
                    reader_steps.setdefault(n, []).append(step)
        for n in outs:
            producer_step[n] = step
    buffer_of: dict[str, str] = {}
    for u in units:
        if isinstance(u, LayerUnit) and u.alias_of is not None:
            buffer_of[u.output] = buffer_of.get(u.alias_of, u.alias_of)
    spans: dict[str, list[int]] = {}
    for name in _activation_names(graph):
        if name not in producer_step and name not in graph.inputs:
            continue  # an inner tensor of a fused unit: never materialised
        root = buffer_of.get(name, name)
        first = producer_step.get(name, 0)
        stop = last if name in graph.outputs else max(reader_steps.get(name, [first]))
        lo, hi = spans.get(root, [first, stop])
        spans[root] = [min(lo, first), max(hi, stop)]
        buffer_of.setdefault(name, root)
    buffers = [Buffer(root, graph.tensor(root).size_bytes, lo, hi)
               for root, (lo, hi) in spans.items()]
    groups: dict[str, tuple[int, int]] = {}  # buffer -> (group id, relative offset)
    allowed: set[frozenset[str]] = set()
    for step, (u, c) in enumerate(zip(units, chosen, strict=True)):
        scratch = c.scratch if c is not None else layer_scratch_bytes[step]
        buffers += [Buffer(f"{u.name}.{k}", v, step, step) for k, v in scratch.items() if v]
        if c is None or c.trail_offset is None or step in unlinked:
            continue
        x, y = buffer_of[u.input], buffer_of[u.output]
        if spans[x][1] != step or u.input in graph.outputs:
            continue  # the input is read after this unit: it cannot be overwritten
        gid, rel = groups.get(x, (x, 0))
        groups[x] = (gid, rel)
        groups[y] = (gid, rel + c.trail_offset)
        allowed.add(frozenset((x, y)))
    by_group: dict[str, dict[str, int]] = {}
    for name, (gid, rel) in groups.items():
        by_group.setdefault(gid, {})[name] = rel
    return buffers, buffer_of, list(by_group.values()), allowed


def _lower_bound(graph, units, chosen, buffers, buffer_of, allowed):
    """Return the largest live byte count over steps, and the count per step.

    At a fused unit that writes its output over its input, the pair counts as the bytes
    the two occupy together at the worst band (input not yet consumed + output written).
    """
    per_step = []
    for step, (u, c) in enumerate(zip(units, chosen, strict=True)):
        total = arena.live_bytes(buffers, step)
        if c is not None and frozenset((buffer_of[u.input], buffer_of[u.output])) in allowed:
            both = graph.tensor(u.input).size_bytes + graph.tensor(u.output).size_bytes
            total += c.pair_bytes - both
        per_step.append(total)
    return max(per_step, default=0), tuple(per_step)


def plan_model(graph: Graph, scheme: str = "auto", kernel_set: str = "portable",
               ram_budget: int | None = None, forced=None) -> Plan:
    """Return the checked memory plan of `graph`.

    scheme: "layer" (every tensor materialised, the baseline), "bottleneck" (fused
    blocks with chunked expansion), or "auto" (bottleneck where blocks exist).
    ram_budget: pick the cheapest chunkings whose plan fits in this many bytes; raises
    MnvError with the smallest achievable peak when nothing fits.
    forced: a Chunking to impose on every fused unit (tests and experiments).
    """
    if scheme not in SCHEMES:
        raise MnvError(f"unknown scheme {scheme!r}", f"schemes: {', '.join(SCHEMES)}")
    units = build_units(graph, fuse=scheme != "layer")
    layer_scratch_bytes = [layer_scratch(graph, u, kernel_set) if isinstance(u, LayerUnit)
                           else {} for u in units]
    plan = _assemble(graph, scheme, kernel_set, units,
                     _choose(graph, units, kernel_set, None, forced), layer_scratch_bytes)
    if ram_budget is None or plan.peak_bytes <= ram_budget:
        return plan
    best = _assemble(graph, scheme, kernel_set, units,
                     _choose(graph, units, kernel_set, 0, forced), layer_scratch_bytes)
    if best.peak_bytes > ram_budget:
        raise MnvError(
            f"{graph.name}: no plan fits in {ram_budget:,} bytes; the smallest achievable "
            f"peak is {best.peak_bytes:,} bytes ({best.peak_bytes - ram_budget:,} over)",
            "raise --ram-budget or pick a smaller model (alpha or resolution)")
    target = ram_budget
    while True:  # tighten until the placed arena fits; ends at `best` at the latest
        plan = _assemble(graph, scheme, kernel_set, units,
                         _choose(graph, units, kernel_set, target, forced),
                         layer_scratch_bytes)
        if plan.peak_bytes <= ram_budget or target <= 0:
            return plan if plan.peak_bytes <= ram_budget else best
        target -= max(plan.peak_bytes - ram_budget, ALIGNMENT)


def _assemble(graph, scheme, kernel_set, units, chosen, layer_scratch_bytes) -> Plan:
    """Return the placed plan, keeping only the in-place links that lower the peak.

    Every safe in-place write links an output to its input at a fixed distance. A chain
    of links drifts (each output starts a little below its input), which can cost more
    than it saves, so links are dropped one by one, smallest saving first, while the
    peak does not grow.
    """
    plan = _place(graph, scheme, kernel_set, units, chosen, layer_scratch_bytes, frozenset())
    linked = [s for s, (u, c) in enumerate(zip(units, chosen, strict=True))
              if c is not None and c.trail_offset is not None]
    saving = {s: graph.tensor(units[s].input).size_bytes
              + graph.tensor(units[s].output).size_bytes - chosen[s].pair_bytes for s in linked}
    unlinked: frozenset[int] = frozenset()
    for step in sorted(linked, key=lambda s: (saving[s], s)):
        trial = _place(graph, scheme, kernel_set, units, chosen, layer_scratch_bytes,
                       unlinked | {step})
        if trial.peak_bytes <= plan.peak_bytes:
            plan, unlinked = trial, unlinked | {step}
    return plan


def _place(graph, scheme, kernel_set, units, chosen, layer_scratch_bytes, unlinked) -> Plan:
    buffers, buffer_of, groups, allowed = _buffers(graph, units, chosen, layer_scratch_bytes,
                                                   unlinked)
    placement = arena.place(buffers, groups, ALIGNMENT)
    arena.check(placement, allowed)
    lower, per_step = _lower_bound(graph, units, chosen, buffers, buffer_of, allowed)
    unit_plans = tuple(
        UnitPlan(step, u, c, dict(c.scratch) if c else dict(layer_scratch_bytes[step]))
        for step, (u, c) in enumerate(zip(units, chosen, strict=True)))
    return Plan(graph, scheme, kernel_set, unit_plans, buffer_of, placement,
                frozenset(allowed), lower, per_step)
