"""Row bands and channel groups of a fused unit: which rows each band computes and reads.

A band produces R output rows of the unit. The depthwise needs a window of rows of the
wide tensor E (its input) with a halo; the producer computes those rows of E from the
unit input X. With one channel group the window slides: rows shared with the previous
band are moved to the top and only new rows are computed, so every row of E is computed
exactly once. With G > 1 groups each band computes its whole window once per group
(halo rows are recomputed), the projection accumulates int32 partial sums over the
groups and requantises once at the end of the band.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.errors import InternalError
from mnv2gen.ir import Graph, Op
from mnv2gen.planner.schedule import FusedUnit


@dataclass(frozen=True)
class Chunking:
    """R output rows per band and G channel groups of the expansion."""

    rows: int
    groups: int = 1

    def label(self) -> str:
        """Return e.g. 'R=2 G=3'."""
        return f"R={self.rows} G={self.groups}"


@dataclass(frozen=True)
class Band:
    """Row ranges [start, stop) of one band.

    out_rows: rows of the unit output (depthwise/projection output rows).
    window_rows: rows of E the depthwise reads; window_pad_top: padding rows above them.
    new_rows: rows of E the producer computes this band (all window rows when G > 1).
    keep_rows: rows moved from the bottom of the previous window to the top (G == 1).
    producer_rows: rows of X the producer reads, producer_pad_top its padding above them.
    """

    out_rows: tuple[int, int]
    window_rows: tuple[int, int]
    window_pad_top: int
    new_rows: tuple[int, int]
    keep_rows: int
    producer_rows: tuple[int, int]
    producer_pad_top: int


def input_rows(graph: Graph, op: Op, rows: tuple[int, int]) -> tuple[tuple[int, int], int]:
    """Return ((start, stop), pad_top): the input rows a conv/depthwise reads to compute
    output rows [rows), clipped to the image, and the padding rows above the clipped start."""
    a = op.attrs
    kh = graph.tensor(op.inputs[1]).shape[1]
    height = graph.tensor(op.inputs[0]).shape[1]
    first = rows[0] * a.stride_h - a.padding.top
    last = (rows[1] - 1) * a.stride_h - a.padding.top + (kh - 1) * a.dilation_h + 1
    start, stop = max(first, 0), min(last, height)
    return (start, max(stop, start)), start - first


def bands(graph: Graph, unit: FusedUnit, chunking: Chunking) -> tuple[Band, ...]:
    """Return the bands of `unit` under `chunking`, top to bottom (at least one band; an
    output of 1 row or a chunking of more rows than the output has gives one band)."""
    out_h = graph.tensor(unit.project.outputs[0]).shape[1]
    if out_h < 1 or chunking.rows < 1:
        raise InternalError(f"{unit.name}: bands of {chunking.rows} rows over an output of "
                            f"{out_h} rows (the front door admits no empty tensor)")
    result: list[Band] = []
    previous: tuple[int, int] | None = None
    for start in range(0, out_h, chunking.rows):
        out_rows = (start, min(start + chunking.rows, out_h))
        window, pad_top = input_rows(graph, unit.depthwise, out_rows)
        keep, new = 0, window
        if chunking.groups == 1 and previous is not None and unit.producer is not None:
            keep = max(previous[1] - window[0], 0)
            new = (window[0] + keep, window[1])
        if unit.producer is not None:
            produced, producer_pad = input_rows(graph, unit.producer, new) if new[1] > new[0] \
                else ((new[0], new[0]), 0)
        else:
            produced, producer_pad = window, pad_top
        result.append(Band(out_rows, window, pad_top, new, keep, produced, producer_pad))
        previous = window
    return tuple(result)


def window_capacity(band_list: tuple[Band, ...]) -> int:
    """Return the most rows of E any band's window holds."""
    return max(b.window_rows[1] - b.window_rows[0] for b in band_list)


def group_bounds(channels: int, groups: int) -> tuple[tuple[int, int], ...]:
    """Return [start, stop) channel ranges of `groups` near-equal groups (multiples of 4
    where possible, so SIMD kernels keep their fast paths)."""
    if groups == 1:
        return ((0, channels),)
    base = channels // groups
    step = base - base % 4 if base >= 4 else base
    bounds, start = [], 0
    for g in range(groups):
        stop = channels if g == groups - 1 else start + step
        bounds.append((start, stop))
        start = stop
    return tuple(bounds)


def x_rows_read(graph: Graph, unit: FusedUnit,
                band_list: tuple[Band, ...]) -> list[tuple[int, int]]:
    """Return per band the rows [start, stop) of the unit input X it reads: the producer's
    (or, without producer, the depthwise's) rows, widened by the shortcut rows."""
    reads = []
    for b in band_list:
        lo, hi = b.producer_rows
        if unit.add is not None:
            lo, hi = (min(lo, b.out_rows[0]), max(hi, b.out_rows[1])) if hi > lo else b.out_rows
        reads.append((lo, hi))
    return reads
