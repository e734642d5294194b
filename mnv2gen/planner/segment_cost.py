"""Work counts of a segment, mirroring what templates/runtime/mnv2_segment.c executes.

Per tile a stage makes kernel calls (producer per new row of E, depthwise, projection,
shortcut add, or its one conv / requantisation / accumulation) and copies (window rows
from rings, kept rows into the E ring, the columns shared with the previous tile,
producer patches, the shortcut and output tiles). The counts use the names of
mnv2gen.estimate.features.FEATURES so the instruction estimate can price them, and
`segment_cost` prices them with the planner's per-kernel-set instruction prices.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from mnv2gen.ir import Graph, Op, OpKind
from mnv2gen.planner.candidates import PRICES, _price
from mnv2gen.planner.segment import PREFETCH, prefetched_rows, row_steps, stored_rows, tiles_of
from mnv2gen.planner.stages import Stage

COPY_CALL = 55.0   # instructions per copy call (memcpy/memmove call and loop set-up)
MOVE_COST = 0.5    # instructions per copied byte (as the planner's window moves)
# Per kernel call of a segment tile; and per MAC of the pixels a 1x1 convolution call
# leaves over its kernel's block of 4 pixels: CMSIS-NN runs those on a slower path
# (measured: 7-pixel calls ~1.35x the instructions per MAC of whole-tensor calls);
# mnv2gen's portable kernels have no such blocks. (Generated plans take their segments
# from the portable plan, mnv2gen.planner.plan.MEMORY_REFERENCE: priced alike.)
TILE_CALL = {"portable": 340.0, "generated": 340.0, "cmsis-c": 560.0, "cmsis-dsp": 560.0,
             "cmsis-mve": 560.0}
LEFTOVER_MAC = {"portable": 0.0, "generated": 0.0, "cmsis-c": 1.15, "cmsis-dsp": 1.15,
                "cmsis-mve": 1.15}
PIXEL_BLOCK = 4


def leftover_macs(pixels: int, in_c: int, out_c: int) -> int:
    """Return the MACs of a 1x1 convolution call on `pixels` pixels that fall outside
    whole blocks of PIXEL_BLOCK pixels."""
    return (pixels % PIXEL_BLOCK) * in_c * out_c


def deep_macs(outputs: int, in_c: int) -> int:
    """Return the MACs of a 1x1 convolution computing `outputs` values from `in_c` inputs
    when its generated kernel cannot widen the inputs once (mnv2gen.codegen.generated.
    kernels.widens_once), else 0: the slower inner loop of the generated backend. The
    planner does not price it; the calibration of the generated kernels does."""
    from mnv2gen.codegen.generated.kernels import widens_once

    return 0 if widens_once(in_c) else outputs * in_c


def conv_counts(graph: Graph, op: Op, pixels: int, out_channels: int | None = None
                ) -> Counter:
    """Return the counts of one conv/depthwise call computing `pixels` output pixels."""
    _, kh, kw, in_c = graph.tensor(op.inputs[1]).shape
    channels = graph.tensor(op.outputs[0]).shape[3] if out_channels is None else out_channels
    outputs = pixels * channels
    if op.kind is OpKind.DEPTHWISE_CONV_2D:
        kind = "dw3_macs" if (kh, kw) == (3, 3) else "dwk_macs"
        return Counter({kind: outputs * kh * kw, "dw_outputs": outputs, "dw_pixels": pixels})
    if (kh, kw) == (1, 1):
        return Counter({"pw_macs": outputs * in_c, "pw_outputs": outputs,
                        "pw_deep_macs": deep_macs(outputs, in_c),
                        "pw_leftover_macs": leftover_macs(pixels, in_c, channels)})
    return Counter({"conv_macs": outputs * kh * kw * in_c, "conv_outputs": outputs,
                    "conv_taps": outputs * kh * kw})


def _copy(counts: Counter, calls: int, nbytes: int) -> None:
    counts["copy_calls"] += calls
    counts["move_bytes"] += nbytes


def _tile_counts(graph: Graph, st: Stage, step, tile, stored) -> Counter:
    """Return the counts of one output-row tile of a stage."""
    counts: Counter = Counter()
    pixels = tile.c1 - tile.c0
    new_cols = tile.eb - tile.ea - tile.halo
    e_c, x_c = st.e_shape[2], st.in_shape[2]
    rows = step.hi - step.lo
    if tile.halo:
        _copy(counts, 1, rows * tile.halo * e_c)
    if st.kind == "fused":
        _copy(counts, step.new - step.lo, (step.new - step.lo) * new_cols * e_c)
        for e in range(step.new, step.hi):
            p0, p1, _ = st.producer_rows.span(e, e + 1)
            if new_cols:
                _copy(counts, p1 - p0, (p1 - p0) * (tile.xb - tile.xa) * x_c)
                counts += conv_counts(graph, st.producer, new_cols)
                counts["calls"] += 1
            if stored[e] >= 0 and new_cols:
                _copy(counts, 1, new_cols * e_c)
    else:
        _copy(counts, rows, rows * new_cols * e_c)
    if st.kind in ("fused", "window"):
        counts += conv_counts(graph, st.window_op, pixels)
        counts += conv_counts(graph, st.project, pixels)
        counts["calls"] += 2
        if st.add is not None:
            _copy(counts, 1, pixels * x_c)
            counts["add_elements"] += pixels * st.out_shape[2]
            counts["calls"] += 1
    elif st.kind == "conv":
        counts += conv_counts(graph, st.window_op, pixels)
        counts["calls"] += 1
    elif st.kind == "quantize":
        counts["quantize_elements"] += pixels * st.out_shape[2]
        counts["calls"] += 1
    else:  # pool: int32 sums of the tile
        counts["pool_elements"] += pixels * e_c
        counts["calls"] += 1
    if st.kind != "pool":
        _copy(counts, 1, pixels * st.out_shape[2])
    return counts


def _prefetch_counts(graph: Graph, st: Stage, e: int, tiles) -> Counter:
    counts: Counter = Counter()
    p0, p1, _ = st.producer_rows.span(e, e + 1)
    for tile in tiles:
        new_cols = tile.eb - tile.ea - tile.halo
        if new_cols:
            _copy(counts, p1 - p0, (p1 - p0) * (tile.xb - tile.xa) * st.in_shape[2])
            counts += conv_counts(graph, st.producer, new_cols)
            counts["calls"] += 1
            _copy(counts, 1, new_cols * st.e_shape[2])
    return counts


def stage_counts(graph: Graph, st: Stage, width: int) -> Counter:
    """Return the work counts of a stage over all its steps with `width`-column tiles."""
    return _cached_counts(graph, st, width)


@lru_cache(maxsize=16384)
def _cached_counts(graph: Graph, st: Stage, width: int) -> Counter:
    return _stage_counts(graph, st, width)


def _stage_counts(graph: Graph, st: Stage, width: int) -> Counter:
    tiles, stored = tiles_of(st, width), stored_rows(st)
    per_row: dict[tuple, Counter] = {}
    counts: Counter = Counter()
    for step in row_steps(st):
        new = tuple(range(step.new, step.hi))
        key = (step.hi - step.lo, step.new - step.lo,
               tuple(stored[e] >= 0 for e in new) if stored else (),
               tuple(st.producer_rows.span(e, e + 1)[1] - st.producer_rows.span(e, e + 1)[0]
                     for e in new) if st.kind == "fused" else ())
        if key not in per_row:
            row_counts: Counter = Counter()
            for tile in tiles:
                row_counts += _tile_counts(graph, st, step, tile, stored)
            per_row[key] = row_counts
        counts += per_row[key]
    for e in prefetched_rows(st):
        counts += _prefetch_counts(graph, st, e, tiles)
    if st.kind == "pool":
        counts["calls"] += 1  # the final requantisation
    return counts


def segment_counts(graph: Graph, stages, widths) -> Counter:
    """Return the work counts of a whole segment (every stage, every step)."""
    total: Counter = Counter()
    for st, width in zip(stages, widths, strict=True):
        total += stage_counts(graph, st, width)
    total["units"] += 1
    return total


def price_counts(kernel_set: str, counts: Counter) -> float:
    """Return the planner's instruction price of a set of work counts."""
    cost = (_price(kernel_set, "pointwise", counts["pw_macs"], counts["pw_outputs"])
            + _price(kernel_set, "conv", counts["conv_macs"], counts["conv_outputs"])
            + _price(kernel_set, "depthwise", counts["dw3_macs"] + counts["dwk_macs"], 0)
            + _price(kernel_set, "add", 0, counts["add_elements"]))
    cost += TILE_CALL[kernel_set] * counts["calls"] + COPY_CALL * counts["copy_calls"]
    cost += LEFTOVER_MAC[kernel_set] * counts["pw_leftover_macs"]
    cost += MOVE_COST * counts["move_bytes"] + 2.0 * counts["pool_elements"]
    cost += 2.0 * counts["quantize_elements"]
    return cost


def segment_cost(graph: Graph, stages, widths, kernel_set: str) -> float:
    """Return the planner's instruction estimate of a segment under `kernel_set` (prices
    are linear in the counts: a sum of cached per-stage prices)."""
    return sum(_stage_cost(graph, st, w, kernel_set)
               for st, w in zip(stages, widths, strict=True)) + PRICES[kernel_set]["call"]


@lru_cache(maxsize=16384)
def _stage_cost(graph: Graph, st: Stage, width: int, kernel_set: str) -> float:
    return price_counts(kernel_set, stage_counts(graph, st, width))


def layer_cost(graph: Graph, op: Op, kernel_set: str) -> float:
    """Return the planner's instruction estimate of one operator run on whole tensors."""
    out = graph.tensor(op.outputs[0])
    counts: Counter = Counter({"calls": 1})
    if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D):
        counts += conv_counts(graph, op, out.shape[1] * out.shape[2])
    elif op.kind is OpKind.ADD:
        counts["add_elements"] += out.num_elements
    elif op.kind in (OpKind.MEAN, OpKind.AVERAGE_POOL_2D):
        counts["pool_elements"] += graph.tensor(op.inputs[0]).num_elements
    elif op.kind is OpKind.QUANTIZE:
        counts["quantize_elements"] += out.num_elements
    elif op.kind is OpKind.FULLY_CONNECTED:
        counts["pw_macs"] += out.num_elements * graph.tensor(op.inputs[1]).shape[1]
    return price_counts(kernel_set, counts)


__all__ = ["segment_counts", "segment_cost", "stage_counts", "price_counts", "conv_counts",
           "deep_macs", "PREFETCH"]
