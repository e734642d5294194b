"""Code bytes of a generated library on a target, measured on a real link.

The library (schedule, band tables, fused-unit runtime, kernels, and CMSIS-NN functions
for that backend) is linked twice with a two-word vector table and `--gc-sections`: once
with a main() that calls mnv2_invoke() and once without. The difference of the flash
sections (.text, .rodata, .ARM.exidx, .data's load image), read with arm-none-eabi-size,
is what the model adds to a firmware besides its constant arrays: the `.weights` section
is measured apart and left out (the arrays are stubbed with zeros of the same sizes, so
nothing else moves). libc/libgcc helpers the model pulls in (memmove, 64-bit shifts)
count; the application's own startup code does not.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from mnv2gen.codegen.emit import generate, templates_dir
from mnv2gen.errors import MnvError
from mnv2gen.ir import Graph
from mnv2gen.planner.plan import Plan
from mnv2gen.toolchain import Target, missing_tools
from mnv2gen.toolchain.build import OPT_FLAGS, run_tool, tools

_LINKER_SCRIPT = """\
ENTRY(mnv2_size_reset)
MEMORY
{
  FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 256M
  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 256M
}
SECTIONS
{
  .text : { KEEP(*(.vectors)) *(.text .text.*) *(.rodata .rodata.*) } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  .weights : ALIGN(16) { *(.weights .weights.*) } > FLASH
  .data : { *(.data .data.*) } > RAM AT > FLASH
  .bss (NOLOAD) : { *(.bss .bss.*) *(COMMON) } > RAM
}
"""
_STARTUP = """\
#include <stdint.h>
int main(void);
void mnv2_size_reset(void) { (void)main(); for (;;) { } }
__attribute__((section(".vectors"), used))
const uintptr_t mnv2_size_vectors[2] = {0x20001000u, (uintptr_t)mnv2_size_reset};
"""
_MAIN_WITH_MODEL = '#include "mnv2_model.h"\nint main(void) { return mnv2_run(0, 0); }\n'
_MAIN_WITHOUT = "int main(void) { return 0; }\n"
_EXTERN = re.compile(r"^extern const (\w+) (\w+)\[(\d+)\];$", re.M)
_FLASH_SECTIONS = (".text", ".ARM.exidx", ".data")

# (target name, kernels, CMSIS-NN path) -> (objects dir, object files): compiled once
_RUNTIME_CACHE: dict[tuple[str, str, str], list[Path]] = {}
_BASELINE_CACHE: dict[tuple[str, str, str], int] = {}
_OBJECTS: tempfile.TemporaryDirectory | None = None
_LOCK = threading.Lock()


def can_measure(target: Target) -> bool:
    """Return True when this machine has the target's compiler, newlib and size tool."""
    return not target.is_host and not [t for t in missing_tools(target)
                                       if t != "qemu-system-arm"]


def _run(cmd: list[str], cwd: Path) -> None:
    done = run_tool(cmd, "code size build", 600.0, cwd=cwd)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise MnvError(f"code size build failed: {lines[0]}", " ".join(cmd))


def _compile(target: Target, sources: list[Path], includes: list[Path], out: Path) -> list[Path]:
    cc = tools(target)["cc"]
    out.mkdir(parents=True, exist_ok=True)
    objects = [out / f"{i:03d}_{src.stem}.o" for i, src in enumerate(sources)]
    flags = [*target.machine_flags, *OPT_FLAGS,
             *(f"-I{d}" for d in includes)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for job in [pool.submit(_run, [cc, *flags, "-c", str(src), "-o", str(obj)], out)
                    for src, obj in zip(sources, objects, strict=True)]:
            job.result()
    return objects


def _runtime_objects(target: Target, kernels: str, cmsis_nn_path: str) -> list[Path]:
    """Return the objects every model shares (fused runtime, kernels, CMSIS-NN), compiled
    once per target, backend and CMSIS-NN path in this process."""
    key = (target.name, kernels, cmsis_nn_path)
    if key not in _RUNTIME_CACHE:
        runtime = templates_dir() / "runtime"
        sources = [runtime / "mnv2_fused.c", runtime / "mnv2_segment.c",
                   runtime / ("mnv2_ops_cmsis.c" if kernels == "cmsis-nn"
                              else "mnv2_ops_portable.c")]  # generated: its fallbacks
        includes = [runtime]
        if kernels == "cmsis-nn":
            root = Path(cmsis_nn_path)
            sources += sorted(p for p in (root / "Source").rglob("*.c")
                              if "Bindings" not in p.parts
                              and not p.name.endswith(("_f16.c", "_f32.c")))
            includes.append(root / "Include")
        out = Path(_objects_dir().name) / f"{target.name}_{kernels}_{len(cmsis_nn_path)}"
        _RUNTIME_CACHE[key] = _compile(target, sources, includes, out)
    return _RUNTIME_CACHE[key]


def _objects_dir() -> tempfile.TemporaryDirectory:
    """Return this process's folder of shared objects (removed at exit)."""
    global _OBJECTS
    with _LOCK:
        if _OBJECTS is None:
            _OBJECTS = tempfile.TemporaryDirectory(prefix="mnv2gen-size-")
    return _OBJECTS


def _flash_bytes(target: Target, elf: Path) -> tuple[int, int]:
    """Return (code bytes, .weights bytes) of a linked program."""
    listing = subprocess.run([tools(target)["size"], "-A", str(elf)], capture_output=True,
                             text=True, check=True).stdout
    sizes = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sum(sizes.get(s, 0) for s in _FLASH_SECTIONS), sizes.get(".weights", 0)


def _link(target: Target, objects: list[Path], main_source: str, work: Path,
          includes: list[Path], name: str) -> Path:
    (work / f"{name}_main.c").write_text(main_source)
    (work / "startup.c").write_text(_STARTUP)
    (work / "size.ld").write_text(_LINKER_SCRIPT)
    own = _compile(target, [work / f"{name}_main.c", work / "startup.c"], includes,
                   work / f"{name}_obj")
    elf = work / f"{name}.elf"
    _run([tools(target)["cc"], *target.machine_flags, "-nostartfiles", "--specs=nano.specs",
          "--specs=nosys.specs", "-Wl,--gc-sections", "-T", str(work / "size.ld"),
          *map(str, own + objects), "-o", str(elf)], work)
    return elf


def measure_code_bytes(full: Graph, plan: Plan, baseline: Plan,
                       targets: list[Target] | Target, kernels: str,
                       cmsis_nn_path: str = "") -> dict[str, int] | int:
    """Return per target name the flash bytes the generated library adds to a firmware
    besides its constant arrays, measured with arm-none-eabi-gcc and arm-none-eabi-size.
    The library is generated once (it does not depend on the target beyond comments) and
    compiled for the targets in parallel.

    One Target instead of a list: return its bytes alone.
    Raises MnvError when the toolchain is missing or a build fails."""
    if isinstance(targets, Target):
        return measure_code_bytes(full, plan, baseline, [targets], kernels,
                                  cmsis_nn_path)[targets.name]
    for target in targets:
        if not can_measure(target):
            raise MnvError(f"measuring code size for {target.name} needs arm-none-eabi-gcc, "
                           "newlib and arm-none-eabi-size")
    with tempfile.TemporaryDirectory(prefix="mnv2gen-size-") as scratch:
        work = Path(scratch)
        lib = work / "lib"
        lib.mkdir()
        generate(full, plan, baseline, targets[0], kernels, cmsis_nn_path, lib)
        header = (lib / "mnv2_weights.h").read_text()
        (lib / "weights_stub.c").write_text("#include <stdint.h>\n" + "".join(
            f'const {ctype} {sym}[{n}] __attribute__((aligned(16), section(".weights"))) '
            "= {0};\n" for ctype, sym, n in _EXTERN.findall(header)))
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(targets)) as pool:
            jobs = {t.name: pool.submit(_code_bytes, t, kernels, cmsis_nn_path, lib,
                                        work / t.name) for t in targets}
            return {name: job.result() for name, job in jobs.items()}


def _code_bytes(target: Target, kernels: str, cmsis_nn_path: str, lib: Path, work: Path) -> int:
    work.mkdir()
    runtime = _runtime_objects(target, kernels, cmsis_nn_path)
    model_sources = [lib / "mnv2_model.c", lib / "weights_stub.c"]
    if kernels == "generated":
        model_sources.append(lib / "mnv2_kernels.c")  # this model's own kernels
    model_objects = _compile(target, model_sources, [lib], work / "model_obj")
    with_model, _ = _flash_bytes(target, _link(target, model_objects + runtime,
                                               _MAIN_WITH_MODEL, work, [lib], "with"))
    key = (target.name, kernels, cmsis_nn_path)
    if key not in _BASELINE_CACHE:
        _BASELINE_CACHE[key], _ = _flash_bytes(target, _link(target, [], _MAIN_WITHOUT, work,
                                                             [lib], "without"))
    return with_model - _BASELINE_CACHE[key]
