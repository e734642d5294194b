"""Depth-first segments: a chain of stages run one output row (in column tiles) at a time.

Execution model (the generated C in templates/runtime/mnv2_segment.c and the simulator
in mnv2gen.planner.segment_sim follow it step by step):
- The schedule is a list of steps (stage, output row), found by pulling: to compute
  row r of the last stage, each stage first has the rows of its input that row needs
  computed by the stage before it (recursively), then runs. Every row of every tensor is
  computed exactly once.
- A step runs its output row in column tiles, left to right. For each tile the stage's
  window (the rows x columns of E its windowed op reads) is assembled in transient
  memory: columns shared with the previous tile are shifted left, the rest are copied
  from rings or, for new rows of E, computed by the producer right into the window.
  Rows of E that later rows read too are copied into the stage's E ring.
- The tensor between two stages is a ring of pixels in raster order; the segment's
  first input (unless streamed) and last output are whole arena tensors, and the output
  may trail into the consumed input.
- Transient memory (window, producer patch, depthwise tile, output tile, kernel scratch)
  is one pool shared by the stages, because steps run one after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from mnv2gen.planner.stages import Stage, first_reader, last_reader, window_rows

ALIGNMENT = 16
SUBSTEPS = 8  # event slots per tile: reads before writes within one tile


def _align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


@dataclass(frozen=True)
class Tile:
    """Columns of one tile: output [c0, c1); window columns [ea, eb) of E with pad_left
    padding columns before ea; `halo` leading window columns come from the previous
    tile; the producer reads input columns [xa, xb) (xpad padding before) for the new
    window columns [ea + halo, eb)."""

    c0: int
    c1: int
    ea: int
    eb: int
    pad_left: int
    halo: int
    xa: int = 0
    xb: int = 0
    xpad: int = 0


@dataclass(frozen=True)
class RowStep:
    """Rows of one output row r: window rows [lo, hi) of E (pad_top padding rows above);
    rows [lo, new) come from the E ring or the input ring, rows [new, hi) are computed
    now by the producer ("fused" stages; new == hi otherwise)."""

    row: int
    lo: int
    hi: int
    pad_top: int
    new: int


@lru_cache(maxsize=4096)
def tiles_of(stage: Stage, width: int) -> tuple[Tile, ...]:
    """Return the column tiles of `stage` with `width` output columns per tile."""
    out_w = stage.out_shape[1]
    result: list[Tile] = []
    prev_eb = None
    for c0 in range(0, out_w, width):
        c1 = min(c0 + width, out_w)
        if stage.kind == "pool":
            ea, eb, pad = c0, c1, 0
        else:
            ea, eb, pad = stage.cols.span(c0, c1)
        halo = 0 if prev_eb is None else min(max(prev_eb - ea, 0), eb - ea)
        xa = xb = xpad = 0
        if stage.kind == "fused" and eb > ea + halo:
            xa, xb, xpad = stage.producer_cols.span(ea + halo, eb)
        result.append(Tile(c0, c1, ea, eb, pad, halo, xa, xb, xpad))
        prev_eb = eb
    return tuple(result)


@lru_cache(maxsize=4096)
def _new_rows(stage: Stage) -> tuple[tuple[int, int, int, int], ...]:
    """Return per output row (lo, hi, pad_top, first new row) before any prefetch."""
    result, prev_hi = [], None
    for r in range(stage.steps):
        lo, hi, pad = window_rows(stage, r)
        new = hi if stage.kind != "fused" else (
            lo if prev_hi is None else min(hi, max(lo, prev_hi)))
        result.append((lo, hi, pad, new))
        prev_hi = hi if prev_hi is None else max(prev_hi, hi)
    return tuple(result)


@lru_cache(maxsize=4096)
def prefetched_rows(stage: Stage) -> tuple[int, ...]:
    """Return the rows of E a "fused" stage computes ahead of its first output row.

    The first output row needs more new rows of E than later ones (all of its window),
    so its producer would need more input rows at once than any later step. Computing
    the surplus rows earlier, each as soon as its input rows exist, keeps the input ring
    at its steady size; those rows wait in the E ring.
    """
    if stage.kind != "fused" or stage.steps < 2:
        return ()
    raw = _new_rows(stage)
    surplus = (raw[0][1] - raw[0][3]) - (raw[1][1] - raw[1][3])
    return tuple(range(raw[0][3], raw[0][3] + max(surplus, 0)))


@lru_cache(maxsize=4096)
def row_steps(stage: Stage) -> tuple[RowStep, ...]:
    """Return the RowStep of every output row (every input row for a pool)."""
    raw = _new_rows(stage)
    early = prefetched_rows(stage)
    steps = [RowStep(r, lo, hi, pad, new) for r, (lo, hi, pad, new) in enumerate(raw)]
    if early:
        first = steps[0]
        steps[0] = RowStep(0, first.lo, first.hi, first.pad_top, first.new + len(early))
    return tuple(steps)


@lru_cache(maxsize=4096)
def stored_rows(stage: Stage) -> tuple[int, ...]:
    """Return per row of E its index in the stage's E ring, or -1 when only the output row
    computing it reads it (then it lives only in the transient window). Only "fused"
    stages keep E; prefetched rows are always kept."""
    if stage.kind != "fused":
        return ()
    early = set(prefetched_rows(stage))
    index, result = 0, []
    for e in range(stage.e_shape[0]):
        if e in early or last_reader(stage, e) > first_reader(stage, e):
            result.append(index)
            index += 1
        else:
            result.append(-1)
    return tuple(result)


def input_needed(stage: Stage, step: RowStep) -> int:
    """Return how many leading rows of the stage input output step `step` needs."""
    if stage.kind != "fused":
        return step.hi
    need = step.row + 1 if stage.add is not None else 0
    for e in range(step.new, step.hi):
        need = max(need, stage.producer_rows.span(e, e + 1)[1])
    return need


OUT, PREFETCH = 0, 1  # kinds of schedule entries: an output row, a row of E ahead of time


def pull_schedule(stages: tuple[Stage, ...], rows) -> tuple[tuple[int, int, int], ...]:
    """Return the (stage, kind, row) entries that compute the last stage's rows
    depth-first: before a stage runs, the stage before it computes just the rows of its
    input that the step needs."""
    produced = [0] * len(stages)
    schedule: list[tuple[int, int, int]] = []

    def supply(i: int, need: int) -> None:
        while i > 0 and produced[i - 1] < need:
            pull(i - 1)

    def pull(i: int) -> None:
        st = stages[i]
        if produced[i] == 0:
            for e in prefetched_rows(st):
                supply(i, st.producer_rows.span(e, e + 1)[1])
                schedule.append((i, PREFETCH, e))
        step = rows[i][produced[i]]
        supply(i, input_needed(st, step))
        schedule.append((i, OUT, step.row))
        produced[i] += 1

    while produced[-1] < stages[-1].steps:
        pull(len(stages) - 1)
    return tuple(schedule)
