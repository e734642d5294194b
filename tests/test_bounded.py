"""Bounded work and isolated cross-checks: budgets before work, timeouts, TFLite Micro in a
child process, integer ranges checked in Python before any C is written."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from fuzz_models import consistent_model, consistent_tflite
from fuzz_mutator import TfliteSites

from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.ranges import check_context
from mnv2gen.codegen.text import build_file_path
from mnv2gen.errors import InternalError, MnvError
from mnv2gen.pipeline import compile_graph
from mnv2gen.tflm import tflm_available
from mnv2gen.toolchain.build import source_flags
from mnv2gen.verify import TIMEOUT_CAP_S, default_timeout

needs_tflm = pytest.mark.skipif(not tflm_available(), reason="needs the tflm extra")


def _negative_scale_model() -> bytes:
    """A model TFLite Micro aborts on (mnv2gen's front door refuses it too)."""
    data = bytearray(consistent_tflite(5, seed=1))
    sites = {label: (pos, fmt) for label, pos, fmt in TfliteSites(bytes(data)).sites}
    pos, fmt = sites["tensor3.scale[0]"]
    struct.pack_into("<" + fmt, data, pos, -1.0)
    return bytes(data)


@needs_tflm
def test_tflm_crashes_become_a_reason_not_a_crash(capfd):
    from mnv2gen.tflm_isolated import arena_bytes

    outcome = arena_bytes(_negative_scale_model())
    assert outcome.value is None and "crashed (SIGABRT)" in outcome.reason
    assert arena_bytes(b"\x00TFL3" * 20).value is None
    good = arena_bytes(consistent_tflite(5, seed=1))
    assert good.value and good.value > 0 and good.reason == ""
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == "", "TFLM's diagnostics leaked"


def test_plan_reports_why_tflm_is_missing(run_cli, tmp_path):
    import json

    model = tmp_path / "m.tflite"
    model.write_bytes(consistent_tflite(4))
    code, out, err = run_cli("plan", model, "--no-tflm", "--json")
    report = json.loads(out)
    assert code == 0 and report["tflm_arena_bytes"] is None
    assert report["tflm_arena_bytes_reason"] == "not asked (--no-tflm)"
    code, out, _ = run_cli("plan", model)
    assert code == 0 and "TFLite Micro" in out


@needs_tflm
def test_run_check_tflm_compares_through_the_child(run_cli, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(consistent_tflite(4))
    code, out, err = run_cli("run", model, "--check-tflm")
    assert code == 0 and "TFLite Micro: bit-exact" in out, err


def test_verify_timeout_follows_the_estimate_and_is_capped():
    compiled = compile_graph(consistent_model(8), "cortex-m7", "portable")
    one, many = default_timeout(compiled, 1), default_timeout(compiled, 1000)
    assert 60 < one < many <= TIMEOUT_CAP_S
    huge = compile_graph(consistent_model(256), "cortex-m55", "portable")
    assert default_timeout(huge, 1000) == TIMEOUT_CAP_S


def test_no_planning_for_what_no_cortex_m_target_can_hold():
    with pytest.raises(MnvError, match=r"arena holds at least the 4,320,000-byte input or "
                                       r"output; the largest Cortex-M target has 4,194,304"):
        compile_graph(consistent_model(1200, head=False), "cortex-m0", "portable")


def test_constants_and_template_integers_are_range_checked():
    pool = ConstPool()
    with pytest.raises(InternalError, match="do not fit int32"):
        pool.add("bias", np.array([1 << 31]), np.int32)
    with pytest.raises(InternalError, match="do not fit int8"):
        pool.add("w", np.array([128]), np.int8)
    with pytest.raises(InternalError, match="bands = 40000 does not fit the C type int16_t"):
        check_context("step 1", {"bands": [[0, 40000]], "x_offset": 5})
    with pytest.raises(InternalError, match="int32_t"):
        check_context("step 1", {"params": [1 << 31]})
    check_context("step 1", {"bands": [[0, 32767]], "params": [-(1 << 31)]})


@pytest.mark.parametrize("context, message", [
    ({"stages": [{"tiles": [[0, 40000, 0, 1, 0, 0, 0, 1, 0]]}]}, "tiles = 40000 .* int16_t"),
    ({"stages": [{"rows": [[-40000, 1, 0, 0]]}]}, "rows = -40000 .* int16_t"),
    ({"entries": [[256, 0, 3]]}, "entries = 256 .* uint8_t"),
    ({"entries": [[1, 0, 70000]]}, "entries = 70000 .* uint16_t"),
    ({"entries": [[1, 0]]}, "a row of entries has 2 fields, its C struct 3"),
    ({"rows_needed": [-1]}, "rows_needed = -1 .* uint16_t"),
])
def test_segment_tables_are_checked_against_their_c_fields(context, message):
    with pytest.raises(InternalError, match=message):
        check_context("step 2 (segment0)", context, "segment.c.j2")


def test_a_real_segment_plan_fits_its_c_fields():
    from mnv2gen.codegen.lower import lower_unit
    from mnv2gen.frontend.tflite import load_tflite
    from mnv2gen.passes import run_passes
    from mnv2gen.passes.integer_core import integer_core
    from mnv2gen.planner.plan import SegmentPlan, plan_model
    from mnv2gen.zoo import synthesize_tflite

    graph = integer_core(run_passes(load_tflite(synthesize_tflite("mobilenet-v2", 0.35, 96,
                                                                  10, 0), "m.tflite")))
    plan = plan_model(graph, "auto", input_mode="streamed")
    pool = ConstPool()
    segments = [up for up in plan.units if isinstance(up, SegmentPlan)]
    assert segments
    for up in segments:
        template, context = lower_unit(plan, up, pool)
        assert template == "segment.c.j2"
        check_context(up.name, context, template)


def test_wrong_code_warnings_are_errors_for_the_generated_tables():
    assert "-Werror=overflow" in source_flags("mnv2_ops_portable.c")
    assert {"-Wconversion", "-Werror=conversion", "-Werror=overflow"} <= set(
        source_flags("mnv2_weights.c")) and "-Werror=conversion" in source_flags("mnv2_model.c")


@pytest.mark.parametrize("path", ["/opt/CMSIS NN", "/x/$(shell rm -rf)", "/x\n/y", "/a;b",
                                  '/a"b', "/a#b", "/a%b"])
def test_build_file_paths_that_make_or_cmake_would_misread_are_refused(path):
    with pytest.raises(MnvError, match="cannot be written safely"):
        build_file_path(path, "--cmsis-nn")
    assert build_file_path("/work/cmsis-nn_v7.0.0", "--cmsis-nn") == "/work/cmsis-nn_v7.0.0"


def test_onnx_input_dimensions_beyond_the_limits_are_refused(run_cli, tmp_path):
    import onnx
    import onnx_builders as ob

    model = ob.nchw_residual()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 1 << 31
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    code, _, err = run_cli("quantize", path, "--calibrate", "random", "-o", tmp_path / "q.tflite")
    assert code == 2 and "dimension 2 is 2,147,483,648" in err, err
    assert not (tmp_path / "q.tflite").exists()
