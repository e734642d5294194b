"""The Cortex-M0 (nRF51, QEMU microbit) and Cortex-M33 (MPS2 AN505) targets: memory maps,
the small-RAM harness, the calibration variant, and a synthesized model bit-exact on both."""

from __future__ import annotations

import subprocess

import pytest
from builders import tiny_mobilenet_v2
from codegen_helpers import cmsis_nn_path, logits_graph

from mnv2gen.errors import MnvError
from mnv2gen.pipeline import compile_graph
from mnv2gen.toolchain import build_elf, load_target, missing_tools, run_elf
from mnv2gen.toolchain.build import harness_dir
from mnv2gen.verify import verification_inputs, verify


def needs(target: str):
    missing = missing_tools(target)
    return pytest.mark.skipif(bool(missing), reason=f"{target} needs {', '.join(missing)} "
                              "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                              "qemu-system-arm)")


def test_cortex_m0_has_the_nrf51822_sizes():
    target = load_target("cortex-m0")
    flash, ram = target.region("FLASH"), target.region("RAM")
    assert (flash.origin, flash.size_bytes) == (0, 256 * 1024)
    assert (ram.origin, ram.size_bytes) == (0x20000000, 16 * 1024)
    assert (target.cpu, target.fpu, target.dsp, target.qemu_machine) == (
        "cortex-m0", None, False, "microbit")
    assert (target.harness_stack_bytes, target.harness_heap_bytes) == (2048, 1536)


def test_cortex_m33_links_at_the_secure_aliases():
    target = load_target("cortex-m33")
    flash, ram = target.region("FLASH"), target.region("RAM")
    assert (flash.origin, flash.size_bytes) == (0x10000000, 4 << 20)
    assert (ram.origin, ram.size_bytes) == (0x38000000, 4 << 20)
    assert (target.cpu, target.fpu, target.dsp, target.kernel_set) == (
        "cortex-m33", "fpv5-sp-d16", True, "cmsis-dsp")


def test_the_calibration_variant_only_enlarges_memory():
    real = load_target("cortex-m0")
    roomy = real.for_calibration()
    assert roomy.region("RAM").size_bytes == 4 << 20
    assert roomy.region("FLASH").size_bytes == 8 << 20
    assert "-global" in roomy.qemu_args and real.qemu_args == ()
    assert (roomy.cpu, roomy.qemu_machine, roomy.systick_hz, roomy.machine_flags) == (
        real.cpu, real.qemu_machine, real.systick_hz, real.machine_flags)
    assert load_target("cortex-m7").for_calibration() is load_target("cortex-m7")


BIG_RAM = r"""
#include <stdint.h>
static volatile uint8_t arena[ARENA_BYTES];
int main(void)
{
    arena[0] = 3;
    arena[ARENA_BYTES - 1] = 4;
    return arena[0] + arena[ARENA_BYTES - 1];
}
"""


@pytest.mark.qemu
@needs("cortex-m0")
def test_16_kib_of_ram_is_enforced_and_the_calibration_variant_has_more(tmp_path):
    source = tmp_path / "main.c"
    source.write_text(BIG_RAM)
    build_elf("cortex-m0", [source], [], tmp_path / "fits", defines={"ARENA_BYTES": 10 * 1024})
    with pytest.raises(MnvError, match=r"region RAM \(nRF51822 RAM, 16384 bytes at 0x20000000\) "
                                       r"overflowed by"):
        build_elf("cortex-m0", [source], [], tmp_path / "over", defines={"ARENA_BYTES": 16384})
    # the same program with 1 MiB runs on the enlarged nRF51 (QEMU -global sizes)
    roomy = load_target("cortex-m0").for_calibration()
    elf = build_elf(roomy, [source], [], tmp_path / "roomy", defines={"ARENA_BYTES": 1 << 20})
    assert run_elf(roomy, elf, timeout_s=30).exit_code == 7


def test_m0_and_m0plus_compile_to_the_same_instructions(tmp_path):
    """The cortex-m0 calibration stands for the Cortex-M0+ (RP2040): GCC emits the same
    code for both, so QEMU counts the same instructions."""
    if missing_tools("cortex-m0"):
        pytest.skip("needs arm-none-eabi-gcc")
    runtime = harness_dir().parent / "runtime"
    for source in ("mnv2_ops_portable.c", "mnv2_fused.c", "mnv2_segment.c"):
        texts = []
        for cpu in ("cortex-m0", "cortex-m0plus"):
            obj, binary = tmp_path / f"{cpu}.o", tmp_path / f"{cpu}.bin"
            subprocess.run(["arm-none-eabi-gcc", "-mthumb", f"-mcpu={cpu}", "-mfloat-abi=soft",
                            "-O2", "-c", str(runtime / source), f"-I{runtime}", "-o", str(obj)],
                           check=True)
            subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text", str(obj),
                            str(binary)], check=True)
            texts.append(binary.read_bytes())
        assert texts[0] == texts[1] and len(texts[0]) > 1000, source


@pytest.fixture(scope="module")
def tiny():
    return logits_graph(tiny_mobilenet_v2())


@pytest.mark.qemu
@pytest.mark.parametrize("target", [pytest.param(t, marks=needs(t))
                                    for t in ("cortex-m0", "cortex-m33")])
def test_a_synthesized_model_is_bit_exact_on_the_new_cores(tiny, target):
    compiled = compile_graph(tiny, target, "portable")
    report = verify(compiled, verification_inputs(compiled, 3, 0, []))
    assert report["bit_exact"] and report["mismatched_bytes"] == 0 and report["inputs"] == 3
    assert report["instructions"] > 1_000_000
    regions = report["elf_sizes"]["regions"]
    assert regions["RAM"] <= load_target(target).ram_bytes
    assert regions["FLASH"] <= load_target(target).region("FLASH").size_bytes


@pytest.mark.qemu
@pytest.mark.parametrize("target", [pytest.param(t, marks=needs(t))
                                    for t in ("cortex-m0", "cortex-m33")])
def test_cmsis_nn_is_bit_exact_on_the_new_cores(tiny, target):
    path = cmsis_nn_path()
    compiled = compile_graph(tiny, target, "cmsis-nn", path)
    report = verify(compiled, verification_inputs(compiled, 2, 5, []))
    assert report["bit_exact"], report["per_input"]


def test_build_refuses_an_arena_over_16_kib_with_the_numbers(tmp_path):
    from mnv2gen.estimate.standin import standin_graph
    from mnv2gen.pipeline import write_library

    compiled = compile_graph(standin_graph("mobilenet-v2", 0.35, 96, 10), "cortex-m0",
                             "portable")
    need = compiled.plan.peak_bytes  # 29,488 with a depth-first segment over the stem
    assert need > 16384
    with pytest.raises(MnvError, match=rf"the arena needs {need:,} bytes of RAM; cortex-m0 has "
                                       rf"16,384 \({need - 16384:,} bytes over\)"):
        write_library(compiled, tmp_path / "out", compile_it=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.qemu
@needs("cortex-m0")
def test_estimate_measures_an_m0_model_larger_than_the_nrf51():
    """RP2040-sized models (> 16 KiB of arena) are measured on the enlarged nRF51."""
    import contextlib
    import io
    import json

    from mnv2gen.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["estimate", "--arch", "mobilenet-v1", "--alpha", "0.25", "--resolution",
                     "96", "--classes", "2", "--target", "cortex-m0", "--measure", "--json",
                     "--quiet", "--code-table"])  # 96: 64 x 64 fits 16 KiB with segments
    assert code == 0
    entry = json.loads(out.getvalue())["configurations"][0]["targets"][0]
    assert entry["plan_bytes"] > 16 * 1024
    measured = entry["measured"]
    assert measured["bit_exact"] and measured["instructions"] > 10_000_000
    assert "enlarged memories" in measured["note"]
