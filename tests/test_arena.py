"""Arena placement: hand-computed offsets, the overlap checker and the map."""

from __future__ import annotations

import pytest

from mnv2gen.errors import IRError
from mnv2gen.planner.arena import Buffer, check, overlaps, place, render


def test_greedy_places_largest_first_and_reuses_dead_space():
    # a (100 B, steps 0-1) and b (60 B, steps 1-2) live together at step 1;
    # c (80 B, step 3) can reuse offset 0 once both are dead.
    buffers = [Buffer("a", 100, 0, 1), Buffer("b", 60, 1, 2), Buffer("c", 80, 3, 3)]
    p = place(buffers, alignment=4)
    assert p.offsets == {"a": 0, "b": 100, "c": 0}
    assert p.arena_bytes == 160
    assert overlaps(p) == []


def test_gap_between_buffers_is_filled_best_fit():
    buffers = [Buffer("big", 100, 0, 4), Buffer("mid", 50, 0, 1), Buffer("late", 50, 2, 4),
               Buffer("small", 40, 1, 1)]
    p = place(buffers, alignment=1)
    # big at 0, mid after it (100), late reuses mid's bytes after step 1, small after mid
    assert p.offsets["big"] == 0 and p.offsets["mid"] == 100 and p.offsets["late"] == 100
    assert p.offsets["small"] == 150 and p.arena_bytes == 190


def test_alignment_rounds_offsets_up():
    p = place([Buffer("a", 10, 0, 1), Buffer("b", 10, 0, 1)], alignment=16)
    assert sorted(p.offsets.values()) == [0, 16]


def test_groups_keep_relative_offsets_and_their_overlap_is_allowed():
    buffers = [Buffer("x", 100, 0, 1), Buffer("y", 120, 1, 2), Buffer("s", 30, 1, 1)]
    p = place(buffers, groups=[{"x": 40, "y": 0}], alignment=1)
    assert p.offsets["x"] - p.offsets["y"] == 40
    assert overlaps(p, {frozenset(("x", "y"))}) == []
    assert len(overlaps(p)) == 1 and "overlaps" in overlaps(p)[0]
    assert p.offsets["s"] >= 140  # scratch of step 1 sits above the pair


def test_checker_reports_a_corrupted_offset():
    buffers = [Buffer("a", 64, 0, 2), Buffer("b", 64, 1, 2)]
    p = place(buffers)
    p.offsets["b"] = 32
    with pytest.raises(IRError, match="a \\[0, 64\\) steps 0-2 overlaps b"):
        check(p)


def test_render_draws_one_row_per_step():
    p = place([Buffer("a", 64, 0, 1), Buffer("b", 64, 1, 2)])
    lines = render(p, 3, width=8).splitlines()
    assert lines[0] == "   0 |AAAA....|" and lines[1] == "   1 |AAAABBBB|"
    assert lines[2] == "   2 |....BBBB|"
