"""Integer ranges of what the templates write into C, checked in Python before any C exists.

Every integer a template substitutes lands in an `int32_t` (parameters, dims, counts,
arena offsets) or in a narrower field: the fused units' band tables and channel-group
bounds are `int16_t` (templates/runtime/mnv2_fused.h); a segment's tile, row and E-row
tables are `int16_t`, its schedule entries `uint8_t` stage and kind with a `uint16_t` row,
and its streamed rows-needed table `uint16_t` (templates/runtime/mnv2_segment.h). A value
outside its type would be truncated by the C compiler (a `-Woverflow` warning at best) and
the code would compute something else, so codegen refuses first. The front door
(mnv2gen.frontend.validate) keeps real models far inside these ranges; reaching one of
these errors means a limit is missing.
"""

from __future__ import annotations

from mnv2gen.errors import InternalError

INT16 = (-(1 << 15), (1 << 15) - 1)
INT32 = (-(1 << 31), (1 << 31) - 1)
UINT8 = (0, (1 << 8) - 1)
UINT16 = (0, (1 << 16) - 1)
_TYPE_NAMES = {INT16: "int16_t", INT32: "int32_t", UINT8: "uint8_t", UINT16: "uint16_t"}
# Context keys whose integers are stored in a type narrower than int32_t, per template (the
# fused units' keys for every other template); a tuple of types gives the type of each
# position of the key's rows (a C struct's fields).
FUSED_KEYS = {"bands": INT16, "group_start": INT16}
NARROW_KEYS: dict[str, dict] = {
    "segment.c.j2": {"tiles": INT16, "rows": INT16, "erows": INT16,
                     "entries": (UINT8, UINT8, UINT16), "rows_needed": UINT16},
}
INT16_KEYS = frozenset(FUSED_KEYS)
# The streamed input's numbers (mnv2_model.h/.c): row counts compared with uint16_t tables.
STREAM_KEYS = {"rows": UINT16, "ring_rows": UINT16, "entries": INT32, "row_bytes": INT32}


def _check(value: int, key: str, where: str, limits: tuple[int, int]) -> None:
    lo, hi = limits
    if not lo <= value <= hi:
        raise InternalError(f"{where}: {key} = {value} does not fit the C type "
                            f"{_TYPE_NAMES[limits]}")


def _walk(value, key: str, where: str, limits, narrow: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, k, where, narrow.get(k, limits), narrow)
    elif isinstance(value, (list, tuple)):
        fields = isinstance(limits[0], tuple)
        for v in value:
            if fields and isinstance(v, (list, tuple)):
                if len(v) != len(limits):
                    raise InternalError(f"{where}: a row of {key} has {len(v)} fields, "
                                        f"its C struct {len(limits)}")
                for item, field_limits in zip(v, limits, strict=True):
                    _walk(item, key, where, field_limits, narrow)
            else:
                _walk(v, key, where, limits, narrow)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if isinstance(limits[0], tuple):
            raise InternalError(f"{where}: {key} holds a number where rows of "
                                f"{len(limits)} fields belong")
        _check(value, key, where, limits)


def check_context(where: str, context: dict, template: str = "fused.c.j2") -> None:
    """Raise InternalError when an integer of a unit's template context does not fit the C
    type `template` writes it as (NARROW_KEYS[template], else FUSED_KEYS, for the keys
    listed; int32_t otherwise)."""
    _walk(context, "", where, INT32, NARROW_KEYS.get(template, FUSED_KEYS))


def check_stream(stream: dict | None) -> None:
    """Raise InternalError when a streamed input's numbers do not fit their C types."""
    if stream is not None:
        for key, limits in STREAM_KEYS.items():
            _check(stream[key], key, "the streamed input", limits)


def check_arena(arena_bytes: int, const_bytes: int) -> None:
    """Raise InternalError when the arena or constant data exceed what int32_t offsets and
    a 32-bit size_t can address."""
    for what, value in (("arena", arena_bytes), ("constant data", const_bytes)):
        if not 0 <= value <= INT32[1]:
            raise InternalError(f"the {what} of {value:,} bytes exceeds int32_t offsets")
