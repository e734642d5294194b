"""Seeded random numbers that are the same on every machine and NumPy version.

NumPy keeps the raw output of its bit generators (PCG64 seeded through SeedSequence)
stable, but not the distributions of `np.random.Generator`: they may change between
releases, and the normal sampler calls the C library's `exp`/`log`, whose last bit differs
between platforms. A `Stream` uses only the raw 64-bit words, integer arithmetic and
IEEE-754 operations that are correctly rounded everywhere (+, -, *, /), so each value is
reproducible bit for bit:

- `uniform`: the top 53 bits of a word scaled into [low, high);
- `normal`: the Irwin-Hall sum of 12 uniforms (32-bit halves of 6 words) minus 6, which
  has mean 0 and variance 1 and lies within +-6; the sum is formed in int64 and scaled
  by a power of two once, so it is exact.
"""

from __future__ import annotations

import numpy as np

_TWO_M53 = 2.0 ** -53
_TWO_M32 = 2.0 ** -32


class Stream:
    """Reproducible random numbers from the key (seed, purpose, ...), all integers >= 0."""

    def __init__(self, *key: int) -> None:
        self._bits = np.random.PCG64(np.random.SeedSequence([int(k) for k in key]))

    def words(self, count: int) -> np.ndarray:
        """Return `count` raw uint64 words."""
        return self._bits.random_raw(count)

    def uniform(self, low: float, high: float, shape=()) -> np.ndarray:
        """Return float64 values uniform in [low, high) of `shape`."""
        count = int(np.prod(shape, dtype=np.int64))
        unit = (self.words(count) >> np.uint64(11)).astype(np.float64) * _TWO_M53
        return (low + (high - low) * unit).reshape(shape)

    def normal(self, loc: float = 0.0, scale: float = 1.0, shape=()) -> np.ndarray:
        """Return float64 approximately normal values (Irwin-Hall, 12 terms) of `shape`."""
        count = int(np.prod(shape, dtype=np.int64))
        # the 12 halves of 6 words per value, in any order (byte order does not matter)
        halves = self.words(6 * count).view(np.uint32).reshape(count, 12)
        # sum of uniforms (h + 1/2) * 2**-32, minus 6: an integer below 2**36 times 2**-32
        total = halves.sum(axis=1, dtype=np.int64) + (6 - 6 * (1 << 32))
        return (loc + scale * (total.astype(np.float64) * _TWO_M32)).reshape(shape)
