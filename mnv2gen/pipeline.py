"""compile_model(): the one place the stages are chained, and writing the generated library."""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from mnv2gen.codegen.emit import KERNEL_CHOICES, Generated, generate, write_report
from mnv2gen.codegen.footprint import STACK_FLAGS, Footprint, object_sizes, stack_depth
from mnv2gen.codegen.options import LibraryOptions
from mnv2gen.codegen.pixels import PixelInput
from mnv2gen.codegen.support import check_supported
from mnv2gen.errors import InternalError, MnvError, file_label, quoted
from mnv2gen.ir import Graph
from mnv2gen.loader import Calibration, load_model
from mnv2gen.outdir import output_directory
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.planner.plan import Plan, plan_model
from mnv2gen.toolchain import Target, load_target, toolchain_available
from mnv2gen.toolchain.build import OPT_FLAGS, compile_timeout, run_tool, source_flags, tools


@dataclass(frozen=True)
class Compiled:
    """A model planned for a target: the graphs, the plan, the baseline and the kernels."""

    full: Graph
    plan: Plan
    baseline: Plan
    target: Target
    kernels: str
    cmsis_nn_path: str
    notice: str

    @property
    def core(self) -> Graph:
        """Return the integer graph that runs on the device."""
        return self.plan.graph


def resolve_kernels(kernels: str | None, cmsis_nn_path: str | None,
                    mve: bool = False) -> tuple[str, str, str]:
    """Return (kernels, CMSIS-NN path, notice) from the options and CMSIS_NN_PATH.

    Default: generated (mnv2gen's own per-layer kernels), except on Helium cores (`mve`)
    with a CMSIS-NN path known: there CMSIS-NN's MVE kernels are faster.
    """
    path = cmsis_nn_path or os.environ.get("CMSIS_NN_PATH", "")
    notice = ""
    if kernels is None:
        kernels = "cmsis-nn" if path and mve else "generated"
    if kernels not in KERNEL_CHOICES:
        raise MnvError(f"unknown kernels {quoted(kernels)}",
                       f"choose {', '.join(KERNEL_CHOICES)}")
    if kernels == "cmsis-nn":
        if not path:
            raise MnvError("--kernels cmsis-nn needs the path of your CMSIS-NN checkout",
                           "pass --cmsis-nn PATH or set CMSIS_NN_PATH (CMSIS-NN v7.0.0 API)")
        if not (Path(path) / "Include" / "arm_nnfunctions.h").is_file():
            raise MnvError(f"{path}: not a CMSIS-NN checkout (no Include/arm_nnfunctions.h)",
                           "point --cmsis-nn at the folder holding Include/ and Source/")
        path = str(Path(path).resolve())
    return kernels, path if kernels == "cmsis-nn" else "", notice


def compile_model(model: str | Path, target: str, kernels: str | None = None,
                  cmsis_nn_path: str | None = None, scheme: str = "auto",
                  ram_budget: int | None = None,
                  calibration: Calibration | None = None,
                  input_mode: str = "resident") -> Compiled:
    """Return the model file planned for `target`: load -> passes -> integer core -> plan."""
    return compile_graph(load_model(model, calibration), target, kernels, cmsis_nn_path,
                         scheme, ram_budget, input_mode)


def compile_graph(full: Graph, target: str | Target, kernels: str | None = None,
                  cmsis_nn_path: str | None = None, scheme: str = "auto",
                  ram_budget: int | None = None, input_mode: str = "resident") -> Compiled:
    """Return a loaded (passed) graph planned for `target` (a name or a Target)."""
    # 1. the target decides the kernel set, hence the kernels' scratch sizes
    tgt = target if isinstance(target, Target) else load_target(target)
    kernels, path, notice = resolve_kernels(kernels, cmsis_nn_path, tgt.mve)
    kernel_set = kernels if kernels in ("portable", "generated") else (
        "cmsis-c" if tgt.is_host else tgt.kernel_set)
    # 2. float edges are left to the caller: the device runs the integer core, which
    #    code generation must be able to produce entirely
    core = integer_core(full)
    check_supported(core)
    check_target_budget(core, tgt)
    # 3. the plan, and the layer-by-layer baseline reported beside it
    plan = plan_model(core, scheme, kernel_set, ram_budget, input_mode=input_mode)
    baseline = plan_model(core, "layer", kernel_set)
    inexact = [f"note: {n}" for n in full.notes if n.startswith("not exact")]
    notice = "\n".join(filter(None, [notice, *inexact]))
    return Compiled(full, plan, baseline, tgt, kernels, path, notice)


@functools.cache
def largest_target_ram() -> int:
    """Return the most RAM any Cortex-M target of targets/ has, in bytes."""
    from mnv2gen.toolchain.targets import list_targets

    return max(load_target(n).ram_bytes or 0 for n in list_targets())


def check_target_budget(core: Graph, target: Target) -> None:
    """Raise MnvError before any planning when no Cortex-M target could hold the arena,
    whatever the plan: it always holds the input and the output tensor (`--target host`
    has no such limit; a target's own RAM is checked with the plan's numbers before any
    file is written)."""
    if target.ram_bytes is None:
        return
    largest = largest_target_ram()
    need = max(core.tensor(n).size_bytes for n in (*core.inputs, *core.outputs))
    if need > largest:
        raise MnvError(
            f"{file_label(core.name)}: the arena holds at least the {need:,}-byte input or "
            f"output; the largest Cortex-M target has {largest:,} bytes of RAM",
            "pick a smaller resolution, or --target host to generate code for a large "
            "machine")


def check_fits(compiled: Compiled, const_bytes: int) -> None:
    """Raise MnvError (exit 2) when the arena exceeds the target's RAM or the constant data
    its flash (or weights region), with the numbers."""
    target = compiled.target
    ram = target.ram_bytes
    if ram is not None and compiled.plan.peak_bytes > ram:
        need = compiled.plan.peak_bytes
        raise MnvError(
            f"{file_label(compiled.full.name)}: the arena needs {need:,} bytes of RAM; "
            f"{target.name} has "
            f"{ram:,} ({need - ram:,} bytes over)",
            "try --ram-budget, a smaller model (alpha, resolution) or a target with more RAM")
    region = target.weights_region or target.region("FLASH")
    if region is not None and const_bytes > region.size_bytes:
        raise MnvError(
            f"{file_label(compiled.full.name)}: the weights need {const_bytes:,} bytes; "
            f"{target.name}'s "
            f"{region.label} has {region.size_bytes:,} ({const_bytes - region.size_bytes:,} "
            "bytes over)", "pick a smaller model or a part with more flash")


#: The library's API functions (default prefix) whose deepest stack REPORT.md states.
API_FUNCTIONS = ("mnv2_invoke", "mnv2_run", "mnv2_begin", "mnv2_feed_rows",
                 "mnv2_feed_pixel_rows", "mnv2_set_input_pixels", "mnv2_set_arena")


def compile_check(compiled: Compiled, out_dir: Path, generated: Generated) -> Footprint | None:
    """Compile the generated library with the target's compiler (objects only); return
    its footprint: `size` of the objects and the deepest stack of its API (None for the
    stack when GCC writes no call graph)."""
    target = compiled.target
    cc, size_tool = tools(target)["cc"], tools(target)["size"]
    sources = generated.sources
    includes = ["-I."] + ([f"-I{compiled.cmsis_nn_path}/Include"] if compiled.cmsis_nn_path
                          else [])
    with tempfile.TemporaryDirectory(prefix="mnv2gen-check-") as work:
        objects = []
        for source in sources:
            obj = Path(work) / (Path(source).stem + ".o")
            done = run_tool([cc, *target.machine_flags, *OPT_FLAGS, "-Wall", *STACK_FLAGS,
                             *source_flags(source), "-c", source, *includes, "-o", str(obj)],
                            f"compiling the generated {source}",
                            compile_timeout(Path(out_dir) / source), cwd=out_dir)
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines() or ["(no message)"]
                first = next((line for line in lines if "error" in line), lines[0])
                raise InternalError(f"generated {source} does not compile for {target.name}: "
                                    f"{first}")
            objects.append(obj)
        text, data, bss = object_sizes(size_tool, objects)
        stack = stack_depth(sorted(Path(work).glob("*.ci")),
                            [generated.renamer.identifier(f) for f in API_FUNCTIONS])
    if stack is None:
        return Footprint(text, data, bss, None)
    return replace(stack, text=text, data=data, bss=bss)


def build_products(prefix: str) -> tuple[str, ...]:
    """Return what the generated Makefile (and a CMake build folder named like it) make in
    the output folder: a rebuild leaves them alone (make rebuilds from the newer sources)."""
    return ("build", f"lib{prefix}.a")


def write_library(compiled: Compiled, out_dir: str | Path, tflm_arena_bytes: int | None = None,
                  compile_it: bool = True, pixels: PixelInput | None = None,
                  force: bool = False, options: LibraryOptions | None = None) -> Generated:
    """Write the generated library into the folder `out_dir`; return what was written.
    `pixels` adds the pixel input helper (build --pixel-format), `options` the prefix,
    arena mode and sections (build --prefix, --arena, --weights-section, --arena-section).

    The folder rules of `mnv2gen.outdir.output_directory` apply: nothing is left on failure,
    nothing mnv2gen did not write is touched, a foreign non-empty folder needs `force`.
    """
    prefix = (options or LibraryOptions()).prefix
    with output_directory(out_dir, force=force, products=build_products(prefix)) as tmp:
        generated = generate(compiled.full, compiled.plan, compiled.baseline, compiled.target,
                             compiled.kernels, compiled.cmsis_nn_path, tmp, tflm_arena_bytes,
                             pixels, options)
        check_fits(compiled, generated.const_bytes)
        if compile_it and toolchain_available(compiled.target):
            write_report(tmp, generated, compile_check(compiled, tmp, generated))
        elif compile_it:
            write_report(tmp, generated, None, f"{compiled.target.name}'s compiler is not "
                         "installed")
        else:
            write_report(tmp, generated, None, "the build ran without its compile check")
    return generated
