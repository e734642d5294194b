"""When each pixel of a segment's tensors is written and read, in closed form per stage.

Time counts tiles over the whole schedule: tile t of schedule entry s starts at
(tiles before s + t + 1) * SUBSTEPS (time 0 is before anything runs), and within a tile
the accesses come in this order (the order of the generated code): 0 the stage input is
read (window rows, producer patches), 1 kept rows of E are read from the E ring, 2 new
kept rows are written to it, 3 the shortcut reads the input, 4 the output tile is
written. A streamed input row
arrives just before the first entry that needs it.
Names: "in0" the segment input, "in{i}" the input of stage i (the output of stage i-1),
"in{n}" the segment output, "e{i}" the E ring of stage i.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mnv2gen.planner import rings
from mnv2gen.planner.segment import OUT, PREFETCH, input_needed, prefetched_rows, row_steps
from mnv2gen.planner.stages import Stage

SUBSTEPS = 8
READ_INPUT, READ_E, WRITE_E, READ_SHORTCUT, WRITE_OUTPUT = range(5)


def _tile_map(width: int, ranges) -> np.ndarray:
    """Return per column the (last) tile whose range [a, b) holds it, -1 for none."""
    result = np.full(width, -1, np.int64)
    for t, (a, b) in enumerate(ranges):
        result[a:b] = t
    return result


def _first_tile_map(width: int, ranges) -> np.ndarray:
    result = np.full(width, -1, np.int64)
    for t, (a, b) in reversed(list(enumerate(ranges))):
        result[a:b] = t
    return result


def _times(base: np.ndarray, entries: np.ndarray, tile_of: np.ndarray, sub: int) -> np.ndarray:
    """Return the (rows x cols) times of `sub` accesses: row k at entry entries[k] and
    column c in tile tile_of[c] (entries or tiles < 0 give NEVER)."""
    t = (base[np.maximum(entries, 0)][:, None] + tile_of[None, :] + 1) * SUBSTEPS + sub
    return np.where((entries[:, None] >= 0) & (tile_of[None, :] >= 0), t, rings.NEVER)


def _merge_reads(arrays: dict, first: np.ndarray, last: np.ndarray) -> None:
    ok = last.reshape(-1) != rings.NEVER
    f, lst = first.reshape(-1), last.reshape(-1)
    arrays["first_read"][ok] = np.minimum(arrays["first_read"][ok], f[ok])
    arrays["last_read"][ok] = np.maximum(arrays["last_read"][ok], lst[ok])


def entry_bases(tiles, schedule) -> np.ndarray:
    """Return per schedule entry the number of tiles run before it (plus the total)."""
    counts = np.array([len(tiles[i]) for i, _, _ in schedule], np.int64)
    return np.concatenate([[0], np.cumsum(counts)])


def rows_needed(stages, rows, schedule) -> tuple[int, ...]:
    """Return per entry how many leading rows of the segment input it and all entries
    before it need."""
    first, need, result = stages[0], 0, []
    for i, kind, r in schedule:
        if i == 0:
            need = max(need, input_needed(first, rows[0][r]) if kind == OUT
                       else first.producer_rows.span(r, r + 1)[1])
        result.append(need)
    return tuple(result)


def _entries(stages, schedule) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return per stage the entry of each output row and of each prefetched E row."""
    out = [np.full(st.steps, -1, np.int64) for st in stages]
    early = [np.full(st.e_shape[0], -1, np.int64) for st in stages]
    for s, (i, kind, r) in enumerate(schedule):
        (out if kind == OUT else early)[i][r] = s
    return out, early


def accesses(stages: tuple[Stage, ...], tiles, rows, stored, schedule, streamed: bool
             ) -> tuple[dict[str, rings.Access], tuple[int, ...]]:
    """Return the Access of every tensor and E ring of the segment, and rows_needed."""
    base = entry_bases(tiles, schedule)
    out_entry, early_entry = _entries(stages, schedule)
    n = len(stages)
    arrays = {f"in{i}": rings.empty(st.in_shape[0] * st.in_shape[1])
              for i, st in enumerate(stages)}
    last = stages[-1]
    arrays[f"in{n}"] = rings.empty(0 if last.kind == "pool"
                                   else last.out_shape[0] * last.out_shape[1])
    for i, st in enumerate(stages):
        _stage_accesses(st, i, tiles[i], rows[i], stored[i] if stored else (), base,
                        out_entry[i], early_entry[i], arrays)
    needed = rows_needed(stages, rows, schedule)
    if streamed:
        _streamed_writes(arrays["in0"], stages[0], needed, base)
    return {k: rings.freeze(v) for k, v in arrays.items()}, needed


@lru_cache(maxsize=4096)
def _row_structure(st: Stage) -> dict[str, np.ndarray]:
    """Return the schedule-independent row facts of a stage, as index arrays (-1: none):
    for window stages the first/last output row reading each input row; for fused
    stages the output row computing each row of E (-2: prefetched), the first/last row
    of E whose producer reads each input row, and the first/last output row reading
    each row of E from the E ring."""
    steps = row_steps(st)
    h_in, h_e = st.in_shape[0], st.e_shape[0]
    result: dict[str, np.ndarray] = {}
    if st.kind != "fused":
        first = np.full(h_in, -1, np.int64)
        last = np.full(h_in, -1, np.int64)
        for step in reversed(steps):
            first[step.lo:step.hi] = step.row
        for step in steps:
            last[step.lo:step.hi] = step.row
        return {"first_row": first, "last_row": last}
    computed = np.full(h_e, -1, np.int64)
    for step in steps:
        computed[step.new:step.hi] = step.row
    for e in prefetched_rows(st):
        computed[e] = -2
    x_first = np.full(h_in, -1, np.int64)
    x_last = np.full(h_in, -1, np.int64)
    for e in reversed(np.nonzero(computed != -1)[0].tolist()):
        p0, p1, _ = st.producer_rows.span(e, e + 1)
        x_first[p0:p1] = e
    for e in np.nonzero(computed != -1)[0].tolist():
        p0, p1, _ = st.producer_rows.span(e, e + 1)
        x_last[p0:p1] = e
    old_first = np.full(h_e, -1, np.int64)
    old_last = np.full(h_e, -1, np.int64)
    for step in reversed(steps):
        old_first[step.lo:step.new] = step.row
    for step in steps:
        old_last[step.lo:step.new] = step.row
    result.update(computed=computed, x_first=x_first, x_last=x_last, old_first=old_first,
                  old_last=old_last)
    return result


def _gather(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Return table[index] with -1 where index < 0."""
    return np.where(index >= 0, table[np.maximum(index, 0)], -1)


def _stage_accesses(st: Stage, i: int, tiles, steps, stored, base, out_entry, early_entry,
                    arrays) -> None:
    w_in = st.in_shape[1]
    e_cols = _tile_map(st.e_shape[1], [(t.ea + t.halo, t.eb) for t in tiles])
    out_cols = _tile_map(st.out_shape[1], [(t.c0, t.c1) for t in tiles])
    x = arrays[f"in{i}"]
    rows = _row_structure(st)
    if st.kind == "fused":
        computed = np.where(rows["computed"] == -2, early_entry,
                            _gather(out_entry, rows["computed"]))
        x_ranges = [(t.xa, t.xb) for t in tiles]
        first = _times(base, _gather(computed, rows["x_first"]),
                       _first_tile_map(w_in, x_ranges), READ_INPUT)
        lst = _times(base, _gather(computed, rows["x_last"]), _tile_map(w_in, x_ranges),
                     READ_INPUT)
        _merge_reads(x, first, lst)
        _e_ring(st, i, stored, computed, rows, out_entry, base, e_cols, arrays)
    else:
        _merge_reads(x, _times(base, _gather(out_entry, rows["first_row"]), e_cols, READ_INPUT),
                     _times(base, _gather(out_entry, rows["last_row"]), e_cols, READ_INPUT))
    if st.add is not None:
        t = _times(base, out_entry, out_cols, READ_SHORTCUT)
        _merge_reads(x, t, t)
    if st.kind != "pool":
        arrays[f"in{i + 1}"]["write"][:] = _times(base, out_entry, out_cols,
                                                  WRITE_OUTPUT).reshape(-1)


def _e_ring(st, i, stored, computed, rows, out_entry, base, e_cols, arrays) -> None:
    """Fill the accesses of a fused stage's E ring (kept rows of E, in stored order)."""
    keep = np.array([e for e, q in enumerate(stored) if q >= 0], np.int64)
    ring = rings.empty(len(keep) * st.e_shape[1])
    arrays[f"e{i}"] = ring
    if not keep.size:
        return
    ring["write"][:] = _times(base, computed[keep], e_cols, WRITE_E).reshape(-1)
    _merge_reads(ring, _times(base, _gather(out_entry, rows["old_first"][keep]), e_cols, READ_E),
                 _times(base, _gather(out_entry, rows["old_last"][keep]), e_cols, READ_E))


def _streamed_writes(x: dict, stage: Stage, needed, base) -> None:
    """Row k of a streamed input arrives just before the first entry needing more than
    k rows (every entry that can run with fewer rows has run)."""
    h, w, _ = stage.in_shape
    entry = 0
    for k in range(h):
        while entry < len(needed) and needed[entry] <= k:
            entry += 1
        time = (base[entry] + 1) * SUBSTEPS - 1 if entry < len(needed) else \
            (base[-1] + 1) * SUBSTEPS
        x["write"][k * w:(k + 1) * w] = time


def trail(first: Stage, last: Stage, x: rings.Access, y: rings.Access) -> tuple[int, int]:
    """Return (slack, pair bytes) of writing the segment output over its input.

    slack: the largest offset (output start minus input start) at which no output byte
    lands on input bytes still to be read; pair: the most bytes input still to be read
    and output written occupy together at any write.
    """
    x_c, y_c = first.in_shape[2], last.out_shape[2]
    x_bytes = x.size * x_c
    order = np.argsort(y.write, kind="stable")
    times = y.write[order]
    live = rings.first_live(x, times)
    written_end = (order + 1) * y_c
    room = live * x_c - written_end
    pair = x_bytes - live * x_c + np.maximum.accumulate(written_end)
    return int(room.min()), int(max(pair.max(), x_bytes))


__all__ = ["accesses", "trail", "SUBSTEPS", "PREFETCH", "OUT"]
