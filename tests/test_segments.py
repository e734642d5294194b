"""Depth-first segments: row geometry by hand, rings checked statically and by simulation,
streamed input, the DP never worse than the per-unit plan, the report and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mnv2gen.errors import MnvError
from mnv2gen.inputs import random_inputs
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.planner import rings
from mnv2gen.planner.plan import plan_model, plan_problems
from mnv2gen.planner.schedule import build_units
from mnv2gen.planner.segment import prefetched_rows, row_steps, stored_rows, tiles_of
from mnv2gen.planner.segment_shape import build_shape
from mnv2gen.planner.simulate import simulate
from mnv2gen.planner.stages import chains, first_reader, last_reader, window_rows
from mnv2gen.planner.steps import SegmentPlan
from mnv2gen.reference import run
from mnv2gen.zoo import synthesize


def _differing(a, b) -> int:
    return sum(int(np.count_nonzero(x.view(np.uint8) != y.view(np.uint8)))
               for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def v2():
    """A synthesized MobileNetV2 0.35 at 48x48 (stride-2 stem, shortcuts, MEAN)."""
    return integer_core(synthesize("mobilenet-v2", 0.35, 48, 4, seed=1))


@pytest.fixture(scope="module")
def v1():
    """A synthesized MobileNetV1 0.25 at 32x32 (separable pairs read rings directly)."""
    return integer_core(synthesize("mobilenet-v1", 0.25, 32, 4, seed=2))


def test_row_geometry_of_the_stem_and_a_stride_two_block(v2):
    stages = chains(v2, build_units(v2))
    stem, block1 = stages[0], stages[1]
    # block0: stem 3x3 s2 (pad 0 above) -> depthwise 3x3 s1 pad 1 -> projection
    assert stem.kind == "fused" and window_rows(stem, 0) == (0, 2, 1)
    assert window_rows(stem, 5) == (4, 7, 0)
    assert stem.producer_rows.span(3, 4) == (6, 9, 0)   # E row 3 reads input rows 6..8
    assert first_reader(stem, 3) == 2 and last_reader(stem, 3) == 4
    # the first output row needs two new rows of E: one is computed ahead of time
    assert prefetched_rows(stem) == (0,)
    assert [(s.lo, s.hi, s.new) for s in row_steps(stem)[:3]] == [(0, 2, 1), (0, 3, 2),
                                                                   (1, 4, 3)]
    # block1: depthwise 3x3 s2 with SAME padding 0 above: odd rows of E are read once
    assert window_rows(block1, 4) == (8, 11, 0)
    stored = stored_rows(block1)
    assert stored[9] == -1 and stored[10] >= 0 and stored[8] >= 0
    tiles = tiles_of(block1, 4)
    assert [(t.c0, t.c1, t.ea, t.eb, t.halo) for t in tiles[:2]] == [(0, 4, 0, 9, 0),
                                                                     (4, 8, 8, 17, 1)]


def test_ring_capacity_and_the_static_check_by_hand():
    # indices 0..9 written at times 1..10; index i last read at time i + 3
    access = rings.Access(np.arange(1, 11), np.arange(2, 12), np.arange(4, 14))
    assert rings.capacity(access) == 4   # index i + 4 is written after index i is read
    assert rings.ring_problems("r", access, 4) == []
    problems = rings.ring_problems("r", access, 3)
    assert problems and "overwrites index 0" in problems[0]


@pytest.mark.parametrize("mode", ["resident", "streamed"])
def test_segment_plans_simulate_equal_to_the_reference(v2, v1, mode):
    for graph in (v2, v1):
        plan = plan_model(graph, input_mode=mode)
        assert plan.segments, "the default plan chains units"
        assert plan_problems(plan) == []
        assert plan.lower_bound_bytes <= plan.peak_bytes <= 1.10 * plan.lower_bound_bytes
        for seed in (3, 4):
            inputs = random_inputs(graph, seed)
            assert _differing(run(graph, inputs), simulate(plan, inputs)) == 0, mode


def test_every_ring_is_as_small_as_it_can_be(v2):
    for mode in ("resident", "streamed"):
        for seg in plan_model(v2, input_mode=mode).segments:
            shape = seg.shape
            for i, pixels in enumerate(shape.ring_pixels):
                if pixels and not (i == 0 and shape.streamed):
                    smaller = list(shape.ring_pixels)
                    smaller[i] -= 1
                    assert shape.ring_problems(ring_pixels=smaller), (seg.name, i)
            for i, pixels in enumerate(shape.e_ring_pixels):
                if pixels:
                    smaller = list(shape.e_ring_pixels)
                    smaller[i] -= 1
                    assert shape.ring_problems(e_ring_pixels=smaller), (seg.name, i)


def _shrunk(plan, seg: SegmentPlan, ring: int, rows: int):
    """Return `plan` with the input ring of stage `ring` of `seg` `rows` rows smaller."""
    shape = seg.shape
    width = shape.stages[ring].in_shape[1]
    pixels = list(shape.ring_pixels)
    pixels[ring] -= rows * width
    bad = dataclasses.replace(shape, ring_pixels=tuple(pixels))
    steps = tuple(dataclasses.replace(s, shape=bad) if s is seg else s for s in plan.units)
    return dataclasses.replace(plan, units=steps)


def test_a_ring_one_row_too_small_is_caught_statically_and_by_simulation(v1):
    plan = plan_model(v1)
    seg = next(s for s in plan.segments if len(s.shape.stages) > 1)
    inputs = random_inputs(v1, 7)
    expected = run(v1, inputs)
    bad = _shrunk(plan, seg, 1, 1)
    assert any("ring" in p for p in plan_problems(bad))
    assert _differing(expected, simulate(bad, inputs)) > 0


def test_a_streamed_input_ring_one_row_too_small_is_caught(v2):
    plan = plan_model(v2, input_mode="streamed")
    seg = plan.units[0]
    bad = _shrunk(plan, seg, 0, 1)
    assert any("input ring" in p for p in plan_problems(bad))
    inputs = random_inputs(v2, 8)
    assert _differing(run(v2, inputs), simulate(bad, inputs)) > 0


def test_an_output_trailing_too_close_is_caught(v1):
    plan = plan_model(v1)
    seg = next(s for s in plan.segments if frozenset(
        (plan.buffer_of[s.input], plan.buffer_of[s.output])) in plan.allowed_overlaps)
    y = plan.buffer_of[seg.output]
    offsets = dict(plan.placement.offsets)
    offsets[y] = plan.offset(seg.input) + seg.shape.slack + 64  # ahead of the input's reads
    placement = dataclasses.replace(plan.placement, offsets=offsets)
    bad = dataclasses.replace(plan, placement=placement)
    assert any("overwrites" in p for p in plan_problems(bad))
    inputs = random_inputs(v1, 9)
    assert _differing(run(v1, inputs), simulate(bad, inputs)) > 0


def test_segments_are_never_worse_than_the_per_unit_plan_and_compute_rows_once(v2, v1):
    for graph in (v2, v1):
        auto, per_unit = plan_model(graph), plan_model(graph, "bottleneck")
        assert auto.peak_bytes <= per_unit.peak_bytes
        for seg in auto.segments:
            computed = {}
            for stage, kind, row in seg.shape.schedule:
                key = (stage, kind, row)
                assert key not in computed
                computed[key] = True


def test_ram_budget_with_segments(v2):
    default = plan_model(v2)
    loose = plan_model(v2, ram_budget=default.peak_bytes + 8000)
    assert loose.peak_bytes <= default.peak_bytes + 8000
    tight = plan_model(v2, ram_budget=default.peak_bytes)
    assert tight.peak_bytes <= default.peak_bytes
    with pytest.raises(MnvError, match="smallest achievable peak is"):
        plan_model(v2, ram_budget=1000)
    with pytest.raises(MnvError, match="streamed input needs the auto scheme"):
        plan_model(v2, "bottleneck", input_mode="streamed")


def test_shape_builder_and_plan_agree_on_ring_bytes(v2):
    plan = plan_model(v2, input_mode="streamed")
    seg = plan.units[0]
    again = build_shape(seg.shape.stages, seg.shape.widths, True,
                        tuple(layout.kernel for layout in seg.shape.layouts))
    assert again.ring_pixels == seg.shape.ring_pixels
    assert again.state_bytes == seg.shape.state_bytes
    assert plan.input_ring()[1] == seg.shape.ring_pixels[0] // seg.shape.stages[0].in_shape[1]


def test_plan_cli_reports_segments_and_the_input_ring(run_cli, tmp_path):
    from mnv2gen.zoo import synthesize_tflite

    path = tmp_path / "m.tflite"
    path.write_bytes(synthesize_tflite("mobilenet-v2", 0.35, 48, 4, 1))
    code, out, err = run_cli("plan", path, "--json", "--input-mode", "streamed")
    assert code == 0, err
    report = json.loads(out)
    assert report["input_mode"] == "streamed" and report["inputs"][0]["streamed"]
    segs = [u for u in report["units"] if u["kind"] == "segment"]
    assert segs and segs[0]["segment"]["input"] == "streamed ring"
    stage = segs[0]["segment"]["stages"][0]
    assert stage["input_ring"]["rows"] >= 3 and stage["input_ring"]["bytes"] > 0
    assert {"tile_columns", "e_ring", "transient_bytes"} <= set(stage)
    code, out, err = run_cli("plan", path)
    assert code == 0 and "depth-first over" in out and "E ring" in out
    code, _, err = run_cli("plan", path, "--input-mode", "sideways")
    assert code == 2


@pytest.fixture(scope="module")
def v2_full():
    """The 0.35/48 MobileNetV2 as loaded (the pipeline takes the full graph)."""
    return synthesize("mobilenet-v2", 0.35, 48, 4, seed=1)


def _verify(graph, target: str, mode: str, count: int = 2) -> dict:
    from codegen_helpers import need_toolchain

    from mnv2gen.pipeline import compile_graph
    from mnv2gen.verify import verify

    need_toolchain(target)
    compiled = compile_graph(graph, target, "portable", input_mode=mode)
    assert compiled.plan.segments
    return verify(compiled, [random_inputs(graph, 20 + i) for i in range(count)])


@pytest.mark.parametrize("mode", ["resident", "streamed"])
def test_segment_and_streamed_code_is_bit_exact_on_host(v2_full, mode):
    report = _verify(v2_full, "host", mode)
    assert report["bit_exact"] and report["mismatched_bytes"] == 0
    if mode == "streamed":  # whole image, one row and an odd chunk per call, per input
        assert report["rows_per_call"] == [48, 1, 7] and len(report["per_input"]) == 6
        assert all(p["status"] == 0 for p in report["per_input"])


@pytest.mark.qemu
def test_streamed_code_is_bit_exact_on_cortex_m7(v2_full):
    report = _verify(v2_full, "cortex-m7", "streamed", count=1)
    assert report["bit_exact"] and report["instructions"] > 0
    counts = [p["instructions"] for p in report["per_input"]]
    assert max(counts) < 1.01 * min(counts)  # how the rows arrive hardly matters


def test_streamed_header_documents_the_api(v2_full, tmp_path):
    from mnv2gen.pipeline import compile_graph, write_library

    compiled = compile_graph(v2_full, "host", "portable", input_mode="streamed")
    write_library(compiled, tmp_path / "lib", compile_it=False)
    header = (tmp_path / "lib" / "mnv2_model.h").read_text()
    for text in ("int mnv2_begin(void);",
                 "int mnv2_feed_rows(const mnv2_input_t *rows, int count);",
                 "const mnv2_output_t *mnv2_output(void);", "#define MNV2_INPUT_ROWS_MAX 48",
                 "#define MNV2_INPUT_RING_ROWS", "@param[in] count", "@return the number of rows"):
        assert text in header, text
    assert "mnv2_input(void)" not in header and "mnv2_invoke" not in header
    model = (tmp_path / "lib" / "mnv2_model.c").read_text()
    assert "mnv2_feed_rows" in model and "malloc" not in model


def test_streamed_input_needs_a_row_wise_first_layer():
    from builders import nchw_pooling_head

    with pytest.raises(MnvError, match="cannot read its input row by row"):
        plan_model(nchw_pooling_head(), input_mode="streamed")


@pytest.mark.parametrize("which", ["v2", "person_detect"])
def test_a_global_pool_summed_row_by_row_is_exact(which, v2_full, shared_model):
    """Force the last units before the global MEAN (v2) / AVERAGE_POOL_2D (person_detect)
    into one segment ending with the pool stage: simulation and C (host) are exact."""
    from codegen_helpers import need_toolchain

    from mnv2gen.loader import load_model
    from mnv2gen.pipeline import compile_graph
    from mnv2gen.planner import plan as plan_module
    from mnv2gen.planner.choose import choose
    from mnv2gen.planner.options import segment_options, unit_options
    from mnv2gen.verify import verify

    full = v2_full if which == "v2" else load_model(shared_model("tflm_person"))
    compiled = compile_graph(full, "host", "portable")
    graph = compiled.core
    units = build_units(graph)
    pool = next(i for i, st in enumerate(chains(graph, units)) if st and st.kind == "pool")
    options = [o for o in unit_options(graph, units, "portable", None)
               if not pool - 2 <= o.first <= pool]
    options += [o for o in segment_options(graph, units, "portable", False, 1 << 40)
                if (o.first, o.stop) == (pool - 2, pool + 1)]
    steps = plan_module._steps(graph, units, choose(options, len(units)), "portable")
    plan = plan_module._build(graph, "auto", "portable", steps, "resident")
    seg = next(s for s in plan.segments if s.shape.last.kind == "pool")
    assert seg.shape.acc_bytes and plan_problems(plan) == []
    inputs = random_inputs(graph, 12)
    assert _differing(run(graph, inputs), simulate(plan, inputs)) == 0
    need_toolchain("host")
    report = verify(dataclasses.replace(compiled, plan=plan),
                    [random_inputs(full, 30), random_inputs(full, 31)])
    assert report["bit_exact"], report["mismatched_bytes"]


@pytest.mark.parametrize("arena", ["runtime", "external"])
def test_streamed_code_under_a_prefix_and_arena_modes_is_bit_exact(v2_full, arena):
    from codegen_helpers import need_toolchain

    from mnv2gen.codegen.options import LibraryOptions
    from mnv2gen.pipeline import compile_graph
    from mnv2gen.verify import verify

    need_toolchain("host")
    compiled = compile_graph(v2_full, "host", "portable", input_mode="streamed")
    report = verify(compiled, [random_inputs(v2_full, 40)],
                    options=LibraryOptions("cat", arena, None, None))
    assert report["bit_exact"] and len(report["per_input"]) == 3
