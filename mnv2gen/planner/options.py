"""What the plan may do for each stretch of the unit chain, with its bytes and its cost.

An `Option` covers units [first, stop): a layer unit on whole tensors, a fused unit with
one chunking candidate (row bands, channel groups), or a depth-first segment with one
column-tile policy. `local_bytes` are the bytes the option needs while it runs (its
whole input and output tensors, counted once when the output trails into the input,
plus all its scratch); `cost` is the planner's instruction estimate.

Segment options: for every chain of linked stages, each stage may use tiles of
1, 2, 4, ... or all output columns. A policy caps the transient pool at T bytes and lets
every stage take its widest tile within T. Rings hardly depend on tile widths, so the
shape is computed once per chain (with full-width tiles) and the pool per policy from
the stages' layouts; the chosen segments get their exact shapes, and the plan re-chooses
where those hold more (mnv2gen.planner.plan).
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.ir import Graph, OpKind
from mnv2gen.planner.candidates import Candidate, candidates, layer_scratch
from mnv2gen.planner.schedule import FusedUnit, LayerUnit, Unit
from mnv2gen.planner.scratch import conv_scratch, depthwise_scratch
from mnv2gen.planner.segment_cost import layer_cost, segment_cost
from mnv2gen.planner.segment_shape import shape_summary, stage_layout
from mnv2gen.planner.stages import Stage, chains, links

# Longest chain tried (longer chains also stop once what they keep exceeds the per-unit
# plan's peak).
MAX_STAGES = 24


@dataclass(frozen=True)
class Option:
    """One way to run units [first, stop)."""

    first: int
    stop: int
    kind: str                       # "layer", "fused" or "segment"
    local_bytes: int
    cost: float
    candidate: Candidate | None = None
    widths: tuple[int, ...] = ()
    streamed: bool = False


def _layer_local(graph: Graph, unit: LayerUnit, scratch: dict[str, int]) -> int:
    ins = [graph.tensor(n).size_bytes for n in unit.op.inputs if not graph.tensor(n).is_const]
    out = graph.tensor(unit.output).size_bytes
    io = max(sum(ins), out) if unit.alias_of is not None else sum(ins) + out
    return io + sum(scratch.values())


def unit_options(graph: Graph, units: tuple[Unit, ...], kernel_set: str, forced
                 ) -> list[Option]:
    """Return the per-unit options (today's plan space): layers and fused chunkings."""
    result = []
    for i, u in enumerate(units):
        if isinstance(u, FusedUnit):
            for c in candidates(graph, u, kernel_set, forced):
                result.append(Option(i, i + 1, "fused", c.local_bytes, c.cost, c))
        else:
            scratch = layer_scratch(graph, u, kernel_set)
            cost = 0.0 if (u.alias_of is not None and u.op.kind is OpKind.RESHAPE) \
                else layer_cost(graph, u.op, kernel_set)
            result.append(Option(i, i + 1, "layer", _layer_local(graph, u, scratch), cost))
    return result


def stage_kernel_bytes(graph: Graph, st: Stage, kernel_set: str) -> int:
    """Return the largest kernel scratch any call of the stage makes under `kernel_set`."""
    sizes = [0]
    for op in (st.producer, st.window_op):
        if op is None:
            continue
        _, kh, kw, c = graph.tensor(op.inputs[1]).shape
        a = op.attrs
        if op.kind is OpKind.CONV_2D:
            sizes.append(conv_scratch(kernel_set, c, kh, kw, a.stride_h,
                                      a.padding != type(a.padding)()))
        else:
            channels = graph.tensor(op.inputs[0]).shape[3]
            sizes.append(depthwise_scratch(kernel_set, channels, kh, kw, a.padding.top,
                                           a.padding.left, a.depth_multiplier))
    return max(sizes)


def widths_of(st: Stage) -> tuple[int, ...]:
    """Return the tile widths a stage may use, widest first."""
    full = st.out_shape[1]
    return tuple(sorted({full} | {1 << k for k in range(12) if (1 << k) < full},
                        reverse=True))


def can_trail(graph: Graph, st: Stage) -> bool:
    """Return True when the segment's output may be written over its consumed input."""
    readers = graph.consumers(st.input)
    return (st.kind != "pool" and st.input not in graph.outputs
            and all(op in st.ops for op in readers))


def _policies(stages: tuple[Stage, ...], kernel: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Return the distinct width tuples of all pool caps, from widest to narrowest."""
    per_stage = []
    for st, k in zip(stages, kernel, strict=True):
        per_stage.append([(w, stage_layout(st, w, k).total) for w in widths_of(st)])
    caps = sorted({total for options in per_stage for _, total in options}, reverse=True)
    seen, result = set(), []
    for cap in caps:
        choice = tuple(next((w for w, total in options if total <= cap), options[-1][0])
                       for options in per_stage)
        if choice not in seen:
            seen.add(choice)
            result.append(choice)
    return result


def segment_options(graph: Graph, units: tuple[Unit, ...], kernel_set: str, streamed: bool,
                    ceiling: int) -> list[Option]:
    """Return segment options of every linked chain whose kept state stays below
    `ceiling` bytes (an achievable peak: longer chains cannot be part of a better plan)."""
    stages = chains(graph, units)
    result = []
    for first, st in enumerate(stages):
        if st is None:
            continue
        for stop in range(first + 1, min(len(stages), first + MAX_STAGES) + 1):
            last = stages[stop - 1]
            if last is None or (stop - 1 > first and not links(graph, stages[stop - 2], last)):
                break
            if stop - first == 1 and st.kind not in ("fused", "window") and \
                    not (streamed and first == 0):
                continue  # a lone conv/pool/quantize gains nothing from tiles
            chain = tuple(stages[first:stop])
            more, kept = _chain_options(graph, chain, first, kernel_set, streamed and first == 0)
            result += more
            if last.kind == "pool" or kept >= ceiling:
                break  # a longer chain keeps at least as much: it cannot beat `ceiling`
    return result


def _chain_options(graph: Graph, chain: tuple[Stage, ...], first: int, kernel_set: str,
                   streamed: bool) -> tuple[list[Option], int]:
    kernel = tuple(stage_kernel_bytes(graph, st, kernel_set) for st in chain)
    full = tuple(st.out_shape[1] for st in chain)
    shape = shape_summary(chain, full, streamed, kernel)
    fixed = shape.fixed_bytes + shape.acc_bytes
    in_bytes = 0 if streamed else graph.tensor(chain[0].input).size_bytes
    out_bytes = graph.tensor(chain[-1].output).size_bytes
    io = shape.pair_bytes if (shape.slack is not None and can_trail(graph, chain[0])) \
        else in_bytes + out_bytes
    result = []
    for widths in _policies(chain, kernel):
        pool = max(stage_layout(st, w, k).total
                   for st, w, k in zip(chain, widths, kernel, strict=True))
        result.append(Option(first, first + len(chain), "segment", io + fixed + pool,
                             segment_cost(graph, chain, widths, kernel_set), None, widths,
                             streamed))
    # what any longer chain from the same start keeps at least: the first input (or
    # nothing when streamed), these rings and E rings, and the next stage's input ring
    kept = in_bytes + fixed - shape.acc_bytes
    return result, kept
