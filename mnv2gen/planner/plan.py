"""The memory plan: steps (units or depth-first segments), buffers, in-place writes, offsets.

`plan_model` chains the planner's steps:
1. cut the graph into units (fused blocks, or single layers for the baseline);
2. list the options for every stretch of units: each unit on its own with each chunking
   candidate (today's per-unit plan), and chains of units as depth-first segments with
   column-tile policies (mnv2gen.planner.options);
3. pick a covering of the chain by dynamic programming: the smallest peak within the
   instruction-overhead bound, or the cheapest plan that fits a RAM budget
   (mnv2gen.planner.choose); never worse than the per-unit plan;
4. turn tensors into buffers with lifetimes, link outputs written in place over their
   inputs, place them (greedy best fit), check overlaps and every segment's rings,
   compute the lower bound (mnv2gen.planner.assemble).
Schemes: "layer" (every tensor materialised, the baseline), "bottleneck" (fused units
with chunked expansion, one unit per step: the per-unit plan), "auto" (segments too).
Input modes: "resident" (the image lives in the arena) or "streamed" (rows arrive into
the first segment's input ring; only with "auto").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mnv2gen.errors import IRError, MnvError, file_label, quoted
from mnv2gen.ir import Graph
from mnv2gen.planner import assemble
from mnv2gen.planner.arena import Placement
from mnv2gen.planner.candidates import candidates
from mnv2gen.planner.check import plan_problems
from mnv2gen.planner.choose import OVERHEAD_BOUNDS, choose, smallest_peak
from mnv2gen.planner.options import Option, segment_options, stage_kernel_bytes, unit_options
from mnv2gen.planner.per_unit import choose_per_unit
from mnv2gen.planner.schedule import build_units, first_op, unit_name
from mnv2gen.planner.segment_shape import build_shape
from mnv2gen.planner.stages import chains
from mnv2gen.planner.steps import INPUT_MODES, SegmentPlan, Step, UnitPlan, segment_scratch

SCHEMES = ("layer", "bottleneck", "auto")
# Kernel sets whose plans keep the memory of another set's plans: the generated kernels
# need no scratch, like the portable ones, and run the portable plan (the same steps and
# segments, at most its arena bytes) with the chunking inside each fused unit's memory
# picked by their own prices.
MEMORY_REFERENCE = {"generated": "portable"}
ALIGNMENT = 16

__all__ = ["Plan", "plan_model", "plan_problems", "UnitPlan", "SegmentPlan", "SCHEMES",
           "INPUT_MODES"]


@dataclass(frozen=True)
class Plan:
    """A complete, checked memory plan of a graph."""

    graph: Graph
    scheme: str
    kernel_set: str
    units: tuple[Step, ...]            # the plan steps, in order
    buffer_of: dict[str, str]          # tensor name -> buffer name (aliases share one)
    placement: Placement
    allowed_overlaps: frozenset
    lower_bound_bytes: int
    live_bytes: tuple[int, ...]        # per step, the placement-free live bytes
    input_mode: str = "resident"

    @property
    def peak_bytes(self) -> int:
        """Return the arena size the plan needs."""
        return self.placement.arena_bytes

    @property
    def steps(self) -> tuple[Step, ...]:
        """Return the plan steps (the same as `units`)."""
        return self.units

    @property
    def segments(self) -> tuple[SegmentPlan, ...]:
        """Return the steps that are depth-first segments."""
        return tuple(s for s in self.units if isinstance(s, SegmentPlan))

    def offset(self, tensor_or_buffer: str) -> int:
        """Return the arena offset of a tensor (through its buffer) or scratch buffer."""
        return self.placement.offsets[self.buffer_of.get(tensor_or_buffer, tensor_or_buffer)]

    def input_ring(self) -> tuple[int, int] | None:
        """Return (offset, rows) of a streamed input's ring, None for a resident input."""
        if self.input_mode != "streamed":
            return None
        seg = self.units[0]
        width = seg.shape.stages[0].in_shape[1]
        return self.offset(f"{seg.name}.ring0"), seg.shape.ring_pixels[0] // width


def _steps(graph: Graph, units, chosen: list[Option], kernel_set: str) -> tuple[Step, ...]:
    """Return plan steps for chosen options (segments get their exact shapes)."""
    stages = chains(graph, units)
    steps: list[Step] = []
    taken = {u.name for u in units}
    for opt in chosen:
        index = len(steps)
        if opt.kind == "segment":
            chain = tuple(stages[opt.first:opt.stop])
            kernel = tuple(stage_kernel_bytes(graph, st, kernel_set) for st in chain)
            shape = build_shape(chain, opt.widths, opt.streamed, kernel)
            name = unit_name(first_op(units[opt.first]), "segment", taken)
            steps.append(SegmentPlan(index, name, tuple(units[opt.first:opt.stop]), shape,
                                     segment_scratch(shape)))
        else:
            from mnv2gen.planner.candidates import layer_scratch

            unit = units[opt.first]
            scratch = dict(opt.candidate.scratch) if opt.candidate else \
                layer_scratch(graph, unit, kernel_set)
            steps.append(UnitPlan(index, unit, opt.candidate, scratch))
    return tuple(steps)


def _build(graph, scheme, kernel_set, steps, input_mode) -> Plan:
    placement, buffer_of, allowed, lower, per_step = assemble.place_best(
        graph, steps, input_mode == "streamed")
    plan = Plan(graph, scheme, kernel_set, steps, buffer_of, placement, allowed, lower,
                per_step, input_mode)
    problems = plan_problems(plan)
    if problems:
        raise IRError("the plan fails the static check: " + "; ".join(problems[:3]))
    return plan


def _per_unit(graph, scheme, kernel_set, units, budget, forced) -> tuple[Step, ...]:
    chosen = choose_per_unit(graph, units, kernel_set, budget, forced)
    return _steps(graph, units, chosen, kernel_set)


def _too_small(graph: Graph, ram_budget: int, best: Plan) -> MnvError:
    return MnvError(
        f"{file_label(graph.name)}: no plan fits in {ram_budget:,} bytes; the smallest achievable "
        f"peak is {best.peak_bytes:,} bytes ({best.peak_bytes - ram_budget:,} over)",
        "raise --ram-budget or pick a smaller model (alpha or resolution)")


def plan_model(graph: Graph, scheme: str = "auto", kernel_set: str = "portable",
               ram_budget: int | None = None, forced=None,
               input_mode: str = "resident") -> Plan:
    """Return the checked memory plan of `graph`.

    scheme: "layer", "bottleneck" or "auto" (see the module docstring).
    ram_budget: pick the cheapest plan whose arena fits in this many bytes; raises
    MnvError with the smallest achievable peak when nothing fits.
    forced: a Chunking to impose on every fused unit, per-unit steps only (tests).
    input_mode: "resident" or "streamed" (the input arrives row by row).
    """
    if scheme not in SCHEMES:
        raise MnvError(f"unknown scheme {quoted(scheme)}", f"schemes: {', '.join(SCHEMES)}")
    if kernel_set in MEMORY_REFERENCE:
        reference = plan_model(graph, scheme, MEMORY_REFERENCE[kernel_set], ram_budget,
                               forced, input_mode)
        return _with_own_prices(graph, reference, kernel_set, forced)
    if input_mode not in INPUT_MODES:
        raise MnvError(f"unknown input mode {quoted(input_mode)}",
                       f"input modes: {', '.join(INPUT_MODES)}")
    streamed = input_mode == "streamed"
    if streamed and (scheme != "auto" or forced is not None):
        raise MnvError("a streamed input needs the auto scheme (depth-first segments)",
                       "use --scheme auto with --input-mode streamed")
    units = build_units(graph, fuse=scheme != "layer")
    if scheme != "auto" or forced is not None:
        return _fit_per_unit(graph, scheme, kernel_set, units, ram_budget, forced)
    per_unit = _build(graph, "bottleneck", kernel_set,
                      _per_unit(graph, "bottleneck", kernel_set, units, None, None),
                      "resident")
    ceiling = per_unit.peak_bytes  # a feasible peak: chains keeping more cannot help
    options = unit_options(graph, units, kernel_set, None)
    options += segment_options(graph, units, kernel_set, streamed, ceiling)
    must_start = {0} if streamed else None
    if streamed and not any(o.kind == "segment" and o.first == 0 for o in options):
        raise MnvError(f"{file_label(graph.name)}: the first layer cannot read its input "
                       "row by row",
                       "streamed input needs a convolution (or requantisation) as the "
                       "first layer; use --input-mode resident")
    count = len(units)
    if ram_budget is None:
        plan = _choose_and_build(graph, scheme, kernel_set, units, options, must_start,
                                 input_mode)
        if not streamed and per_unit.peak_bytes < plan.peak_bytes:
            return replace(per_unit, scheme=scheme)
        return plan
    target = ram_budget
    while target > 0:  # tighten until the placed arena fits
        chosen = choose(options, count, target, must_start)
        if not chosen:
            break
        plan = _build(graph, scheme, kernel_set, _steps(graph, units, chosen, kernel_set),
                      input_mode)
        if plan.peak_bytes <= ram_budget:
            return plan
        target -= max(plan.peak_bytes - ram_budget, ALIGNMENT)
    floor = smallest_peak(options, count, must_start)
    best = _build(graph, scheme, kernel_set,
                  _steps(graph, units, choose(options, count, floor, must_start), kernel_set),
                  input_mode)
    if best.peak_bytes <= ram_budget:
        return best
    raise _too_small(graph, ram_budget, best)


def _with_own_prices(graph: Graph, reference: Plan, kernel_set: str, forced) -> Plan:
    """Return `reference` re-costed for `kernel_set` (MEMORY_REFERENCE): the same steps,
    each fused unit step with the cheapest chunking under `kernel_set`'s prices among
    those needing no more bytes than the reference's; the reference's own chunkings when
    that placement would need a larger arena."""
    steps: list[Step] = []
    for step in reference.units:
        if isinstance(step, UnitPlan) and step.choice is not None:
            fitting = [c for c in candidates(graph, step.unit, kernel_set, forced)
                       if c.local_bytes <= step.choice.local_bytes]
            if fitting:
                best = min(fitting, key=lambda c: (c.cost, c.local_bytes, c.chunking.rows))
                step = UnitPlan(step.step, step.unit, best, dict(best.scratch))
        steps.append(step)
    plan = _build(graph, reference.scheme, kernel_set, tuple(steps), reference.input_mode)
    if plan.peak_bytes > reference.peak_bytes:
        plan = replace(reference, kernel_set=kernel_set)
    return plan


REPAIRS = 3


def _true_bytes(plan: Plan, options, chosen) -> list[Option]:
    """Return `options` with each chosen option's bytes raised to what its step really
    holds in the placed plan (an in-place link the placement dropped, a segment whose
    exact rings exceed the DP's estimate)."""
    fixed = {id(opt): live for opt, live in zip(chosen, plan.live_bytes, strict=True)
             if live > opt.local_bytes}
    return [replace(o, local_bytes=fixed[id(o)]) if id(o) in fixed else o for o in options]


def layer_reference_cost(graph: Graph, kernel_set: str) -> float:
    """Return the planner's cost of the layer-by-layer schedule of `graph`."""
    from mnv2gen.ir import OpKind
    from mnv2gen.planner.segment_cost import layer_cost

    return sum(layer_cost(graph, op, kernel_set) for op in graph.ops
               if op.kind is not OpKind.RESHAPE)


def _choose_and_build(graph, scheme, kernel_set, units, options, must_start, input_mode):
    """Return the plan of the DP's choice, re-chosen up to REPAIRS times with the true
    bytes of the options it chose (see _true_bytes) while that lowers the peak."""
    reference = layer_reference_cost(graph, kernel_set)
    bound = OVERHEAD_BOUNDS[kernel_set]
    chosen = choose(options, len(units), None, must_start, reference, bound)
    plan = _build(graph, scheme, kernel_set, _steps(graph, units, chosen, kernel_set),
                  input_mode)
    for _ in range(REPAIRS):
        repaired = _true_bytes(plan, options, chosen)
        if all(a is b for a, b in zip(repaired, options, strict=True)):
            break
        options = repaired
        again = choose(options, len(units), None, must_start, reference, bound)
        trial = _build(graph, scheme, kernel_set, _steps(graph, units, again, kernel_set),
                       input_mode)
        if trial.peak_bytes >= plan.peak_bytes:
            break
        plan, chosen = trial, again
    return plan


def _fit_per_unit(graph, scheme, kernel_set, units, ram_budget, forced) -> Plan:
    """Return the per-unit plan; under a budget the cheapest chunkings that fit."""
    def build(budget):
        return _build(graph, scheme, kernel_set,
                      _per_unit(graph, scheme, kernel_set, units, budget, forced), "resident")

    plan = build(None)
    if ram_budget is None or plan.peak_bytes <= ram_budget:
        return plan
    best = build(0)
    if best.peak_bytes > ram_budget:
        raise _too_small(graph, ram_budget, best)
    target = ram_budget
    while True:  # tighten until the placed arena fits; ends at `best` at the latest
        plan = build(target)
        if plan.peak_bytes <= ram_budget or target <= 0:
            return plan if plan.peak_bytes <= ram_budget else best
        target -= max(plan.peak_bytes - ram_budget, ALIGNMENT)
