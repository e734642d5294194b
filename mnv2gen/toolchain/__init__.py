"""Targets as data, cross and host builds, QEMU runs and size reports.

A target is one TOML file in `targets/` (package `mnv2gen.targets`). Cortex-M builds link
the harness in `templates/harness/` (startup, fault handler, SysTick instruction counter)
with a linker script carrying the target's real memory sizes and run under QEMU with
semihosting; `host` builds a native executable with gcc.
"""

from mnv2gen.toolchain.build import (
    DEFAULT_HEAP_BYTES,
    DEFAULT_STACK_BYTES,
    build_elf,
    missing_tools,
    render_linker_script,
    toolchain_available,
)
from mnv2gen.toolchain.run import FAULT_EXIT_CODE, RunResult, run_elf, size_report
from mnv2gen.toolchain.targets import (
    ICOUNT_SHIFT,
    MemoryRegion,
    Target,
    list_targets,
    load_target,
)

__all__ = [
    "DEFAULT_HEAP_BYTES", "DEFAULT_STACK_BYTES", "FAULT_EXIT_CODE", "ICOUNT_SHIFT",
    "MemoryRegion", "RunResult", "Target", "build_elf", "list_targets", "load_target",
    "missing_tools", "render_linker_script", "run_elf", "size_report", "toolchain_available",
]
