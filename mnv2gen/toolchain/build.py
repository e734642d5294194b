"""Cross (arm-none-eabi-gcc + harness + linker script) and native host builds."""

from __future__ import annotations

import concurrent.futures
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import jinja2

from mnv2gen.errors import MnvError
from mnv2gen.toolchain.targets import ICOUNT_SHIFT, Target, as_target, package_dir

# Optimisation and section flags of every build: the verify harness, the code-size
# measurement, the build check and the generated Makefile and CMakeLists.txt.
OPT_FLAGS = ("-O2", "-ffunction-sections", "-fdata-sections")
DEFAULT_STACK_BYTES = 8 * 1024
#: newlib-nano's stdio takes 1472 bytes of heap (stdout buffer); the model takes none.
DEFAULT_HEAP_BYTES = 2 * 1024
INSTALL_HINT = ("install with: apt-get install --no-install-recommends gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi qemu-system-arm")

_ARM_HARNESS = ("mnv2_startup.c", "mnv2_fault.c", "mnv2_counter.c")
_HOST_HARNESS = ("mnv2_host.c",)
_REGION_ACCESS = {"FLASH": "rx", "RAM": "rwx", "WEIGHTS": "r"}
_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")
#: warnings that mean the compiled code computes something else: errors for every source
WRONG_CODE_ERRORS = ("-Werror=overflow",)
#: and for the generated tables and schedule (mnv2_model.c, mnv2_weights.c): any implicit
#: conversion that changes a value (a constant that does not fit its type)
GENERATED_CODE_ERRORS = ("-Wconversion", "-Werror=conversion")
GENERATED_SOURCES = ("mnv2_model.c", "mnv2_weights.c")
TOOL_TIMEOUT_S = 60.0


def compile_timeout(source: str | Path) -> float:
    """Return the seconds one compile of `source` may take: 2 minutes plus 10 s per MB of
    source (generated weights are about 4 bytes of C per byte of constant data)."""
    try:
        size = Path(source).stat().st_size
    except OSError:
        size = 0
    return 120.0 + 10.0 * size / 1e6


def run_tool(cmd: list[str], what: str, timeout_s: float = TOOL_TIMEOUT_S,
             cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Return the finished run of a toolchain program (stdin closed, output captured as
    text); raises MnvError when it does not finish within `timeout_s` seconds."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=timeout_s, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise MnvError(f"{what} did not finish within {timeout_s:.0f} s ({Path(cmd[0]).name})",
                       "the machine is overloaded or the generated code is too large") from None


def source_flags(source: str | Path) -> tuple[str, ...]:
    """Return the warnings-as-errors flags `source` is compiled with."""
    strict = Path(source).name in GENERATED_SOURCES
    return (*WRONG_CODE_ERRORS, *(GENERATED_CODE_ERRORS if strict else ()))


def tools(target: Target) -> dict[str, str]:
    """Return the programs a target uses, by role: cc, size and (Cortex-M) qemu."""
    if target.is_host:
        return {"cc": "gcc", "size": "size"}
    return {"cc": "arm-none-eabi-gcc", "size": "arm-none-eabi-size", "qemu": "qemu-system-arm"}


@functools.cache
def _newlib_present(cc: str) -> bool:
    found = run_tool([cc, "--specs=nano.specs", "-print-file-name=libc_nano.a"],
                     "looking for newlib")
    return os.path.isabs(found.stdout.strip())


def missing_tools(target: Target | str) -> list[str]:
    """Return the programs (or newlib) the target needs that this machine lacks; [] if none."""
    target = as_target(target)
    missing = [tool for tool in tools(target).values() if shutil.which(tool) is None]
    if not target.is_host and "arm-none-eabi-gcc" not in missing:
        missing += [] if _newlib_present("arm-none-eabi-gcc") else ["libnewlib-arm-none-eabi"]
    return missing


def toolchain_available(target: Target | str) -> bool:
    """Return True when the compiler, newlib, size tool (and QEMU for Cortex-M) are installed."""
    return not missing_tools(target)


def require(target: Target, role: str) -> str:
    """Return the program for `role` (cc, size, qemu); MnvError if it is not installed."""
    tool = tools(target)[role]
    missing = [t for t in missing_tools(target) if t == tool or (role == "cc" and "newlib" in t)]
    if missing:
        raise MnvError(f"target {target.name} needs {', '.join(missing)}, which is not installed",
                       hint="" if target.is_host else INSTALL_HINT)
    return tool


def harness_dir() -> Path:
    """Return the folder holding the harness C sources, header and linker script template."""
    return Path(str(package_dir("mnv2gen.templates", "templates") / "harness"))


def harness_sizes(target: Target, stack_bytes: int | None = None,
                  heap_bytes: int | None = None) -> tuple[int, int]:
    """Return the harness (stack, heap) bytes: the arguments, else the target file's
    [harness] sizes, else DEFAULT_STACK_BYTES and DEFAULT_HEAP_BYTES."""
    stack = stack_bytes if stack_bytes is not None else (
        target.harness_stack_bytes or DEFAULT_STACK_BYTES)
    heap = heap_bytes if heap_bytes is not None else (
        target.harness_heap_bytes or DEFAULT_HEAP_BYTES)
    return stack, heap


def render_linker_script(target: Target | str, stack_bytes: int | None = None,
                         heap_bytes: int | None = None, weights_sections: Sequence[str] = (),
                         arena_sections: Sequence[str] = ()) -> str:
    """Return the harness linker script for a Cortex-M target, with its real region sizes
    (stack and heap as harness_sizes() decides). The weights region takes `.weights*` and
    `.rodata.*_weights` (every prefix's default) plus `weights_sections`; RAM's .bss takes
    `arena_sections` too (custom --weights-section / --arena-section names, validated by
    mnv2gen.codegen.options)."""
    target = as_target(target)
    stack_bytes, heap_bytes = harness_sizes(target, stack_bytes, heap_bytes)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(harness_dir()),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    regions = [dict(name=r.name, label=r.label, origin=f"0x{r.origin:08X}",
                    length=r.size_bytes, access=_REGION_ACCESS[r.name]) for r in target.regions]
    return env.get_template("link.ld.j2").render(
        target=target.name, regions=regions, weights_region=target.weights_region.name,
        stack_bytes=_aligned8(stack_bytes), heap_bytes=_aligned8(heap_bytes),
        weights_sections=list(weights_sections), arena_sections=list(arena_sections))


def _aligned8(n: int) -> int:
    if n < 0:
        raise MnvError(f"stack and heap sizes must be >= 0 bytes, got {n}")
    return (n + 7) // 8 * 8


def build_elf(target: Target | str, sources: Sequence[str | Path],
              include_dirs: Sequence[str | Path], out_dir: str | Path,
              defines: Mapping[str, str | int | None] | None = None,
              extra_flags: Sequence[str] = (), libraries: Sequence[str | Path] = (),
              stack_bytes: int | None = None, heap_bytes: int | None = None,
              name: str = "app", weights_sections: Sequence[str] = (),
              arena_sections: Sequence[str] = ()) -> Path:
    """Compile and link `sources` with the harness; return the path of the program.

    Cortex-M: returns out_dir/<name>.elf (next to <name>.map and link.ld); a region
    overflow raises MnvError naming the region, the overflow and the region size.
    Host: returns the native executable out_dir/<name>.
    `defines` maps macro -> value (None for a bare -DNAME); `extra_flags` go to every
    compile and to the link; `libraries` (archives or -l flags) are linked after the objects.
    Sources are compiled in parallel with -O2, one object each under out_dir/obj/.
    Stack and heap: the arguments, else the target's [harness] sizes, else the defaults.
    weights_sections / arena_sections: custom section names the linker script places (see
    render_linker_script).
    """
    target = as_target(target)
    stack_bytes, heap_bytes = harness_sizes(target, stack_bytes, heap_bytes)
    cc = require(target, "cc")
    out = Path(out_dir)
    (out / "obj").mkdir(parents=True, exist_ok=True)
    harness = harness_dir()
    all_sources = [Path(s) for s in sources]
    all_sources += [harness / f for f in (_HOST_HARNESS if target.is_host else _ARM_HARNESS)]
    macros = dict(defines or {})
    if not target.is_host:
        per_tick = Fraction(10**9, 2**ICOUNT_SHIFT * target.systick_hz)
        macros |= {"MNV2_INSNS_PER_TICK_NUM": f"{per_tick.numerator}ull",
                   "MNV2_INSNS_PER_TICK_DEN": f"{per_tick.denominator}ull"}
    cflags = [*target.machine_flags, *OPT_FLAGS, "-g", "-Wall",
              *(f"-D{k}" if v is None else f"-D{k}={v}" for k, v in macros.items()),
              *(f"-I{d}" for d in [*include_dirs, harness]), *extra_flags]
    objects = [out / "obj" / f"{i:03d}_{src.stem}.o" for i, src in enumerate(all_sources)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        jobs = [pool.submit(_run, [cc, *cflags, *source_flags(src), "-c", str(src), "-o",
                                   str(obj)], target, f"compiling {src.name}",
                            timeout_s=compile_timeout(src))
                for src, obj in zip(all_sources, objects, strict=True)]
        for job in jobs:
            job.result()
    inputs = [*map(str, objects), *map(str, libraries), "-lm"]
    if target.is_host:
        exe = out / name
        _run([cc, *target.machine_flags, *extra_flags, *inputs, "-o", str(exe)], target,
             "linking")
        return exe
    script = out / "link.ld"
    script.write_text(render_linker_script(target, stack_bytes, heap_bytes, weights_sections,
                                           arena_sections))
    elf = out / f"{name}.elf"
    layout = (f"FLASH holds code, constants and .data's initial values; RAM holds .data, "
              f".bss, the harness heap ({_aligned8(heap_bytes)} bytes) and stack "
              f"({_aligned8(stack_bytes)} bytes)")
    if target.region("WEIGHTS"):
        layout += "; WEIGHTS holds the weights sections"
    _run([cc, *target.machine_flags, *extra_flags, "-nostartfiles", "--specs=nano.specs",
          "--specs=rdimon.specs", "-Wl,--gc-sections", f"-Wl,-Map={out / name}.map",
          "-T", str(script), *inputs, "-o", str(elf)], target, "linking", layout)
    return elf


def _run(cmd: list[str], target: Target, what: str, layout: str = "",
         timeout_s: float = 600.0) -> None:
    done = run_tool(cmd, f"target {target.name}: {what}", timeout_s)
    if done.returncode == 0:
        return
    overflows = parse_overflows(done.stderr)
    if overflows:
        raise MnvError(f"target {target.name}: the program does not fit: "
                       + "; ".join(describe_overflow(target, r, n) for r, n in overflows),
                       hint=f"{layout}; shrink the program or pick a target with more memory")
    lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
    first = next((line for line in lines if "error" in line.lower()), lines[-1])
    raise MnvError(f"target {target.name}: {what} failed: {first}",
                   hint=f"command: {' '.join(cmd)[:600]}")


def parse_overflows(linker_stderr: str) -> list[tuple[str, int]]:
    """Return (region, bytes) for every "region `X' overflowed by N bytes" in ld's output."""
    return [(region, int(n)) for region, n in _OVERFLOW.findall(linker_stderr)]


def describe_overflow(target: Target, region_name: str, overflow: int) -> str:
    """Return e.g. "region RAM (SRAM1+SRAM2, 131072 bytes at 0x20000000) overflowed by 8 bytes"."""
    region = target.region(region_name)
    where = (f" ({region.label}, {region.size_bytes} bytes at 0x{region.origin:08X})"
             if region else "")
    return f"region {region_name}{where} overflowed by {overflow} bytes"
