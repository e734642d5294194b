"""Integer ranges of what the templates write into C, checked in Python before any C exists.

Every integer a template substitutes lands in an `int32_t` (parameters, dims, counts,
arena offsets) or, for the fused units' band tables and channel-group bounds, an
`int16_t` (templates/runtime/mnv2_fused.h). A value outside its type would be truncated
by the C compiler (a `-Woverflow` warning at best) and the code would compute something
else, so codegen refuses first. The front door (mnv2gen.frontend.validate) keeps real
models far inside these ranges; reaching one of these errors means a limit is missing.
"""

from __future__ import annotations

from mnv2gen.errors import InternalError

INT16 = (-(1 << 15), (1 << 15) - 1)
INT32 = (-(1 << 31), (1 << 31) - 1)
# context keys whose integers are stored as int16_t; everything else is int32_t
INT16_KEYS = frozenset({"bands", "group_start"})


def _walk(value, key: str, where: str, limits: tuple[int, int]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, k, where, INT16 if k in INT16_KEYS else limits)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _walk(v, key, where, limits)
    elif isinstance(value, int) and not isinstance(value, bool):
        lo, hi = limits
        if not lo <= value <= hi:
            kind = "int16_t" if limits == INT16 else "int32_t"
            raise InternalError(f"{where}: {key} = {value} does not fit the C type {kind}")


def check_context(where: str, context: dict) -> None:
    """Raise InternalError when an integer of a unit's template context does not fit the C
    type it is written as (int16_t for INT16_KEYS, int32_t otherwise)."""
    _walk(context, "", where, INT32)


def check_arena(arena_bytes: int, const_bytes: int) -> None:
    """Raise InternalError when the arena or constant data exceed what int32_t offsets and
    a 32-bit size_t can address."""
    for what, value in (("arena", arena_bytes), ("constant data", const_bytes)):
        if not 0 <= value <= INT32[1]:
            raise InternalError(f"the {what} of {value:,} bytes exceeds int32_t offsets")
