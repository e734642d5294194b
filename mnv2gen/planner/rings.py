"""Rings: a tensor kept as a circular buffer of just the pixels still to be read.

A ring stores a tensor's pixels (or the kept rows of E) in raster order: stored index i
lives in slot i mod capacity. Every index is written exactly once, in increasing
order; `Access` holds per index the time of its write and of its first and last read
(times count the segment's tile steps, see mnv2gen.planner.segment). Then
- index i may overwrite index i - capacity only when that one's last read is earlier:
  `capacity` is the smallest capacity for which this holds everywhere;
- `ring_problems` checks a given capacity against the accesses exactly (the static
  check a plan must pass: a ring one row too small fails it), and that nothing is read
  before it is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEVER = -1


@dataclass(frozen=True)
class Access:
    """Per stored index: write time, first and last read time (NEVER: none)."""

    write: np.ndarray
    first_read: np.ndarray
    last_read: np.ndarray

    @property
    def size(self) -> int:
        """Return the number of stored indices."""
        return int(self.write.size)


def empty(size: int) -> dict[str, np.ndarray]:
    """Return fresh per-index arrays (write, first_read, last_read) for `size` indices."""
    big = np.iinfo(np.int64).max
    return {"write": np.full(size, NEVER, np.int64), "first_read": np.full(size, big, np.int64),
            "last_read": np.full(size, NEVER, np.int64)}


def freeze(arrays: dict[str, np.ndarray]) -> Access:
    """Return the arrays as an Access (unread indices get first_read NEVER)."""
    first = arrays["first_read"].copy()
    first[first == np.iinfo(np.int64).max] = NEVER
    return Access(arrays["write"], first, arrays["last_read"])


def first_live(access: Access, times: np.ndarray) -> np.ndarray:
    """Return per time the first index whose last read is not before it (size: none)."""
    prefix = np.maximum.accumulate(access.last_read) if access.size else access.last_read
    return np.searchsorted(prefix, times, side="left")


def capacity(access: Access) -> int:
    """Return the fewest slots at which no write overwrites an index still to be read."""
    written = np.nonzero(access.write != NEVER)[0]
    if written.size == 0:
        return 0
    live = first_live(access, access.write[written])
    return int(np.max(written + 1 - np.minimum(live, written)))


def ring_problems(name: str, access: Access, slots: int) -> list[str]:
    """Return what goes wrong when the ring holds `slots` indices: a write over an index
    still to be read, or a read before the write (empty when all is well)."""
    problems: list[str] = []
    written = access.write != NEVER
    if not written.any():
        return problems
    if slots <= 0:
        return [f"{name}: a ring of {slots} slots cannot hold anything"]
    if slots < access.size:
        later = access.write[slots:]
        earlier_last = access.last_read[:-slots]
        bad = np.nonzero((later != NEVER) & (earlier_last >= later))[0]
        if bad.size:
            i = int(bad[0])
            problems.append(f"{name}: writing index {i + slots} at time {int(later[i])} "
                            f"overwrites index {i}, still read at time "
                            f"{int(earlier_last[i])} (ring of {slots} slots)")
    read = access.first_read != NEVER
    early = np.nonzero(read & ((access.write == NEVER) | (access.first_read <= access.write)))[0]
    if early.size:
        i = int(early[0])
        problems.append(f"{name}: index {i} is read at time {int(access.first_read[i])} before "
                        "it is written")
    return problems
