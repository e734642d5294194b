"""Chunking candidates of a fused unit, with their scratch bytes, in-place offset and cost.

Cost is in instructions: per kernel kind a price per MAC and per output element, a price
per kernel call and per byte a sliding window moves. The prices were read off per-step
QEMU profiles (`verify(..., profile=True)`) of the shared models on Cortex-M7 (the
portable call price, and mnv2gen.planner.segment_cost's copy prices, from segment steps
against the same operators layer by layer); they rank plans against each other and bound
a plan's instruction overhead over layer by layer. Measured totals live in benchmarks/, not here.
Channel groups run the projection through mnv2gen's own accumulate kernel in both
backends, which is what makes them expensive next to CMSIS-NN's 1x1 convolution.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from mnv2gen.ir import Graph, OpKind
from mnv2gen.planner.chunking import (
    SQUEEZE_STRATEGIES,
    Band,
    Chunking,
    bands,
    group_bounds,
    window_capacity,
    x_rows_read,
)
from mnv2gen.planner.schedule import FusedUnit, LayerUnit
from mnv2gen.planner.scratch import (
    avgpool_scratch,
    conv_scratch,
    depthwise_scratch,
    fully_connected_scratch,
)

MOVE_COST = 0.5
# kernel set -> kind -> (instructions per MAC, per output element); "call" per kernel call
_PORTABLE = {"pointwise": (6.2, 100.0), "conv": (15.0, 0.0), "depthwise": (15.0, 0.0),
             "accumulate": (7.2, 0.0), "requantize": (0.0, 100.0), "add": (0.0, 11.0),
             "activation": (0.0, 40.0), "scale": (0.0, 25.0), "sum": (0.0, 4.0),
             "call": 340.0}
_CMSIS = {"pointwise": (1.4, 43.0), "conv": (4.9, 0.0), "depthwise": (8.3, 0.0),
          "accumulate": (6.2, 0.0), "requantize": (0.0, 100.0), "add": (0.0, 11.0),
          "activation": (0.0, 40.0), "scale": (0.0, 8.0), "sum": (0.0, 4.0),
          "call": 1500.0}
# The generated kernels: per-call microbenchmarks of every layer of a few models on
# Cortex-M7 (benchmarks/planner_prices.py); the grouped projection accumulates with the
# 1x1 kernel's tiles, so groups cost little more than one 1x1 pass here.
_GENERATED = {"pointwise": (0.92, 9.7), "conv": (0.0, 40.6), "depthwise": (1.3, 15.6),
              "accumulate": (0.87, 4.7), "requantize": (0.0, 14.2), "add": (0.0, 15.0),
              # no generated kernel: the portable fallback's prices
              "activation": (0.0, 40.0), "scale": (0.0, 25.0), "sum": (0.0, 4.0),
              "call": 160.0}
PRICES = {"portable": _PORTABLE, "generated": _GENERATED, "cmsis-c": _CMSIS,
          "cmsis-dsp": _CMSIS, "cmsis-mve": _CMSIS}


def _price(kernel_set: str, kind: str, macs: float, outputs: float) -> float:
    per_mac, per_output = PRICES[kernel_set][kind]
    return per_mac * macs + per_output * outputs


def price(kernel_set: str, terms: dict[str, float]) -> float:
    """Return the instructions `terms` cost under a kernel set: "<kind>.mac" and
    "<kind>.out" priced per MAC and per output element, "call" per kernel call, "move" per
    byte a sliding window moves."""
    table = PRICES[kernel_set]
    total = 0.0
    for term, count in terms.items():
        if term == "call":
            total += table["call"] * count
        elif term == "move":
            total += MOVE_COST * count
        else:
            kind, unit = term.split(".")
            total += table[kind][0 if unit == "mac" else 1] * count
    return total


ALIGNMENT = 16
_ROWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
_GROUPS = (1, 2, 3, 4, 6, 8)


@dataclass(frozen=True)
class Candidate:
    """One way to run a fused unit, with everything the planner compares."""

    chunking: Chunking
    bands: tuple[Band, ...]
    groups: tuple[tuple[int, int], ...]
    scratch: dict[str, int]
    trail_offset: int | None   # output offset minus input offset when written in place
    pair_bytes: int            # bytes input and output occupy together at the worst band
    local_bytes: int           # pair (or both tensors) + scratch
    macs: int
    calls: int
    cost: float
    terms: dict[str, int]      # the work counts `cost` prices (see price())


def _row_bytes(graph: Graph, name: str) -> int:
    t = graph.tensor(name)
    return t.size_bytes // t.shape[1]


def _trail(graph: Graph, unit: FusedUnit, band_list, reads) -> tuple[int, int]:
    """Return (unrounded minimal output-minus-input offset, pair bytes) for in-place writes.

    `reads`: per band the rows [start, stop) of the input it reads. Before band b writes
    its output rows, every input row whose last reader is a band <= b is dead; the output
    may cover dead input bytes only.
    """
    height = graph.tensor(unit.input).shape[1]
    last_read = [-1] * height
    for b, (lo, hi) in enumerate(reads):
        for r in range(lo, hi):
            last_read[r] = b
    row_x, row_y = _row_bytes(graph, unit.input), _row_bytes(graph, unit.output)
    dead, slack = 0, None
    for b, band in enumerate(band_list):
        while dead < height and last_read[dead] <= b:
            dead += 1
        room = dead * row_x - band.out_rows[1] * row_y
        slack = room if slack is None else min(slack, room)
    x_bytes = graph.tensor(unit.input).size_bytes
    return slack, x_bytes - min(0, slack)


def _can_write_in_place(graph: Graph, unit: FusedUnit) -> bool:
    readers = graph.consumers(unit.input)
    return unit.input not in graph.outputs and all(op in unit.ops for op in readers)


def _candidate(graph: Graph, unit: FusedUnit, chunking: Chunking, kernel_set: str) -> Candidate:
    """Return one candidate. The unit's *front* (producer, its activation op, depthwise,
    its activation op) runs once per band; the *back* (SE scale, projection, add) after
    it. A squeeze-excite unit runs a first pass of the front to sum the depthwise output
    per channel, then "recompute" runs the front again before the back, "materialise"
    keeps the first pass's output whole (scratch "features") for the back."""
    band_list = bands(graph, unit, chunking)
    dw, proj = unit.depthwise, unit.project
    _, _, width_e, channels_e = graph.tensor(dw.inputs[0]).shape
    _, height_o, width_o, out_c = graph.tensor(proj.outputs[0]).shape
    _, kh, kw, _ = graph.tensor(dw.inputs[1]).shape
    groups = group_bounds(channels_e, chunking.groups)
    widest = max(b - a for a, b in groups)
    rows = chunking.rows
    dw_channels = channels_e * dw.attrs.depth_multiplier
    materialise = unit.se is not None and chunking.squeeze == "materialise"
    scratch = {"dw_out": rows * width_o * widest * dw.attrs.depth_multiplier}
    if unit.se is not None:
        scratch["sums"] = dw_channels * 4
        if materialise:
            del scratch["dw_out"]
            scratch["features"] = height_o * width_o * dw_channels
    kernel = depthwise_scratch(kernel_set, widest, kh, kw, dw.attrs.padding.top,
                               dw.attrs.padding.left, dw.attrs.depth_multiplier)
    producer_kind, produce_macs_per_row = "conv", 0
    if unit.producer is not None:
        scratch["window"] = window_capacity(band_list) * width_e * widest
        w = graph.tensor(unit.producer.inputs[1]).shape
        per_out = w[1] * w[2] * (w[3] if unit.producer.kind is OpKind.CONV_2D else 1)
        produce_macs_per_row = width_e * channels_e * per_out  # every channel of a row
        producer_kind = ("pointwise" if (w[1], w[2]) == (1, 1) else "conv") \
            if unit.producer.kind is OpKind.CONV_2D else "depthwise"
        if unit.producer.kind is OpKind.CONV_2D:
            a = unit.producer.attrs
            kernel = max(kernel, conv_scratch(kernel_set, w[3], w[1], w[2], a.stride_h,
                                              a.padding != type(a.padding)()))
    if unit.se is not None:
        kernel = max([kernel, *(layer_scratch(graph, LayerUnit(op.name, op), kernel_set)
                                .get("kernel", 0) for op in unit.se.excite)])
    if unit.add is not None:
        scratch["shortcut"] = rows * width_o * out_c
    if chunking.groups > 1:
        scratch["acc"] = rows * width_o * out_c * 4
    if kernel:
        scratch["kernel"] = kernel
    scratch = {k: -(-v // ALIGNMENT) * ALIGNMENT for k, v in scratch.items()}

    produced_rows = sum(b.new_rows[1] - b.new_rows[0] for b in band_list)
    produce_macs = produced_rows * produce_macs_per_row  # summed over groups: all channels
    dw_outputs = height_o * width_o * dw_channels
    dw_macs = dw_outputs * kh * kw
    project_macs = height_o * width_o * dw_channels * out_c
    outputs = height_o * width_o * out_c
    front_macs = produce_macs + dw_macs
    front = Counter({f"{producer_kind}.mac": produce_macs,
                     f"{producer_kind}.out": produced_rows * width_e * channels_e,
                     "depthwise.mac": dw_macs, "depthwise.out": dw_outputs,
                     "activation.out": (unit.producer_act is not None) * produced_rows
                     * width_e * channels_e + (unit.depthwise_act is not None) * dw_outputs})
    front["call"] = len(band_list) * chunking.groups * (
        1 + (unit.producer is not None) + (unit.producer_act is not None)
        + (unit.depthwise_act is not None)) + sum(1 for b in band_list if b.keep_rows)
    front["move"] = sum(b.keep_rows for b in band_list) * width_e * channels_e
    terms = Counter(front)
    if chunking.groups > 1:
        terms.update({"accumulate.mac": project_macs,
                      "accumulate.out": outputs * chunking.groups, "requantize.out": outputs})
    else:  # adds to a 1x1 producer's own pointwise terms
        terms.update({"pointwise.mac": project_macs, "pointwise.out": outputs})
    if unit.add is not None:
        terms["add.out"] += outputs
    terms["call"] += len(band_list) * ((unit.add is not None) + (chunking.groups > 1)
                                       + (1 if chunking.groups == 1 else chunking.groups))
    macs = front_macs + project_macs
    if unit.se is not None:
        passes = 1 if materialise else 2
        excite_macs = sum(_layer_macs(graph, op) for op in unit.se.excite)
        macs += (passes - 1) * front_macs + excite_macs
        for term, count in front.items():
            terms[term] += (passes - 1) * count
        terms.update({"sum.out": dw_outputs, "scale.out": dw_outputs,
                      "pointwise.mac": excite_macs,
                      "call": 2 * len(band_list) + 1 + len(unit.se.excite)})
    calls = terms["call"]
    cost = price(kernel_set, terms) + _leftover_cost(graph, unit, band_list, chunking,
                                                     kernel_set)

    # what the output's bands read of the input: with a materialised SE the whole input
    # was read by the first pass (only the shortcut reads it again)
    reads = [b.out_rows if unit.add is not None else (0, 0) for b in band_list] \
        if materialise else x_rows_read(graph, unit, band_list)
    slack, pair = _trail(graph, unit, band_list, reads)
    scratch_total = sum(scratch.values()) + sum(
        -(-graph.tensor(n).size_bytes // ALIGNMENT) * ALIGNMENT for n in unit.inner_tensors)
    if _can_write_in_place(graph, unit):
        trail = (min(0, slack) // ALIGNMENT) * ALIGNMENT
        local = graph.tensor(unit.input).size_bytes - trail + scratch_total
    else:
        trail, pair = None, (graph.tensor(unit.input).size_bytes
                             + graph.tensor(unit.output).size_bytes)
        local = pair + scratch_total
    return Candidate(chunking, band_list, groups, scratch, trail, pair, local, macs, calls,
                     cost, dict(terms))


def _layer_macs(graph: Graph, op) -> int:
    """Return the MACs of an excitation op (1x1 convolution or fully connected)."""
    if op.kind in (OpKind.CONV_2D, OpKind.FULLY_CONNECTED):
        w = graph.tensor(op.inputs[1])
        return graph.tensor(op.outputs[0]).num_elements * (w.num_elements // w.shape[0])
    return 0


def _leftover_cost(graph: Graph, unit: FusedUnit, band_list, chunking: Chunking,
                   kernel_set: str) -> float:
    """Return the price of the pixels each band's 1x1 convolution calls leave over whole
    pixel blocks (mnv2gen.planner.segment_cost: CMSIS-NN runs them on a slower path)."""
    from mnv2gen.planner.segment_cost import LEFTOVER_MAC, leftover_macs

    price = LEFTOVER_MAC[kernel_set]
    if not price:
        return 0.0
    _, _, width_e, channels_e = graph.tensor(unit.expanded).shape
    _, _, width_o, out_c = graph.tensor(unit.output).shape
    macs = 0
    for b in band_list:
        if chunking.groups == 1:  # grouped projections run mnv2gen's own accumulate kernel
            macs += leftover_macs((b.out_rows[1] - b.out_rows[0]) * width_o, channels_e, out_c)
        producer = unit.producer
        if producer is not None and producer.kind is OpKind.CONV_2D and \
                graph.tensor(producer.inputs[1]).shape[1:3] == (1, 1):
            in_c = graph.tensor(producer.inputs[0]).shape[3]
            macs += leftover_macs((b.new_rows[1] - b.new_rows[0]) * width_e, in_c, channels_e)
    return price * macs


def allowed_groups(graph: Graph, unit: FusedUnit) -> tuple[int, ...]:
    """Return the channel-group counts this unit supports.

    Groups need a producer (a depthwise reading the input directly cannot take a channel
    slice of it) with one output channel per input channel of the depthwise, and no
    squeeze-excite (its features are summed and scaled whole).
    """
    if unit.producer is None or unit.depthwise.attrs.depth_multiplier != 1 or unit.se:
        return (1,)
    if unit.producer.kind is OpKind.DEPTHWISE_CONV_2D and \
            unit.producer.attrs.depth_multiplier != 1:
        return (1,)
    channels = graph.tensor(unit.expanded).shape[3]
    return tuple(g for g in _GROUPS if channels // g >= 8 or g == 1)


def candidates(graph: Graph, unit: FusedUnit, kernel_set: str,
               forced: Chunking | None = None) -> list[Candidate]:
    """Return the chunking candidates of a fused unit (see _candidates; cached)."""
    return list(_cached_candidates(graph, unit, kernel_set, forced))


@lru_cache(maxsize=1024)
def _cached_candidates(graph: Graph, unit: FusedUnit, kernel_set: str,
                       forced: Chunking | None) -> tuple[Candidate, ...]:
    return tuple(_candidates(graph, unit, kernel_set, forced))


def _candidates(graph: Graph, unit: FusedUnit, kernel_set: str,
                forced: Chunking | None = None) -> list[Candidate]:
    """Return the chunking candidates of a fused unit (just the forced one if given).

    A forced chunking with rows=0 means all rows in one band; a group count the unit
    cannot use falls back to the largest it can. A squeeze-excite unit has candidates of
    both strategies (SQUEEZE_STRATEGIES) unless `forced.squeeze` names one; other units
    ignore it.
    """
    out_h = graph.tensor(unit.output).shape[1]
    groups = allowed_groups(graph, unit)
    strategies = (None,)
    if unit.se is not None:
        strategies = (forced.squeeze,) if forced is not None and forced.squeeze \
            else SQUEEZE_STRATEGIES
    if forced is not None:
        rows = out_h if forced.rows <= 0 else min(forced.rows, out_h)
        g = max(x for x in groups if x <= forced.groups)
        return [_candidate(graph, unit, Chunking(rows, g, s), kernel_set) for s in strategies]
    rows_options = sorted({r for r in _ROWS if r < out_h} | {out_h})
    return [_candidate(graph, unit, Chunking(r, g, s), kernel_set)
            for r in rows_options for g in groups for s in strategies]


def layer_scratch(graph: Graph, unit: LayerUnit, kernel_set: str) -> dict[str, int]:
    """Return the kernel scratch bytes of a layer unit under a kernel set."""
    op = unit.op
    if op.kind is OpKind.CONV_2D:
        _, kh, kw, in_c = graph.tensor(op.inputs[1]).shape
        a = op.attrs
        size = conv_scratch(kernel_set, in_c, kh, kw, a.stride_h, a.padding != type(a.padding)())
    elif op.kind is OpKind.DEPTHWISE_CONV_2D:
        _, kh, kw, _ = graph.tensor(op.inputs[1]).shape
        a = op.attrs
        # CMSIS-NN sizes depthwise scratch by the *input* channels
        size = depthwise_scratch(kernel_set, graph.tensor(op.inputs[0]).shape[3], kh, kw,
                                 a.padding.top, a.padding.left, a.depth_multiplier)
    elif op.kind is OpKind.FULLY_CONNECTED:
        size = fully_connected_scratch(kernel_set, graph.tensor(op.inputs[1]).shape[0])
    elif op.kind is OpKind.AVERAGE_POOL_2D:
        size = avgpool_scratch(kernel_set, graph.tensor(op.inputs[0]).shape[3])
    else:
        size = 0
    return {"kernel": -(-size // ALIGNMENT) * ALIGNMENT} if size else {}
