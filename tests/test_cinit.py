"""Designated initialisers (mnv2gen.codegen.cinit) read the runtime's struct layouts."""

from __future__ import annotations

import pytest

from mnv2gen.codegen.cinit import Initialiser, parse_structs, runtime_structs
from mnv2gen.codegen.emit import templates_dir

HEADER = """
typedef struct
{
    int32_t a, b; /**< two, one line */
    const int8_t *filter;
    int32_t dims[4];
} inner_t;
typedef struct { inner_t in; int16_t k; } outer_t;
"""


def test_struct_members_are_read_in_order_with_their_types():
    structs = parse_structs(HEADER)
    assert [(f.name, f.type_name, f.array) for f in structs["inner_t"]] == [
        ("a", "int32_t", False), ("b", "int32_t", False), ("filter", "int8_t*", False),
        ("dims", "int32_t", True)]
    assert [f.name for f in structs["outer_t"]] == ["in", "k"]


def test_initialisers_name_every_member_and_nest():
    init = Initialiser(parse_structs(HEADER))
    assert init("outer_t", [[1, 2, "w", [1, 2, 3, 4]], 7]) == (
        "{ .in = { .a = 1, .b = 2, .filter = w, .dims = { 1, 2, 3, 4 } }, .k = 7 }")
    assert init("outer_t", {"k": 3, "in": None}) == "{ .k = 3 }"
    long = init.define("inner_t", "x" * 60, [123456789, -123456789, "y" * 30, [1, 1, 1, 1]])
    assert long.endswith("\n};") and all(len(line) <= 100 for line in long.splitlines())
    with pytest.raises(ValueError, match="4 members"):
        init("inner_t", [1, 2])
    with pytest.raises(KeyError, match="no member"):
        init("outer_t", {"c": 1})


def test_every_runtime_struct_is_readable():
    structs = runtime_structs(str(templates_dir() / "runtime"))
    assert {"mnv2_conv_params", "mnv2_fused_unit", "mnv2_seg_stage", "mnv2_band"} <= set(structs)
    stage = {f.name: f.type_name for f in structs["mnv2_seg_stage"]}
    assert stage["producer"] == "mnv2_fused_conv" and stage["tiles"] == "mnv2_seg_tile*"
