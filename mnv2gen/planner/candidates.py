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
             "call": 340.0}
_CMSIS = {"pointwise": (1.4, 43.0), "conv": (4.9, 0.0), "depthwise": (8.3, 0.0),
          "accumulate": (6.2, 0.0), "requantize": (0.0, 100.0), "add": (0.0, 11.0),
          "call": 1500.0}
# The generated kernels: per-call microbenchmarks of every layer of a few models on
# Cortex-M7 (benchmarks/planner_prices.py); the grouped projection accumulates with the
# 1x1 kernel's tiles, so groups cost little more than one 1x1 pass here.
_GENERATED = {"pointwise": (0.92, 9.7), "conv": (0.0, 40.6), "depthwise": (1.3, 15.6),
              "accumulate": (0.87, 4.7), "requantize": (0.0, 14.2), "add": (0.0, 15.0),
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


def _trail(graph: Graph, unit: FusedUnit, band_list) -> tuple[int, int]:
    """Return (unrounded minimal output-minus-input offset, pair bytes) for in-place writes.

    Before band b writes its output rows, every input row whose last reader is a band
    <= b is dead; the output may cover dead input bytes only.
    """
    height = graph.tensor(unit.input).shape[1]
    last_read = [-1] * height
    for b, (lo, hi) in enumerate(x_rows_read(graph, unit, band_list)):
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
    band_list = bands(graph, unit, chunking)
    dw, proj = unit.depthwise, unit.project
    _, _, width_e, channels_e = graph.tensor(dw.inputs[0]).shape
    _, _, width_o, out_c = graph.tensor(proj.outputs[0]).shape
    _, kh, kw, _ = graph.tensor(dw.inputs[1]).shape
    groups = group_bounds(channels_e, chunking.groups)
    widest = max(b - a for a, b in groups)
    rows = chunking.rows
    scratch = {"dw_out": rows * width_o * widest * dw.attrs.depth_multiplier}
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
    if unit.add is not None:
        scratch["shortcut"] = rows * width_o * out_c
    if chunking.groups > 1:
        scratch["acc"] = rows * width_o * out_c * 4
    if kernel:
        scratch["kernel"] = kernel
    scratch = {k: -(-v // ALIGNMENT) * ALIGNMENT for k, v in scratch.items()}

    produced_rows = sum(b.new_rows[1] - b.new_rows[0] for b in band_list)
    produce_macs = produced_rows * produce_macs_per_row  # summed over groups: all channels
    out_rows_total = graph.tensor(proj.outputs[0]).shape[1]
    dw_channels = channels_e * dw.attrs.depth_multiplier
    dw_macs = out_rows_total * width_o * dw_channels * kh * kw
    project_macs = out_rows_total * width_o * dw_channels * out_c
    outputs = out_rows_total * width_o * out_c
    macs = produce_macs + dw_macs + project_macs
    terms = Counter({f"{producer_kind}.mac": produce_macs,
                     f"{producer_kind}.out": produced_rows * width_e * channels_e,
                     "depthwise.mac": dw_macs,
                     "depthwise.out": out_rows_total * width_o * dw_channels})
    if chunking.groups > 1:
        terms.update({"accumulate.mac": project_macs,
                      "accumulate.out": outputs * chunking.groups, "requantize.out": outputs})
    else:  # adds to a 1x1 producer's own pointwise terms
        terms.update({"pointwise.mac": project_macs, "pointwise.out": outputs})
    if unit.add is not None:
        terms["add.out"] = outputs
    per_band = chunking.groups * (2 + (unit.producer is not None)) + (unit.add is not None) \
        + (chunking.groups > 1)
    terms["call"] = len(band_list) * per_band + sum(1 for b in band_list if b.keep_rows)
    terms["move"] = sum(b.keep_rows for b in band_list) * width_e * channels_e
    calls = terms["call"]
    cost = price(kernel_set, terms) + _leftover_cost(graph, unit, band_list, chunking,
                                                     kernel_set)

    slack, pair = _trail(graph, unit, band_list)
    scratch_total = sum(scratch.values())
    if _can_write_in_place(graph, unit):
        trail = (min(0, slack) // ALIGNMENT) * ALIGNMENT
        local = graph.tensor(unit.input).size_bytes - trail + scratch_total
    else:
        trail, pair = None, (graph.tensor(unit.input).size_bytes
                             + graph.tensor(unit.output).size_bytes)
        local = pair + scratch_total
    return Candidate(chunking, band_list, groups, scratch, trail, pair, local, macs, calls,
                     cost, dict(terms))


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
    slice of it) with one output channel per input channel of the depthwise.
    """
    if unit.producer is None or unit.depthwise.attrs.depth_multiplier != 1:
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
    cannot use falls back to the largest it can.
    """
    out_h = graph.tensor(unit.output).shape[1]
    groups = allowed_groups(graph, unit)
    if forced is not None:
        rows = out_h if forced.rows <= 0 else min(forced.rows, out_h)
        g = max(x for x in groups if x <= forced.groups)
        return [_candidate(graph, unit, Chunking(rows, g), kernel_set)]
    rows_options = sorted({r for r in _ROWS if r < out_h} | {out_h})
    return [_candidate(graph, unit, Chunking(r, g), kernel_set)
            for r in rows_options for g in groups]


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
