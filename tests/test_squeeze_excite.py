"""Squeeze-excite and activation ops inside fused units (MobileNetV3): the block finder, both
SE strategies (materialise the depthwise output once, or recompute it in a second pass)
proven by simulation in one arena, plans that break them caught, the plan report's
figures, a RAM budget choosing between them, and the generated C of both."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
from builders import tiny_mobilenet_v3
from codegen_helpers import need_toolchain
from conftest import SHARED_MODELS

from mnv2gen.inputs import random_inputs
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.pipeline import compile_graph
from mnv2gen.planner.arena import Placement, overlaps
from mnv2gen.planner.chunking import SQUEEZE_STRATEGIES, Chunking
from mnv2gen.planner.plan import plan_model
from mnv2gen.planner.report import plan_report
from mnv2gen.planner.schedule import FusedUnit, build_units
from mnv2gen.planner.simulate import simulate
from mnv2gen.reference import run
from mnv2gen.verify import verify

V3_FILE = SHARED_MODELS / "family" / "tflite" / \
    "atu_mobilenetv3_small_1.0_224_imagenet_int8.tflite"
V3_TFLM_ARENA_BYTES = 862_608  # TFLite Micro's arena for the file (family MANIFEST.md)


@pytest.fixture(scope="module")
def v3():
    return tiny_mobilenet_v3()


@pytest.fixture(scope="module")
def v3_file():
    if not V3_FILE.exists():
        pytest.skip(f"family model {V3_FILE} not found")
    from mnv2gen.loader import load_model
    return integer_core(load_model(V3_FILE))


def _differing(a, b) -> int:
    return sum(int(np.count_nonzero(x.view(np.uint8) != y.view(np.uint8)))
               for x, y in zip(a, b, strict=True))


def _se_steps(plan):
    return [u for u in plan.units if isinstance(getattr(u, "unit", None), FusedUnit)
            and u.unit.se is not None]


def test_block_finder_fuses_activation_ops_and_squeeze_excite(v3):
    fused = [u for u in build_units(v3) if isinstance(u, FusedUnit)]
    assert len(fused) == 3
    first, second, plain = fused
    # stem conv -> HARD_SWISH -> depthwise -> SE -> project (no expansion)
    assert first.producer.kind.value == "CONV_2D" and first.producer_act is not None
    assert first.depthwise_act is None and first.se is not None and first.add is None
    assert [op.kind.value for op in first.se.excite] == ["CONV_2D", "CONV_2D", "MUL"]
    assert first.se.features == first.depthwise.outputs[0]
    # expand -> HARD_SWISH -> 5x5 depthwise -> HARD_SWISH -> SE -> project -> ADD
    assert second.producer_act is not None and second.depthwise_act is not None
    assert second.se is not None and second.add is not None
    assert second.se.features == second.depthwise_act.outputs[0]
    assert plain.plain and not first.plain
    assert len(first.inner_tensors) == 4  # MEAN output and three excitation outputs


def test_the_mobilenet_v3_file_fuses_every_block(v3_file):
    fused = [u for u in build_units(v3_file) if isinstance(u, FusedUnit)]
    assert len(fused) == 11 and sum(u.se is not None for u in fused) == 9
    assert sum(u.depthwise_act is not None for u in fused) == 8


CHUNKINGS = [Chunking(1, 1, s) for s in SQUEEZE_STRATEGIES] + \
    [Chunking(3, 1, s) for s in SQUEEZE_STRATEGIES] + [Chunking(0, 1, "recompute"),
                                                        Chunking(2, 2), None]


@pytest.mark.parametrize("forced", CHUNKINGS, ids=lambda c: c.label() if c else "default")
def test_both_strategies_simulate_exactly(v3, forced):
    for seed in (1, 2):
        inputs = random_inputs(v3, seed)
        plan = plan_model(v3, forced=forced)
        assert overlaps(plan.placement, set(plan.allowed_overlaps)) == []
        assert plan.peak_bytes <= 1.10 * plan.lower_bound_bytes
        assert _differing(run(v3, inputs), simulate(plan, inputs)) == 0
        if forced is not None and forced.squeeze:
            assert {u.choice.chunking.squeeze for u in _se_steps(plan)} == {forced.squeeze}


@pytest.mark.parametrize("strategy", SQUEEZE_STRATEGIES)
def test_both_strategies_simulate_exactly_on_mobilenet_v3_small(v3_file, strategy):
    inputs = random_inputs(v3_file, 4)
    plan = plan_model(v3_file, forced=Chunking(2, 1, strategy))
    assert _differing(run(v3_file, inputs), simulate(plan, inputs)) == 0


def test_mobilenet_v3_small_plans_under_a_third_of_tflm(v3_file):
    plan = plan_model(v3_file)
    assert plan.peak_bytes <= 0.30 * V3_TFLM_ARENA_BYTES
    assert plan.peak_bytes <= 1.10 * plan.lower_bound_bytes
    inputs = random_inputs(v3_file, 9)
    assert _differing(run(v3_file, inputs), simulate(plan, inputs)) == 0


def _corrupt(plan, name: str, offset: int):
    offsets = dict(plan.placement.offsets)
    offsets[name] = offset
    return dataclasses.replace(plan, placement=Placement(offsets, plan.placement.buffers,
                                                         plan.placement.arena_bytes))


def _first_se(plan, with_producer=True):
    return next(u for u in _se_steps(plan) if u.unit.producer is not None or not with_producer)


def test_a_materialised_output_over_the_unread_input_is_caught(v3):
    plan = plan_model(v3, forced=Chunking(1, 1, "materialise"))
    step = _first_se(plan)
    # the first rows land on the input's last rows, which the first pass reads last
    x = plan.graph.tensor(step.unit.input).size_bytes
    features = step.scratch["features"]
    start = plan.offset(step.unit.input) + x - features // 2 // 16 * 16
    bad = _corrupt(plan, f"{step.name}.features", start)
    assert overlaps(bad.placement, set(bad.allowed_overlaps))
    inputs = random_inputs(v3, 3)
    assert _differing(run(v3, inputs), simulate(bad, inputs)) > 0


def test_channel_sums_over_the_window_are_caught(v3):
    plan = plan_model(v3, forced=Chunking(1, 1, "recompute"))
    step = _first_se(plan)
    bad = _corrupt(plan, f"{step.name}.sums", plan.offset(f"{step.name}.window"))
    assert overlaps(bad.placement, set(bad.allowed_overlaps))
    inputs = random_inputs(v3, 3)
    assert _differing(run(v3, inputs), simulate(bad, inputs)) > 0


def test_the_mean_over_the_materialised_output_is_caught(v3):
    plan = plan_model(v3, forced=Chunking(1, 1, "materialise"))
    step = _first_se(plan)
    bad = _corrupt(plan, step.unit.se.mean.outputs[0], plan.offset(f"{step.name}.features"))
    assert overlaps(bad.placement, set(bad.allowed_overlaps))
    inputs = random_inputs(v3, 3)
    assert _differing(run(v3, inputs), simulate(bad, inputs)) > 0


def test_a_recomputing_output_written_ahead_of_its_input_is_caught(v3):
    plan = plan_model(v3, forced=Chunking(1, 1, "recompute"))
    step = _first_se(plan)
    x, y = step.unit.input, plan.buffer_of[step.unit.output]
    # the second pass reads the whole input again: output rows written into its middle
    # overwrite rows it reads later
    middle = plan.offset(x) + plan.graph.tensor(x).size_bytes // 2 // 16 * 16
    bad = _corrupt(plan, y, min(middle, plan.peak_bytes - plan.graph.tensor(y).size_bytes))
    inputs = random_inputs(v3, 3)
    assert _differing(run(v3, inputs), simulate(bad, inputs)) > 0


def test_the_report_gives_both_strategies_of_every_se_unit(v3):
    plan = plan_model(v3)
    report = plan_report(plan, plan_model(v3, "layer"), None)
    entries = [u for u in report["units"] if "squeeze_excite" in u]
    assert len(entries) == 2
    for entry in entries:
        se = entry["squeeze_excite"]
        assert se["strategy"] == entry["chunking"]["squeeze"] in SQUEEZE_STRATEGIES
        m, r = se["materialise"]["smallest"], se["recompute"]["smallest"]
        assert r["bytes"] < m["bytes"] and r["instructions"] > m["instructions"]
        assert r["macs"] > m["macs"]  # the recomputed expansion and depthwise
        assert se["chosen"]["bytes"] >= entry["live_bytes"] - 16 * len(se)


def test_a_ram_budget_picks_the_recomputing_strategy_where_it_must(v3):
    default = plan_model(v3)
    assert {u.choice.chunking.squeeze for u in _se_steps(default)} == {"materialise"}
    floor = plan_model(v3, forced=Chunking(1, 1, "recompute")).peak_bytes
    assert floor < default.peak_bytes
    fitted = plan_model(v3, ram_budget=floor)
    assert fitted.peak_bytes <= floor
    assert "recompute" in {u.choice.chunking.squeeze for u in _se_steps(fitted)}
    inputs = random_inputs(v3, 5)
    assert _differing(run(v3, inputs), simulate(fitted, inputs)) == 0


def _budget(v3, strategy: str, kernel_set: str = "portable") -> int | None:
    """Return a RAM budget whose cheapest plan uses `strategy` (None: the default plan)."""
    if strategy == "materialise":
        return None
    return plan_model(v3, kernel_set=kernel_set, forced=Chunking(1, 1, strategy)).peak_bytes


@pytest.mark.parametrize("strategy", SQUEEZE_STRATEGIES)
def test_host_c_of_both_strategies_is_bit_exact(v3, strategy):
    need_toolchain("host")
    compiled = compile_graph(v3, "host", kernels="portable", ram_budget=_budget(v3, strategy))
    assert strategy in {u.choice.chunking.squeeze for u in _se_steps(compiled.plan)}
    report = verify(compiled, [random_inputs(v3, 11 + i) for i in range(2)])
    assert report["bit_exact"] and report["mismatched_bytes"] == 0, report["per_input"]


@pytest.mark.qemu
@pytest.mark.parametrize("strategy", SQUEEZE_STRATEGIES)
def test_cortex_m7_c_of_both_strategies_is_bit_exact(v3, strategy):
    need_toolchain("cortex-m7")
    compiled = compile_graph(v3, "cortex-m7", kernels="portable",
                             ram_budget=_budget(v3, strategy))
    report = verify(compiled, [random_inputs(v3, 21)])
    assert report["bit_exact"] and report["instructions"] > 0, report["per_input"]


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=pytest.mark.qemu)])
@pytest.mark.parametrize("strategy", SQUEEZE_STRATEGIES)
def test_generated_c_of_both_strategies_is_bit_exact(v3, strategy, target, tmp_path):
    """The generated backend runs the SE units' convolutions on its own kernels (through
    the portable band runtime) and their activations through lookup tables."""
    from mnv2gen.pipeline import write_library

    need_toolchain(target)
    compiled = compile_graph(v3, target, kernels="generated",
                             ram_budget=_budget(v3, strategy, "generated"))
    assert strategy in {u.choice.chunking.squeeze for u in _se_steps(compiled.plan)}
    write_library(compiled, tmp_path / "lib", compile_it=False)
    kernels_c = (tmp_path / "lib" / "mnv2_kernels.c").read_text()
    model_c = (tmp_path / "lib" / "mnv2_model.c").read_text()
    assert "band_kernel" in model_c and "_act_table" in model_c
    assert "mnv2_gw_" in kernels_c
    report = verify(compiled, [random_inputs(v3, 31 + i) for i in range(2)])
    assert report["bit_exact"] and report["mismatched_bytes"] == 0, report["per_input"]


def test_elementwise_tables_of_the_v3_file_equal_the_reference_on_every_byte(v3_file):
    """MUL and SUB by a scalar (the file's input scaling) and HARD_SWISH become tables."""
    from mnv2gen.codegen.generated.tables import BY_BYTE, activation_table, has_table
    from mnv2gen.reference import KERNELS

    ops = [op for op in v3_file.ops if has_table(v3_file, op)]
    assert {op.kind.value for op in ops} >= {"MUL", "SUB", "HARD_SWISH"}
    for op in ops:
        args = [BY_BYTE if not v3_file.tensor(n).is_const
                else np.asarray(v3_file.tensor(n).data).reshape(()) for n in op.inputs]
        expected = np.asarray(KERNELS[op.kind](v3_file, op, args), np.int8).reshape(256)
        assert np.array_equal(activation_table(v3_file, op), expected), op.name


def test_activation_tables_equal_the_reference_on_every_input_byte(v3):
    from mnv2gen.codegen.generated.tables import BY_BYTE, activation_table, has_table
    from mnv2gen.ir import OpKind
    from mnv2gen.reference.elementwise import hard_swish

    ops = [op for op in v3.ops if op.kind is OpKind.HARD_SWISH]
    assert ops and all(has_table(v3, op) for op in ops)
    for op in ops:
        table = activation_table(v3, op)
        for byte, value in enumerate(BY_BYTE):
            assert table[byte] == hard_swish(v3, op, [np.array([value], np.int8)])[0]


@pytest.mark.parametrize("strategy", SQUEEZE_STRATEGIES)
def test_host_cmsis_nn_c_of_both_strategies_is_bit_exact(v3, strategy):
    cmsis = os.environ.get("CMSIS_NN_PATH", "")
    if not cmsis:
        pytest.skip("CMSIS_NN_PATH is not set: the CMSIS-NN backend tier needs a local "
                    "CMSIS-NN v7 checkout")
    need_toolchain("host")
    kernel_set = compile_graph(v3, "host", kernels="cmsis-nn", cmsis_nn_path=cmsis).plan.kernel_set
    compiled = compile_graph(v3, "host", kernels="cmsis-nn", cmsis_nn_path=cmsis,
                             ram_budget=_budget(v3, strategy, kernel_set))
    assert strategy in {u.choice.chunking.squeeze for u in _se_steps(compiled.plan)}
    report = verify(compiled, [random_inputs(v3, 31)])
    assert report["bit_exact"], report["per_input"]


def test_plan_cli_reports_the_strategies(v3, run_cli, tmp_path):
    from mnv2gen.frontend.tflite_writer import write_tflite
    path = tmp_path / "v3.tflite"
    path.write_bytes(write_tflite(v3))
    code, out, err = run_cli("plan", path, "--json")
    assert code == 0, err
    units = [u for u in json.loads(out)["units"] if "squeeze_excite" in u]
    assert len(units) == 2 and all("recompute" in u["squeeze_excite"] for u in units)
    code, out, err = run_cli("plan", path)
    assert code == 0 and "SE:mate" in out


def _mixed_plan(graph):
    """Return a plan with per-unit SE steps and, for the plain units after them, the first
    depth-first segment the planner offers (mnv2gen.planner.options)."""
    from mnv2gen.planner import plan as planning
    from mnv2gen.planner.options import segment_options, unit_options

    units = build_units(graph)
    per_unit = {o.first: o for o in unit_options(graph, units, "portable", None)}
    segment = min(segment_options(graph, units, "portable", False, 1 << 30),
                  key=lambda o: (o.first, -o.stop, o.local_bytes))
    chosen = [per_unit[i] for i in range(segment.first)] + [segment] + \
        [per_unit[i] for i in range(segment.stop, len(units))]
    return planning._build(graph, "auto", "portable",
                           planning._steps(graph, units, chosen, "portable"), "resident")


def test_segments_never_hold_an_se_or_activation_unit(v3, v3_file):
    from mnv2gen.planner.options import segment_options
    from mnv2gen.planner.stages import stage_of

    for graph in (v3, v3_file):
        units = build_units(graph)
        fancy = {i for i, u in enumerate(units) if isinstance(u, FusedUnit) and not u.plain}
        assert fancy and all(stage_of(graph, units[i]) is None for i in fancy)
        for o in segment_options(graph, units, "portable", False, 1 << 30):
            assert not fancy & set(range(o.first, o.stop)), (o.first, o.stop)


def test_se_units_and_a_segment_in_one_plan_are_exact(v3):
    from mnv2gen.planner.steps import SegmentPlan

    plan = _mixed_plan(v3)
    kinds = [type(s) for s in plan.units]
    assert SegmentPlan in kinds and _se_steps(plan)
    inputs = random_inputs(v3, 41)
    assert _differing(run(v3, inputs), simulate(plan, inputs)) == 0
    need_toolchain("host")
    compiled = dataclasses.replace(compile_graph(v3, "host", kernels="portable"), plan=plan)
    report = verify(compiled, [inputs])
    assert report["bit_exact"] and report["mismatched_bytes"] == 0, report["per_input"]
