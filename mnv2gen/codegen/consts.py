"""Constant arrays of the generated code (weights, biases, requantisation tables)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnv2gen.codegen.text import comment_text
from mnv2gen.errors import InternalError

_CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t",
           np.dtype(np.int32): "int32_t", np.dtype(np.uint8): "uint8_t",
           np.dtype(np.int64): "int64_t", np.dtype(np.float32): "float"}
_PER_LINE = {1: 24, 2: 16, 4: 12, 8: 8}


@dataclass(frozen=True)
class ConstArray:
    """One const C array: symbol, C element type, values (padded), a comment."""

    symbol: str
    ctype: str
    values: np.ndarray
    count: int  # elements before padding
    comment: str

    @property
    def size_bytes(self) -> int:
        """Return the bytes the array occupies (padding included)."""
        return int(self.values.nbytes)

    def body(self) -> str:
        """Return the initializer lines, one row of values per line."""
        per_line = _PER_LINE[self.values.dtype.itemsize]
        flat = self.values.reshape(-1).tolist()
        # float32 constants as exact C99 hexadecimal literals
        text = (lambda v: float(v).hex() + "f") if self.values.dtype.kind == "f" else str
        return "\n".join("    " + ", ".join(map(text, flat[i:i + per_line])) + ","
                         for i in range(0, len(flat), per_line))


class ConstPool:
    """Collects the const arrays a model needs; identical arrays are stored once."""

    def __init__(self) -> None:
        self.arrays: list[ConstArray] = []
        self._by_content: dict[tuple, str] = {}
        self._symbols: set[str] = set()

    def add(self, symbol: str, values, dtype, comment: str = "") -> str:
        """Return the symbol under which `values` (cast to `dtype`) can be referenced:
        `symbol` with the library prefix `mnv2_` in front (the arrays are external symbols).

        A symbol already taken by other values gets a numeric suffix. Arrays are padded
        with zeros to a multiple of 16 bytes plus 16 bytes: Helium
        kernels may read up to 3 elements past the end of per-channel arrays. Integer
        values outside `dtype`'s range and float values that are not finite in `dtype`
        raise InternalError (a cast would change them silently); `comment` goes through
        `comment_text`.
        """
        symbol = symbol if symbol.startswith("mnv2_") else f"mnv2_{symbol}"
        source = np.asarray(values)
        if np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            if source.size and (source.min() < info.min or source.max() > info.max):
                raise InternalError(f"constant {symbol}: values {int(source.min())}.."
                                    f"{int(source.max())} do not fit {np.dtype(dtype).name}")
        array = np.ascontiguousarray(source.astype(dtype).reshape(-1))
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InternalError(f"constant {symbol}: a value is not finite in "
                                f"{array.dtype.name} (C has no literal for it)")
        key = (array.dtype.str, array.tobytes())
        if key in self._by_content:
            return self._by_content[key]
        itemsize = array.dtype.itemsize
        padded_bytes = -(-array.nbytes // 16) * 16 + 16
        padded = np.zeros(padded_bytes // itemsize, dtype=array.dtype)
        padded[:array.size] = array
        base, n = symbol, 1
        while symbol in self._symbols:
            symbol, n = f"{base}_{n}", n + 1
        self._symbols.add(symbol)
        self.arrays.append(ConstArray(symbol, _CTYPES[array.dtype], padded, array.size,
                                      comment_text(comment)))
        self._by_content[key] = symbol
        return symbol

    @property
    def total_bytes(self) -> int:
        """Return the flash bytes of all arrays."""
        return sum(a.size_bytes for a in self.arrays)
