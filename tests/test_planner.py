"""Planner: band arithmetic by hand, and every plan proven by simulation in one arena."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from conftest import model_params

from mnv2gen.errors import MnvError
from mnv2gen.inputs import random_inputs
from mnv2gen.loader import load_model
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.planner.arena import Placement, overlaps
from mnv2gen.planner.chunking import Chunking, bands, group_bounds, input_rows
from mnv2gen.planner.plan import plan_model, plan_problems
from mnv2gen.planner.schedule import FusedUnit, build_units
from mnv2gen.planner.simulate import simulate
from mnv2gen.reference import run

FORCED = [Chunking(1, 1), Chunking(2, 1), Chunking(0, 1), Chunking(1, 2), Chunking(2, 3),
          Chunking(0, 6), Chunking(3, 6)]


def _differing_bytes(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    return sum(int(np.count_nonzero(x.view(np.uint8) != y.view(np.uint8)))
               for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def person_detect():
    from conftest import SHARED_MODELS
    path = SHARED_MODELS / "tflite" / "tflm_person_detect_mbv1_0.25_96_int8.tflite"
    if not path.exists():
        pytest.skip(f"shared model {path} not found")
    return integer_core(load_model(path))


def test_input_rows_of_a_stride2_same_conv():
    # 224 rows, 3x3, stride 2, SAME -> padding top 0, bottom 1 (TFLite puts the odd row last)
    graph = integer_core(load_model(pytest.importorskip("conftest").SHARED_MODELS / "tflite"
                                    / "aquapapaya_keras_mobilenet_v2_1.0_224_ptq_int8.tflite"))
    stem = graph.ops[0]
    assert input_rows(graph, stem, (0, 1)) == ((0, 3), 0)
    assert input_rows(graph, stem, (5, 8)) == ((10, 17), 0)
    assert input_rows(graph, stem, (111, 112)) == ((222, 224), 0)  # row 224 is padding


def test_sliding_window_computes_every_expanded_row_once(person_detect):
    graph = person_detect
    unit = next(u for u in build_units(graph) if isinstance(u, FusedUnit) and u.producer)
    band_list = bands(graph, unit, Chunking(2, 1))
    # the depthwise (3x3, stride 1, pad 1) over 48 rows: band 0 reads rows 0..2 with one
    # padding row above, later bands keep 2 rows and compute 2 new ones
    assert band_list[0].window_rows == (0, 3) and band_list[0].window_pad_top == 1
    assert band_list[1].window_rows == (1, 5) and band_list[1].keep_rows == 2
    assert band_list[1].new_rows == (3, 5)
    produced = [r for b in band_list for r in range(*b.new_rows)]
    assert produced == list(range(48))


def test_group_bounds_cover_every_channel_once():
    assert group_bounds(96, 1) == ((0, 96),)
    assert group_bounds(96, 6) == ((0, 16), (16, 32), (32, 48), (48, 64), (64, 80), (80, 96))
    assert group_bounds(144, 5) == ((0, 28), (28, 56), (56, 84), (84, 112), (112, 144))
    for g in (2, 3, 4, 6, 8):
        bounds = group_bounds(100, g)
        assert bounds[0][0] == 0 and bounds[-1][1] == 100
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


@pytest.mark.parametrize("path", model_params())
def test_simulation_equals_reference_on_shared_models(path):
    graph = integer_core(load_model(path))
    inputs = random_inputs(graph, 11)
    expected = run(graph, inputs)
    baseline = plan_model(graph, "layer")
    assert _differing_bytes(expected, simulate(baseline, inputs)) == 0
    for forced in [None, *FORCED]:  # the per-unit plans (today's and forced chunkings)
        plan = plan_model(graph, "bottleneck", forced=forced)
        assert overlaps(plan.placement, set(plan.allowed_overlaps)) == []
        assert plan.peak_bytes <= 1.10 * plan.lower_bound_bytes, forced
        assert _differing_bytes(expected, simulate(plan, inputs)) == 0, forced
    default = plan_model(graph)
    assert default.peak_bytes < baseline.peak_bytes
    assert default.segments or any(isinstance(getattr(u, "unit", None), FusedUnit)
                                   for u in default.units)
    for plan in (default, plan_model(graph, input_mode="streamed")):  # segments
        assert plan_problems(plan) == []
        assert plan.peak_bytes <= 1.10 * plan.lower_bound_bytes, plan.input_mode
        assert _differing_bytes(expected, simulate(plan, inputs)) == 0, plan.input_mode


def test_in_place_writes_happen(person_detect):
    plan = plan_model(person_detect, forced=Chunking(1, 1))
    assert plan.allowed_overlaps, "a MobileNet plan writes some outputs over their inputs"


def _corrupt(plan, name: str, offset: int):
    offsets = dict(plan.placement.offsets)
    offsets[name] = offset
    placement = Placement(offsets, plan.placement.buffers, plan.placement.arena_bytes)
    return dataclasses.replace(plan, placement=placement)


def test_a_wrong_scratch_offset_shows_up_as_a_mismatch(person_detect):
    plan = plan_model(person_detect, forced=Chunking(2, 1))
    inputs = random_inputs(person_detect, 5)
    expected = run(person_detect, inputs)
    unit = next(u for u in plan.units if isinstance(u.unit, FusedUnit) and u.unit.producer)
    # put the window on top of the unit's input: expanded rows overwrite unread input rows
    bad = _corrupt(plan, f"{unit.name}.window", plan.offset(unit.unit.input))
    assert overlaps(bad.placement, set(bad.allowed_overlaps))
    assert _differing_bytes(expected, simulate(bad, inputs)) > 0


def test_an_output_written_ahead_of_its_input_shows_up_as_a_mismatch(person_detect):
    plan = plan_model(person_detect, forced=Chunking(1, 1))
    inputs = random_inputs(person_detect, 6)
    expected = run(person_detect, inputs)
    step = next(u for u in plan.units if isinstance(u.unit, FusedUnit)
                and frozenset((plan.buffer_of[u.unit.input], plan.buffer_of[u.unit.output]))
                in plan.allowed_overlaps)
    x, y = step.unit.input, plan.buffer_of[step.unit.output]
    row = plan.graph.tensor(x).size_bytes // plan.graph.tensor(x).shape[1]
    moved = min(plan.offset(x) + 4 * row, plan.peak_bytes - plan.graph.tensor(y).size_bytes)
    assert moved > plan.offset(y)
    bad = _corrupt(plan, y, moved)  # the output now overtakes the input's read position
    assert _differing_bytes(expected, simulate(bad, inputs)) > 0


def test_ram_budget_picks_a_plan_that_fits_or_says_the_minimum(person_detect):
    default = plan_model(person_detect)
    loose = plan_model(person_detect, ram_budget=default.peak_bytes + 20_000)
    assert loose.peak_bytes <= default.peak_bytes + 20_000
    tight_floor = min(plan_model(person_detect, forced=c).peak_bytes for c in FORCED)
    fitted = plan_model(person_detect, ram_budget=tight_floor)
    assert fitted.peak_bytes <= tight_floor
    inputs = random_inputs(person_detect, 2)
    assert _differing_bytes(run(person_detect, inputs), simulate(fitted, inputs)) == 0
    with pytest.raises(MnvError, match="smallest achievable peak is"):
        plan_model(person_detect, ram_budget=10_000)


def test_plan_cli_json_and_errors(shared_model, run_cli):
    import json
    path = shared_model("tflm_person_detect")
    code, out, err = run_cli("plan", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    for key in ("peak_bytes", "layer_by_layer_bytes", "lower_bound_bytes", "units"):
        assert key in report
    assert report["peak_bytes"] < report["layer_by_layer_bytes"]
    assert all({"name", "live_bytes", "scratch_bytes", "chunking"} <= set(u)
               for u in report["units"])
    code, out, err = run_cli("plan", path)
    assert code == 0 and "arena map" in out and "peak arena" in out
    code, _, err = run_cli("plan", path, "--ram-budget", "4k")
    assert code == 2 and "smallest achievable peak" in err
    code, _, err = run_cli("plan", path, "--ram-budget", "lots")
    assert code == 2 and "not a byte count" in err
