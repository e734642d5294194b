"""A segment's shape: schedule, ring capacities, transient pool and in-place trailing.

Everything here is independent of arena offsets; mnv2gen.planner.plan places the
segment's buffers (rings, E rings, pool, accumulator) beside the whole tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from mnv2gen.planner import rings
from mnv2gen.planner.segment import (
    RowStep,
    Tile,
    prefetched_rows,
    pull_schedule,
    row_steps,
    stored_rows,
    tiles_of,
)
from mnv2gen.planner.segment_access import accesses, trail
from mnv2gen.planner.stages import Stage

ALIGNMENT = 16
POOL_PARTS = ("window", "patch", "dw_out", "out", "kernel")


def align(n: int) -> int:
    """Return n rounded up to the arena alignment."""
    return -(-n // ALIGNMENT) * ALIGNMENT


@dataclass(frozen=True)
class Layout:
    """Transient bytes of one stage, in pool order (see POOL_PARTS)."""

    window: int
    patch: int
    dw_out: int
    out: int
    kernel: int

    @property
    def total(self) -> int:
        """Return the pool bytes the stage needs."""
        return sum(getattr(self, n) for n in POOL_PARTS)

    def offsets(self) -> dict[str, int]:
        """Return each part's offset relative to the pool."""
        result, at = {}, 0
        for n in POOL_PARTS:
            result[n] = at
            at += getattr(self, n)
        return result


@lru_cache(maxsize=4096)
def producer_patch_rows(stage: Stage) -> int:
    """Return the most input rows the producer reads for one row of E."""
    spans = (stage.producer_rows.span(e, e + 1) for e in range(stage.e_shape[0]))
    return max(hi - lo for lo, hi, _ in spans)


@lru_cache(maxsize=65536)
def stage_layout(stage: Stage, width: int, kernel_bytes: int) -> Layout:
    """Return the transient sizes of `stage` with `width`-column tiles."""
    return layout_of(stage, tiles_of(stage, width), row_steps(stage), kernel_bytes)


def layout_of(stage: Stage, tiles: tuple[Tile, ...], steps: tuple[RowStep, ...],
              kernel_bytes: int) -> Layout:
    """Return the transient sizes of `stage` under its tiles (kernel scratch given)."""
    win_rows = max(s.hi - s.lo for s in steps)
    win_cols = max(t.eb - t.ea for t in tiles)
    tile_cols = max(t.c1 - t.c0 for t in tiles)
    window = win_rows * win_cols * stage.e_shape[2]
    patch = dw_out = out = 0
    x_c = stage.in_shape[2]
    if stage.kind == "fused":
        patch = producer_patch_rows(stage) * max(t.xb - t.xa for t in tiles) * x_c
    if stage.add is not None:
        patch = max(patch, tile_cols * x_c)
    if stage.kind in ("fused", "window"):
        dw_out = tile_cols * stage.dw_channels
    if stage.kind != "pool":
        out = tile_cols * stage.out_shape[2]
    return Layout(align(window), align(patch), align(dw_out), align(out), align(kernel_bytes))


@dataclass(frozen=True)
class SegmentShape:
    """A segment's stages with their tiles, schedule, rings and transient layouts."""

    stages: tuple[Stage, ...]
    widths: tuple[int, ...]
    tiles: tuple[tuple[Tile, ...], ...]
    rows: tuple[tuple[RowStep, ...], ...]
    stored: tuple[tuple[int, ...], ...]
    prefetched: tuple[tuple[int, ...], ...]
    schedule: tuple[tuple[int, int, int], ...]   # (stage, kind, row)
    streamed: bool
    ring_pixels: tuple[int, ...]       # per stage: its input ring's capacity (0: whole)
    e_ring_pixels: tuple[int, ...]     # per stage: its E ring's capacity in pixels
    layouts: tuple[Layout, ...]
    rows_needed: tuple[int, ...]       # per entry: leading input rows needed so far
    slack: int | None                  # room to trail the output into the input
    pair_bytes: int                    # input + output bytes together at the worst write
    access: dict                       # name -> rings.Access (the static check's data)

    @property
    def last(self) -> Stage:
        """Return the last stage."""
        return self.stages[-1]

    def ring_bytes(self, i: int) -> int:
        """Return the bytes of stage i's input ring (0 when that input is whole)."""
        return align(self.ring_pixels[i] * self.stages[i].in_shape[2])

    def e_ring_bytes(self, i: int) -> int:
        """Return the bytes of stage i's E ring."""
        return align(self.e_ring_pixels[i] * self.stages[i].e_shape[2])

    @property
    def pool_bytes(self) -> int:
        """Return the bytes of the transient pool the stages share."""
        return max(layout.total for layout in self.layouts)

    @property
    def acc_bytes(self) -> int:
        """Return the bytes of a final pool stage's int32 sums (0 without one)."""
        return align(self.last.in_shape[2] * 4) if self.last.kind == "pool" else 0

    @property
    def state_bytes(self) -> int:
        """Return the bytes of rings, E rings, pool and accumulator: everything but the
        segment's whole input and output tensors."""
        count = len(self.stages)
        return (sum(self.ring_bytes(i) for i in range(count))
                + sum(self.e_ring_bytes(i) for i in range(count))
                + self.pool_bytes + self.acc_bytes)

    def ring_problems(self, ring_pixels=None, e_ring_pixels=None) -> list[str]:
        """Return the static check's findings for these (default: the planned) ring
        capacities: every write lands on a slot whose previous pixel was read for the
        last time, every read finds its pixel written."""
        ring_pixels = self.ring_pixels if ring_pixels is None else ring_pixels
        e_ring_pixels = self.e_ring_pixels if e_ring_pixels is None else e_ring_pixels
        problems: list[str] = []
        for i, st in enumerate(self.stages):
            if ring_pixels[i]:
                problems += rings.ring_problems(f"{st.name} input ring",
                                                self.access[f"in{i}"], ring_pixels[i])
            if f"e{i}" in self.access and self.access[f"e{i}"].size:
                problems += rings.ring_problems(f"{st.name} E ring", self.access[f"e{i}"],
                                                e_ring_pixels[i])
        return problems


def build_shape(stages: tuple[Stage, ...], widths: tuple[int, ...], streamed: bool,
                kernel_bytes: tuple[int, ...]) -> SegmentShape:
    """Return the shape of a segment of `stages` with `widths` output columns per tile.

    streamed: the first stage reads the graph input from a ring filled row by row.
    kernel_bytes: per stage the kernel scratch its calls need.
    """
    tiles = tuple(tiles_of(st, w) for st, w in zip(stages, widths, strict=True))
    rows = tuple(row_steps(st) for st in stages)
    stored = tuple(stored_rows(st) for st in stages)
    schedule = pull_schedule(stages, rows)
    access, needed = accesses(stages, tiles, rows, stored, schedule, streamed)
    count = len(stages)
    ring_pixels = [rings.capacity(access[f"in{i}"]) if (i > 0 or streamed) else 0
                   for i in range(count)]
    if streamed:  # whole rows arrive at once: keep them whole in the ring
        w = stages[0].in_shape[1]
        ring_pixels[0] = -(-ring_pixels[0] // w) * w
    e_pixels = tuple(rings.capacity(access[f"e{i}"]) if f"e{i}" in access else 0
                     for i in range(count))
    layouts = tuple(stage_layout(st, w, k)
                    for st, w, k in zip(stages, widths, kernel_bytes, strict=True))
    slack, pair = None, 0
    if not streamed and stages[-1].kind != "pool":
        slack, pair = trail(stages[0], stages[-1], access["in0"], access[f"in{count}"])
    return SegmentShape(stages, tuple(widths), tiles, rows, stored,
                        tuple(prefetched_rows(st) for st in stages), schedule, streamed,
                        tuple(ring_pixels), e_pixels, layouts, needed, slack, pair, access)


@dataclass(frozen=True)
class ShapeSummary:
    """The few numbers of a SegmentShape the planner's options need (kept small)."""

    fixed_bytes: int      # rings and E rings (state without pool and accumulator)
    acc_bytes: int
    pair_bytes: int
    slack: int | None


@lru_cache(maxsize=4096)
def shape_summary(stages: tuple[Stage, ...], widths: tuple[int, ...], streamed: bool,
                  kernel_bytes: tuple[int, ...]) -> ShapeSummary:
    """Return the summary of build_shape(...) (cached: resident and streamed plans of one
    graph share most chains)."""
    shape = build_shape(stages, widths, streamed, kernel_bytes)
    return ShapeSummary(shape.state_bytes - shape.pool_bytes - shape.acc_bytes,
                        shape.acc_bytes, shape.pair_bytes, shape.slack)
