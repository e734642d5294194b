"""The generated backend end to end: reproducible and golden C, bit-exact plans of every
unit kind (row bands, sliding windows, channel groups, in-place outputs, the shortcut
add) on the host and in QEMU, the portable fallback, plan memory and code size."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from codegen_helpers import check_golden, logits_graph, need_toolchain
from conftest import model_params

from mnv2gen.codegen.generated import kernels
from mnv2gen.inputs import random_inputs
from mnv2gen.loader import load_model
from mnv2gen.pipeline import compile_graph, write_library
from mnv2gen.planner.chunking import Chunking
from mnv2gen.planner.plan import plan_model
from mnv2gen.verify import verify
from mnv2gen.zoo import synthesize

GOLDEN = Path(__file__).parent / "golden" / "mobilenet_v2_0.35_32_generated"
GOLDEN_FILES = ("mnv2_model.c", "mnv2_kernels.c", "mnv2_kernels.h", "Makefile",
                "CMakeLists.txt")


@pytest.fixture(scope="module")
def tiny():
    """A synthesized MobileNetV2 0.35 at 32x32 with 4 classes."""
    return synthesize("mobilenet-v2", 0.35, 32, 4, seed=0)


def _inputs(graph, count, seed=0):
    return [random_inputs(graph, seed + i) for i in range(count)]


def _with_plan(compiled, plan):
    return type(compiled)(compiled.full, plan, compiled.baseline, compiled.target,
                          compiled.kernels, compiled.cmsis_nn_path, "")


def test_generated_code_is_reproducible_and_matches_the_golden_copy(tiny, tmp_path, request):
    compiled = compile_graph(tiny, "cortex-m7")
    assert compiled.kernels == "generated" and compiled.plan.kernel_set == "generated"
    a = check_golden(compiled, GOLDEN, GOLDEN_FILES, tmp_path,
                     request.config.getoption("--update-golden"))
    source = (a / "mnv2_kernels.c").read_text()
    assert "malloc" not in source and "float" not in source
    assert not any(op.name in source for op in tiny.ops)  # generated identifiers only


def test_every_symbol_the_generated_kernels_export_is_prefixed(tiny, tmp_path):
    need_toolchain("host")
    write_library(compile_graph(tiny, "host"), tmp_path / "lib", compile_it=False)
    subprocess.run(["gcc", "-O2", "-c", "mnv2_kernels.c", "-o", "k.o"], cwd=tmp_path / "lib",
                   check=True)
    listing = subprocess.run(["nm", "k.o"], cwd=tmp_path / "lib", capture_output=True,
                             text=True, check=True).stdout
    exported = re.findall(r"^\S* *[TDRB] (\w+)$", listing, re.M)
    assert exported and all(s.startswith("mnv2_") for s in exported), exported


@pytest.mark.parametrize("forced", [Chunking(1, 1), Chunking(2, 3), Chunking(0, 6), None],
                         ids=str)
def test_every_chunking_is_bit_exact_on_host(tiny, forced):
    """Row bands of 1..all rows, 1..6 channel groups with int32 partial sums, in place."""
    need_toolchain("host")
    graph = logits_graph(tiny)
    compiled = compile_graph(graph, "host")
    if forced is not None:
        compiled = _with_plan(compiled, plan_model(compiled.core, forced=forced,
                                                   kernel_set="generated"))
    report = verify(compiled, _inputs(graph, 2))
    assert report["bit_exact"] and report["mismatched_bytes"] == 0, forced


def test_units_without_a_specialised_kernel_fall_back_to_the_portable_kernels(
        tiny, tmp_path, monkeypatch):
    """An operator kind without a generated kernel (here: depthwise, as a future kind would
    be) runs its unit on the portable kernels, in the same plan."""
    need_toolchain("host")
    original = kernels.kind_of
    monkeypatch.setattr(kernels, "kind_of", lambda g, op: None if op.kind.value ==
                        "DEPTHWISE_CONV_2D" else original(g, op))
    graph = logits_graph(tiny)
    compiled = compile_graph(graph, "host")
    write_library(compiled, tmp_path / "lib", compile_it=False)
    model_c = (tmp_path / "lib" / "mnv2_model.c").read_text()
    assert "mnv2_fused_band" in model_c and "mnv2_gs_op" in model_c  # fused: portable
    assert verify(compiled, _inputs(graph, 2))["bit_exact"]


@pytest.mark.parametrize("path", model_params())
def test_every_shared_model_is_bit_exact_on_host(path):
    """The default plan; the layer-by-layer one too for the small models."""
    need_toolchain("host")
    graph = logits_graph(load_model(path))
    small = path is not None and path.stat().st_size < 1_000_000
    for scheme in ("auto", "layer") if small else ("auto",):
        report = verify(compile_graph(graph, "host", scheme=scheme), _inputs(graph, 2, seed=5))
        assert report["bit_exact"], (scheme, report["per_input"])


@pytest.mark.parametrize("path", model_params())
def test_plans_for_the_generated_kernels_need_no_more_memory_than_todays(path):
    core = compile_graph(load_model(path), "host").core
    portable = plan_model(core, "auto", "portable")
    generated = plan_model(core, "auto", "generated")
    assert generated.peak_bytes <= portable.peak_bytes
    assert all(not up.scratch.get("kernel") for up in generated.units)


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["cortex-m3", "cortex-m4", "cortex-m7"])
@pytest.mark.parametrize("name", ["tflm_person_detect", "ei_fomo_balloon"])
def test_small_shared_models_are_bit_exact_on_cortex_m(shared_model, target, name):
    need_toolchain(target)
    graph = logits_graph(load_model(shared_model(name)))
    report = verify(compile_graph(graph, target), _inputs(graph, 2))
    assert report["bit_exact"] and report["kernels"] == "generated", report["per_input"]


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["cortex-m3", "cortex-m4", "cortex-m55"])
def test_channel_groups_are_bit_exact_on_every_core(tiny, target):
    need_toolchain(target)
    graph = logits_graph(tiny)
    compiled = compile_graph(graph, target, kernels="generated")
    compiled = _with_plan(compiled, plan_model(compiled.core, forced=Chunking(2, 3),
                                               kernel_set="generated"))
    assert verify(compiled, _inputs(graph, 1))["bit_exact"]


def test_mobilenet_v2_1_0_224_generated_code_fits_96_kib(shared_model):
    from mnv2gen.estimate.codesize import can_measure, measure_code_bytes
    from mnv2gen.toolchain import load_target

    target = load_target("cortex-m7")
    if not can_measure(target):
        pytest.skip("needs arm-none-eabi-gcc, newlib and arm-none-eabi-size")
    graph = load_model(shared_model("aquapapaya_keras_mobilenet_v2_1.0_224"))
    compiled = compile_graph(graph, "cortex-m7")
    code = measure_code_bytes(graph, compiled.plan, compiled.baseline, target, "generated")
    assert 40 * 1024 < code <= 96 * 1024
