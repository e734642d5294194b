"""A placed segment as plain numbers: what the generated C tables hold and the simulator runs.

`describe_segment` resolves every buffer of a SegmentPlan to arena offsets and turns its
tiles, rows and schedule into integer tuples. mnv2gen.codegen writes exactly these
numbers into the C tables of templates/runtime/mnv2_segment.h, and
mnv2gen.planner.segment_sim executes exactly them, so the simulation proves the plan
the C code runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.planner.steps import SegmentPlan

# stage kinds in the C runtime (mnv2_segment.h: MNV2_STAGE_*)
KIND_CODES = {"fused": 1, "window": 2, "conv": 3, "quantize": 4, "pool": 5}


@dataclass(frozen=True)
class Ring:
    """A tensor in the arena: pixel index i lives at offset + (i % capacity) * channels."""

    offset: int
    capacity: int      # pixels (a whole tensor: all of them)
    width: int         # pixels per row
    channels: int      # bytes per pixel

    def fields(self) -> list[int]:
        """Return the C initialiser fields (offset, capacity, width, channels)."""
        return [self.offset, self.capacity, self.width, self.channels]


@dataclass(frozen=True)
class StageTables:
    """One stage: its rings, transient offsets and row/tile tables."""

    kind: str
    input: Ring
    output: Ring                 # a pool's is its whole (tiny) output, written at the end
    e_ring: Ring | None
    window: int                  # absolute arena offsets of the transient parts
    patch: int
    dw_out: int
    out: int
    kernel: int
    kernel_bytes: int
    tiles: tuple[tuple[int, ...], ...]    # c0, cn, ea, en, pad_left, halo, xa, xn, xpad
    rows: tuple[tuple[int, ...], ...]     # lo, rows, pad_top, old rows
    erows: tuple[tuple[int, ...], ...]    # per row of E: ring index or -1, p0, pn, pad_top


@dataclass(frozen=True)
class SegmentTables:
    """A whole segment: stages, schedule entries (stage, kind, row) and rows needed."""

    name: str
    stages: tuple[StageTables, ...]
    entries: tuple[tuple[int, int, int], ...]
    rows_needed: tuple[int, ...]
    acc: int                     # arena offset of a final pool's int32 sums (-1: none)
    streamed: bool


def _whole(offset: int, shape: tuple[int, int, int]) -> Ring:
    h, w, c = shape
    return Ring(offset, h * w, w, c)


def describe_segment(plan, seg: SegmentPlan) -> SegmentTables:
    """Return the tables of a placed segment step of `plan`."""
    shape = seg.shape
    count = len(shape.stages)

    def input_ring(i: int) -> Ring:
        st = shape.stages[i]
        if i == 0 and not shape.streamed:
            return _whole(plan.offset(st.input), st.in_shape)
        return Ring(plan.offset(f"{seg.name}.ring{i}"), shape.ring_pixels[i], st.in_shape[1],
                    st.in_shape[2])

    pool = plan.offset(f"{seg.name}.pool")
    stages = []
    for i, st in enumerate(shape.stages):
        if st.kind == "pool":
            y = plan.graph.tensor(st.output)
            output = Ring(plan.offset(st.output), 1, 1, y.size_bytes)
        elif i + 1 < count:
            output = input_ring(i + 1)
        else:
            output = _whole(plan.offset(st.output), st.out_shape)
        e_ring = None
        if shape.e_ring_pixels[i]:
            e_ring = Ring(plan.offset(f"{seg.name}.e{i}"), shape.e_ring_pixels[i],
                          st.e_shape[1], st.e_shape[2])
        at = {k: pool + v for k, v in shape.layouts[i].offsets().items()}
        tiles = tuple((t.c0, t.c1 - t.c0, t.ea, t.eb - t.ea, t.pad_left, t.halo, t.xa,
                       t.xb - t.xa, t.xpad) for t in shape.tiles[i])
        rows = tuple((r.lo, r.hi - r.lo, r.pad_top, r.new - r.lo) for r in shape.rows[i])
        erows = ()
        if st.kind == "fused":
            erows = tuple((shape.stored[i][e], *_producer_rows(st, e))
                          for e in range(st.e_shape[0]))
        stages.append(StageTables(st.kind, input_ring(i), output, e_ring, at["window"],
                                  at["patch"], at["dw_out"], at["out"], at["kernel"],
                                  shape.layouts[i].kernel, tiles, rows, erows))
    acc = plan.offset(f"{seg.name}.acc") if shape.acc_bytes else -1
    return SegmentTables(seg.name, tuple(stages), shape.schedule, shape.rows_needed, acc,
                         shape.streamed)


def _producer_rows(st, e: int) -> tuple[int, int, int]:
    lo, hi, pad = st.producer_rows.span(e, e + 1)
    return lo, hi - lo, pad
