"""From chosen steps to a placed plan: buffers with lifetimes, in-place links, offsets.

Every arena tensor becomes a buffer alive from the step that writes it to the last step
that reads it (graph outputs to the end; RESHAPE views and in-place elementwise outputs
share their input's buffer); every step's scratch (fused unit windows and bands, a
segment's rings, E rings, pool and accumulator) is a buffer alive at that step only.
A step whose output may trail into its consumed input links the two buffers at a fixed
relative offset. Links are dropped one by one, smallest saving first, while the peak
does not grow (a chain of links drifts, which can cost more than it saves).
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.ir import Graph
from mnv2gen.planner import arena
from mnv2gen.planner.arena import Buffer, Placement
from mnv2gen.planner.schedule import FusedUnit, LayerUnit
from mnv2gen.planner.steps import SegmentPlan, Step, UnitPlan

ALIGNMENT = 16


@dataclass(frozen=True)
class StepIO:
    """What a step reads and writes, and how its output may overlap its input."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    input: str | None          # the input an in-place output trails into
    trail: int | None          # output offset minus input offset, when it may trail
    pair_bytes: int            # input and output bytes together at the worst moment


def step_io(graph: Graph, step: Step) -> StepIO:
    """Return the StepIO of a plan step."""
    def activations(names):
        return tuple(n for n in names if not graph.tensor(n).is_const)

    if isinstance(step, SegmentPlan):
        from mnv2gen.planner.options import can_trail

        shape = step.shape
        trail = None
        if shape.slack is not None and can_trail(graph, shape.stages[0]):
            trail = (min(0, shape.slack) // ALIGNMENT) * ALIGNMENT
        reads = () if step.streamed else (step.input,)
        return StepIO(reads, (step.output,), step.input, trail, shape.pair_bytes)
    unit, choice = step.unit, step.choice
    if isinstance(unit, FusedUnit):
        reads = tuple(dict.fromkeys(n for op in unit.ops for n in activations(op.inputs)))
        trail = choice.trail_offset if choice is not None else None
        return StepIO(reads, (unit.output,), unit.input, trail,
                      choice.pair_bytes if choice is not None else 0)
    return StepIO(activations(unit.op.inputs), (unit.output,), None, None, 0)


def buffers_of(graph: Graph, steps: tuple[Step, ...], streamed_input: bool,
               unlinked: frozenset = frozenset()):
    """Return (buffers, buffer_of, groups, allowed in-place pairs, per-step StepIO)."""
    last = len(steps) - 1
    ios = [step_io(graph, s) for s in steps]
    producer_step, reader_steps = {}, {}
    for i, io in enumerate(ios):
        for n in io.reads:
            reader_steps.setdefault(n, []).append(i)
        for n in io.writes:
            producer_step[n] = i
    buffer_of: dict[str, str] = {}
    for s in steps:
        if isinstance(s, UnitPlan) and isinstance(s.unit, LayerUnit) and s.unit.alias_of:
            buffer_of[s.unit.output] = buffer_of.get(s.unit.alias_of, s.unit.alias_of)
    spans: dict[str, list[int]] = {}
    for t in graph.activation_tensors():
        name = t.name
        if name not in producer_step and name not in graph.inputs:
            continue  # an inner tensor of a fused unit or segment: never materialised
        if name in graph.inputs and streamed_input:
            continue  # rows arrive into the first segment's input ring
        root = buffer_of.get(name, name)
        first = producer_step.get(name, 0)
        stop = last if name in graph.outputs else max(reader_steps.get(name, [first]))
        lo, hi = spans.get(root, [first, stop])
        spans[root] = [min(lo, first), max(hi, stop)]
        buffer_of.setdefault(name, root)
    buffers = [Buffer(root, graph.tensor(root).size_bytes, lo, hi)
               for root, (lo, hi) in spans.items()]
    groups: dict[str, tuple[str, int]] = {}
    allowed: set[frozenset[str]] = set()
    for i, (s, io) in enumerate(zip(steps, ios, strict=True)):
        buffers += [Buffer(f"{s.name}.{k}", v, i, i) for k, v in s.scratch.items() if v]
        if io.trail is None or i in unlinked or io.input not in buffer_of:
            continue
        x, y = buffer_of[io.input], buffer_of[io.writes[0]]
        if spans[x][1] != i or io.input in graph.outputs:
            continue  # the input is read after this step: it cannot be overwritten
        gid, rel = groups.get(x, (x, 0))
        groups[x] = (gid, rel)
        groups[y] = (gid, rel + io.trail)
        allowed.add(frozenset((x, y)))
    by_group: dict[str, dict[str, int]] = {}
    for name, (gid, rel) in groups.items():
        by_group.setdefault(gid, {})[name] = rel
    return buffers, buffer_of, list(by_group.values()), allowed, ios


def lower_bound(graph: Graph, buffers, buffer_of, allowed, ios) -> tuple[int, tuple[int, ...]]:
    """Return the largest live byte count over steps, and the count per step.

    At a step whose output trails into its input, the pair counts as the bytes the two
    occupy together at the worst moment (input still to be read + output written).
    """
    per_step = []
    for i, io in enumerate(ios):
        total = arena.live_bytes(buffers, i)
        if io.input is not None and io.input in buffer_of and frozenset(
                (buffer_of[io.input], buffer_of[io.writes[0]])) in allowed:
            both = graph.tensor(io.input).size_bytes + graph.tensor(io.writes[0]).size_bytes
            total += io.pair_bytes - both
        per_step.append(total)
    return max(per_step, default=0), tuple(per_step)


def place(graph: Graph, steps, streamed_input: bool, unlinked=frozenset()):
    """Return (placement, buffer_of, allowed overlaps, lower bound, live bytes per step)."""
    buffers, buffer_of, groups, allowed, ios = buffers_of(graph, steps, streamed_input,
                                                          unlinked)
    placement = arena.place(buffers, groups, ALIGNMENT)
    arena.check(placement, allowed)
    lower, per_step = lower_bound(graph, buffers, buffer_of, allowed, ios)
    return placement, buffer_of, frozenset(allowed), lower, per_step


def place_best(graph: Graph, steps, streamed_input: bool):
    """Return place()'s result keeping only the in-place links that lower the peak."""
    result = place(graph, steps, streamed_input)
    ios = [step_io(graph, s) for s in steps]
    linked = [i for i, io in enumerate(ios) if io.trail is not None]
    saving = {i: graph.tensor(ios[i].input).size_bytes
              + graph.tensor(ios[i].writes[0]).size_bytes - ios[i].pair_bytes for i in linked}
    unlinked: frozenset[int] = frozenset()
    for i in sorted(linked, key=lambda s: (saving[s], s)):
        trial = place(graph, steps, streamed_input, unlinked | {i})
        if trial[0].arena_bytes <= result[0].arena_bytes:
            result, unlinked = trial, unlinked | {i}
    return result


def check_placement(placement: Placement, allowed) -> list[str]:
    """Return the overlaps of a placement outside the allowed in-place pairs."""
    return arena.overlaps(placement, set(allowed))
