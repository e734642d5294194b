"""Targets as data, builds, QEMU runs, the fault handler and the instruction counter."""

from __future__ import annotations

import re

import pytest

from mnv2gen.errors import MnvError
from mnv2gen.toolchain import (
    FAULT_EXIT_CODE,
    build_elf,
    list_targets,
    load_target,
    missing_tools,
    render_linker_script,
    run_elf,
    size_report,
)
from mnv2gen.toolchain.build import parse_overflows

ARM_TARGETS = ["cortex-m0", "cortex-m3", "cortex-m33", "cortex-m4", "cortex-m7", "cortex-m55",
               "stm32f405"]
ALL_TARGETS = [*ARM_TARGETS, "host"]


def needs_toolchain(target: str):
    """Return a skip marker for `target` when its compiler, newlib or QEMU is missing."""
    missing = missing_tools(target)
    return pytest.mark.skipif(bool(missing), reason=f"{target} needs {', '.join(missing)} "
                              "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                              "qemu-system-arm)")


def on(targets: list[str]) -> list:
    """Return pytest params for `targets`, each skipped when its toolchain is missing."""
    return [pytest.param(t, id=t, marks=needs_toolchain(t)) for t in targets]


def build(tmp_path, target: str, code: str, **kwargs):
    """Write `code` to tmp_path/main.c and build it for `target`; return the program path."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "main.c"
    source.write_text(code)
    return build_elf(target, [source], [], tmp_path / "build", **kwargs)


HELLO = r"""
#include <stdio.h>
#include "mnv2_harness.h"

static unsigned fib(unsigned n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

int main(void)
{
    volatile unsigned n = 20;
    printf("fib(%u) = %u\n", n, fib(n));
    return EXIT_CODE;
}
"""

BAD_CALL = r"""
#include <stdio.h>
int main(void)
{
    printf("before the fault\n");
    /* Bit 0 clear asks for the Arm instruction set, which M-profile cores lack: INVSTATE. */
    void (*volatile bad)(void) = (void (*)(void))0x00001000u;
    bad();
    printf("after the fault\n");
    return 0;
}
"""

LOOP = r"""
#include <stdio.h>
#include <stdint.h>
#include "mnv2_harness.h"

/* Exactly 2 instructions per iteration. */
static void spin(uint32_t n) { __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc"); }

int main(void)
{
    static const uint32_t lengths[] = {1000000, 3000000};
    for (unsigned i = 0; i < 2; i++) {
        mnv2_counter_start();
        spin(lengths[i]);
        uint64_t count = mnv2_counter_stop();
        /* newlib-nano's printf has no %llu. */
        printf("%lu %lu\n", (unsigned long)lengths[i], (unsigned long)count);
    }
    return 0;
}
"""

BIG_RAM = r"""
#include <stdint.h>
static volatile uint8_t arena[ARENA_BYTES];
int main(void) { arena[ARENA_BYTES - 1] = 1; return arena[ARENA_BYTES - 1]; }
"""

WEIGHTS = r"""
#include <stdint.h>
__attribute__((section(".weights"), aligned(16)))
const int8_t weights[1048576] = {1, [1048575] = 9};
int main(void)
{
    const volatile int8_t *w = weights;
    return (uintptr_t)weights == 0x21000000u ? w[0] + w[sizeof weights - 1] : 1;
}
"""


def test_every_target_loads():
    assert list_targets() == sorted(ALL_TARGETS)
    kernel_sets = {name: load_target(name).kernel_set for name in ALL_TARGETS}
    assert kernel_sets == {"cortex-m0": "cmsis-c", "cortex-m3": "cmsis-c",
                           "cortex-m33": "cmsis-dsp", "cortex-m4": "cmsis-dsp",
                           "cortex-m7": "cmsis-dsp", "cortex-m55": "cmsis-mve",
                           "stm32f405": "cmsis-dsp", "host": "portable"}
    assert load_target("cortex-m7").instructions_per_tick == 40.0
    assert load_target("cortex-m55").instructions_per_tick == 31.25
    assert load_target("cortex-m0").instructions_per_tick == 62.5  # 16 MHz nRF51 HCLK
    assert load_target("cortex-m33").instructions_per_tick == 50.0  # 20 MHz IoTKit clock


def test_stm32f405_has_the_real_chip_sizes():
    target = load_target("stm32f405")
    flash, ram = target.region("flash"), target.region("ram")
    assert (flash.origin, flash.size_bytes) == (0x08000000, 1024 * 1024)
    assert (ram.origin, ram.size_bytes) == (0x20000000, 128 * 1024)
    assert target.ram_bytes == 128 * 1024
    script = render_linker_script(target, stack_bytes=1000)
    assert "RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 131072" in script
    assert ". += 1000;" in script
    assert script.endswith("}\n")


def test_cortex_m55_puts_weights_in_isram():
    target = load_target("cortex-m55")
    assert target.region("FLASH").size_bytes == 512 * 1024
    assert target.weights_region.name == "WEIGHTS"
    assert "} > WEIGHTS" in render_linker_script(target)
    weights_rule = render_linker_script("cortex-m7").split(".weights :")[1]
    assert weights_rule.split("}", 1)[1].startswith(" > FLASH")
    assert ".rodata.*_weights" in weights_rule.split("}", 1)[0]


def test_unknown_target_lists_the_available_ones():
    with pytest.raises(MnvError) as err:
        load_target("cortex-m99")
    assert "cortex-m99" in err.value.message
    for name in ALL_TARGETS:
        assert name in err.value.message


def test_parse_overflows_reads_ld_messages():
    stderr = ("ld: app.elf section `.bss' will not fit in region `RAM'\n"
              "ld: region `RAM' overflowed by 84792 bytes\n")
    assert parse_overflows(stderr) == [("RAM", 84792)]


@pytest.mark.qemu
@pytest.mark.parametrize("target", on(ALL_TARGETS))
def test_hello_prints_and_returns_its_code(tmp_path, target):
    code = 40 + ALL_TARGETS.index(target)
    program = build(tmp_path, target, HELLO, defines={"EXIT_CODE": code})
    result = run_elf(target, program, timeout_s=30)
    assert (result.exit_code, result.stdout, result.timed_out) == (code, "fib(20) = 6765\n", False)
    sizes = size_report(target, program)
    assert sizes["text"] > 0
    if target != "host":
        stack = load_target(target).harness_stack_bytes or 8192
        assert sizes["bss"] >= stack  # the stack is reserved in RAM
        assert 0 < sizes["regions"]["RAM"] <= load_target(target).ram_bytes


@pytest.mark.qemu
@pytest.mark.parametrize("target", on(ARM_TARGETS))
def test_a_fault_is_reported_and_exits_with_the_fault_code(tmp_path, target):
    result = run_elf(target, build(tmp_path, target, BAD_CALL), timeout_s=30)
    assert result.exit_code == FAULT_EXIT_CODE and result.faulted
    assert result.stdout == "before the fault\n"
    assert "mnv2: HardFault" in result.stderr
    if target == "cortex-m0":  # Armv6-M: HardFault only, no fault status registers
        assert "(Armv6-M: no fault status registers)" in result.stderr
        assert "CFSR" not in result.stderr
    else:
        assert "CFSR=0x00020000" in result.stderr  # UFSR.INVSTATE
    assert "PC=0x00001000" in result.stderr


@pytest.mark.qemu
@pytest.mark.parametrize("target", on(["cortex-m7", "cortex-m0", "cortex-m33"]))
def test_instruction_counter_is_exact_and_deterministic(tmp_path, target):
    """-icount counts instructions on every machine, the micro:bit's nRF51 included (whose
    SysTick exists only in QEMU: the real chip has none)."""
    program = build(tmp_path, target, LOOP)
    first = run_elf(target, program, timeout_s=30)
    second = run_elf(target, program, timeout_s=30)
    assert first.exit_code == 0
    assert first.stdout == second.stdout
    counts = {int(n): int(c) for n, c in (line.split() for line in first.stdout.splitlines())}
    tick = load_target(target).instructions_per_tick
    for n, count in counts.items():
        assert count == pytest.approx(2 * n, rel=0.01)
        assert abs(count - 2 * n) <= 2 * tick
    assert abs((counts[3000000] - counts[1000000]) - 4000000) <= 2 * tick


@pytest.mark.qemu
@pytest.mark.parametrize("target", on(["stm32f405"]))
def test_ram_overflow_fails_the_link_with_the_numbers(tmp_path, target):
    overflow = {}
    for kib in (200, 201):
        with pytest.raises(MnvError) as err:
            build(tmp_path / str(kib), target, BIG_RAM, defines={"ARENA_BYTES": kib * 1024})
        message = err.value.message
        assert "region RAM" in message and "131072 bytes" in message
        overflow[kib] = int(re.search(r"overflowed by (\d+) bytes", message).group(1))
    assert overflow[201] - overflow[200] == 1024
    assert overflow[200] > 200 * 1024 - 128 * 1024
    # The stack counts too: a program that fits stops fitting with a larger stack.
    build(tmp_path / "fits", target, BIG_RAM, defines={"ARENA_BYTES": 100 * 1024})
    with pytest.raises(MnvError, match=r"region RAM .* overflowed by"):
        build(tmp_path / "stack", target, BIG_RAM, defines={"ARENA_BYTES": 100 * 1024},
              stack_bytes=40 * 1024)


@pytest.mark.qemu
@pytest.mark.parametrize("target", on(["cortex-m55"]))
def test_weights_section_runs_from_isram(tmp_path, target):
    program = build(tmp_path, target, WEIGHTS)
    assert size_report(target, program)["regions"]["WEIGHTS"] == 1024 * 1024
    assert run_elf(target, program, timeout_s=30).exit_code == 10


@pytest.mark.qemu
@pytest.mark.parametrize("target", on(["cortex-m3"]))
def test_a_hang_times_out(tmp_path, target):
    program = build(tmp_path, target, "int main(void) { for (;;) { } }\n")
    result = run_elf(target, program, timeout_s=0.5)
    assert result.timed_out and result.exit_code is None


@pytest.mark.qemu
@pytest.mark.parametrize("target", on(["cortex-m55"]))
def test_stack_overflow_faults_on_armv8m(tmp_path, target):
    program = build(tmp_path, target, r"""
#include <stdio.h>
#include "mnv2_harness.h"
static int deep(int n)
{
    volatile char frame[256];
    frame[0] = (char)n;
    return n ? deep(n - 1) + frame[0] : 0;
}
int main(void)
{
    printf("%d %d\n", deep(4), mnv2_stack_peak_bytes() > 4 * 256);
    return deep(100);
}
""")
    result = run_elf(target, program, timeout_s=30)
    assert result.stdout == "10 1\n"
    assert result.exit_code == FAULT_EXIT_CODE
    assert "CFSR=0x00100000" in result.stderr  # UFSR.STKOF: MSPLIM caught it
