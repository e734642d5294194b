"""Arena offsets: greedy best-fit placement over buffer lifetimes, like TFLite Micro's.

Algorithm (`place`):
1. Every buffer has a size in bytes and a lifetime [first_step, last_step] in plan
   steps (unit indices), inclusive.
2. Buffers that the planner decided must sit at fixed distances from each other (an
   output written in place over its input) form one *group* with relative offsets;
   every other buffer is a group of its own.
3. Groups are placed largest first (by their largest member, then by longest lifetime,
   then by name, so the result is deterministic).
4. For each group, the candidate base offsets are 0 and every end of an already placed
   buffer that is live at the same time as some member, minus that member's relative
   offset.
5. Candidates are tried from the lowest; the first at which no member overlaps, in both
   bytes and lifetime, a placed buffer of another group is taken.
6. The arena size is the largest end offset.

What it does not guarantee: the optimum. Greedy-by-size can fragment; the planner reports
the lower bound (the most bytes live at any one moment) beside the placed peak so that
the loss is visible. Overlaps inside a group are by design; `overlaps()` accepts exactly
those pairs and reports anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.errors import IRError


@dataclass(frozen=True)
class Buffer:
    """A block of arena bytes alive from first_step to last_step inclusive."""

    name: str
    size_bytes: int
    first_step: int
    last_step: int

    def lives_with(self, other: Buffer) -> bool:
        """Return True when the two lifetimes share a step."""
        return self.first_step <= other.last_step and other.first_step <= self.last_step


@dataclass(frozen=True)
class Placement:
    """Arena offsets by buffer name and the arena size they need."""

    offsets: dict[str, int]
    buffers: dict[str, Buffer]
    arena_bytes: int

    def end(self, name: str) -> int:
        """Return the first byte after buffer `name`."""
        return self.offsets[name] + self.buffers[name].size_bytes


def _bytes_overlap(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def place(buffers: list[Buffer], groups: list[dict[str, int]] | None = None,
          alignment: int = 16) -> Placement:
    """Return offsets for `buffers`; `groups` maps member names to relative offsets.

    Group members keep their relative offsets (which must be multiples of `alignment`
    when alignment matters to the caller); every base offset is a multiple of `alignment`.
    """
    by_name = {b.name: b for b in buffers}
    grouped = {n for g in groups or [] for n in g}
    all_groups = [dict(g) for g in groups or []] + [
        {b.name: 0} for b in buffers if b.name not in grouped]
    for g in all_groups:
        low = min(g.values())
        for n in g:
            g[n] -= low

    def key(g: dict[str, int]):
        biggest = max(by_name[n].size_bytes for n in g)
        span = max(by_name[n].last_step for n in g) - min(by_name[n].first_step for n in g)
        return (-biggest, -span, min(g))

    offsets: dict[str, int] = {}
    for g in sorted(all_groups, key=key):
        members = [(by_name[n], rel) for n, rel in g.items()]
        candidates = {0}
        for placed_name, off in offsets.items():
            placed = by_name[placed_name]
            end = off + placed.size_bytes
            for m, rel in members:
                if m.lives_with(placed) and end - rel >= 0:
                    candidates.add(-(-(end - rel) // alignment) * alignment)
        for base in sorted(candidates):
            if all(not (m.lives_with(by_name[p]) and _bytes_overlap(
                    base + rel, base + rel + m.size_bytes, off, off + by_name[p].size_bytes))
                   for m, rel in members for p, off in offsets.items()):
                break
        offsets.update({m.name: base + rel for m, rel in members})
    arena = max((offsets[b.name] + b.size_bytes for b in buffers), default=0)
    return Placement(offsets, by_name, arena)


def overlaps(placement: Placement, allowed: set[frozenset[str]] = frozenset()) -> list[str]:
    """Return one message per pair of buffers that share bytes while both are alive,
    except the pairs in `allowed` (in-place writes the planner has proven safe)."""
    problems = []
    items = sorted(placement.buffers.values(), key=lambda b: placement.offsets[b.name])
    for i, a in enumerate(items):
        a0 = placement.offsets[a.name]
        if a0 < 0 or a0 + a.size_bytes > placement.arena_bytes:
            problems.append(f"{a.name} [{a0}, {a0 + a.size_bytes}) is outside the arena")
        for b in items[i + 1:]:
            b0 = placement.offsets[b.name]
            if b0 >= a0 + a.size_bytes:
                break
            if a.lives_with(b) and frozenset((a.name, b.name)) not in allowed:
                problems.append(f"{a.name} [{a0}, {a0 + a.size_bytes}) steps "
                                f"{a.first_step}-{a.last_step} overlaps {b.name} [{b0}, "
                                f"{b0 + b.size_bytes}) steps {b.first_step}-{b.last_step}")
    return problems


def check(placement: Placement, allowed: set[frozenset[str]] = frozenset()) -> None:
    """Raise IRError listing the overlaps if there are any."""
    problems = overlaps(placement, allowed)
    if problems:
        raise IRError("arena plan overlaps: " + "; ".join(problems[:5]))


def live_bytes(buffers: list[Buffer], step: int) -> int:
    """Return the bytes of the buffers alive at `step` (the placement-free lower bound)."""
    return sum(b.size_bytes for b in buffers if b.first_step <= step <= b.last_step)


def render(placement: Placement, steps: int, width: int = 64,
           is_scratch=lambda name: "." in name, is_ring=lambda name: False) -> str:
    """Return an ASCII map: one line per step, columns = arena offset.

    Tensors are drawn with a letter each (in order of first use), scratch buffers with
    '+', rings of a depth-first segment with '=', bytes two live buffers share (an
    in-place write) with '#'.
    """
    if placement.arena_bytes == 0:
        return "(empty arena)"
    symbols = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    tensors = sorted((n for n in placement.buffers if not is_scratch(n)),
                     key=lambda n: (placement.buffers[n].first_step, placement.offsets[n], n))
    letters = {n: symbols[i % len(symbols)] for i, n in enumerate(tensors)}
    scale = placement.arena_bytes / width
    lines = []
    for step in range(steps):
        row = ["."] * width
        for n, b in placement.buffers.items():
            if b.first_step <= step <= b.last_step:
                lo = int(placement.offsets[n] / scale)
                hi = max(lo + 1, int(-(-(placement.offsets[n] + b.size_bytes) // scale)))
                mark = letters.get(n, "=" if is_scratch(n) and is_ring(n) else "+")
                for c in range(lo, min(hi, width)):
                    row[c] = mark if row[c] == "." else "#"
        lines.append(f"{step:>4} |{''.join(row)}|")
    legend = [f"  {letters[n]} = {n}" for n in tensors]
    footer = f"     0{'':>{width - 1}}{placement.arena_bytes} bytes"
    return "\n".join(lines + [footer, "  + = scratch of the step's unit, = = rings of a "
                              "depth-first segment, # = shared bytes", *legend])
