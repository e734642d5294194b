"""compile_model(): the one place the stages are chained, and writing the generated library."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mnv2gen.codegen.emit import KERNEL_CHOICES, Generated, generate
from mnv2gen.codegen.options import LibraryOptions
from mnv2gen.codegen.pixels import PixelInput
from mnv2gen.codegen.support import check_supported
from mnv2gen.errors import MnvError
from mnv2gen.fsutil import atomic_directory
from mnv2gen.ir import Graph
from mnv2gen.loader import Calibration, load_model
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.planner.plan import Plan, plan_model
from mnv2gen.toolchain import Target, load_target, toolchain_available
from mnv2gen.toolchain.build import tools


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
        raise MnvError(f"unknown kernels {kernels!r}", f"choose {', '.join(KERNEL_CHOICES)}")
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
    # 3. the plan, and the layer-by-layer baseline reported beside it
    plan = plan_model(core, scheme, kernel_set, ram_budget, input_mode=input_mode)
    baseline = plan_model(core, "layer", kernel_set)
    inexact = [f"note: {n}" for n in full.notes if n.startswith("not exact")]
    notice = "\n".join(filter(None, [notice, *inexact]))
    return Compiled(full, plan, baseline, tgt, kernels, path, notice)


def check_fits(compiled: Compiled, const_bytes: int) -> None:
    """Raise MnvError (exit 2) when the arena exceeds the target's RAM or the constant data
    its flash (or weights region), with the numbers."""
    target = compiled.target
    ram = target.ram_bytes
    if ram is not None and compiled.plan.peak_bytes > ram:
        need = compiled.plan.peak_bytes
        raise MnvError(
            f"{compiled.full.name}: the arena needs {need:,} bytes of RAM; {target.name} has "
            f"{ram:,} ({need - ram:,} bytes over)",
            "try --ram-budget, a smaller model (alpha, resolution) or a target with more RAM")
    region = target.weights_region or target.region("FLASH")
    if region is not None and const_bytes > region.size_bytes:
        raise MnvError(
            f"{compiled.full.name}: the weights need {const_bytes:,} bytes; {target.name}'s "
            f"{region.label} has {region.size_bytes:,} ({const_bytes - region.size_bytes:,} "
            "bytes over)", "pick a smaller model or a part with more flash")


def compile_check(compiled: Compiled, out_dir: Path, generated: Generated) -> None:
    """Compile the generated library with the target's compiler (objects only)."""
    target = compiled.target
    cc = tools(target)["cc"]
    sources = generated.sources
    includes = ["-I."] + ([f"-I{compiled.cmsis_nn_path}/Include"] if compiled.cmsis_nn_path
                          else [])
    for source in sources:
        done = subprocess.run([cc, *target.machine_flags, "-O2", "-Wall", "-c", source,
                               *includes, "-o", os.devnull], cwd=out_dir, capture_output=True,
                              text=True)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no message)"])[0]
            raise MnvError(f"generated {source} does not compile for {target.name}: {first}",
                           "this is a bug in mnv2gen; please report it with the model")


def write_library(compiled: Compiled, out_dir: str | Path, tflm_arena_bytes: int | None = None,
                  compile_it: bool = True, pixels: PixelInput | None = None,
                  options: LibraryOptions | None = None) -> Generated:
    """Write the generated library to `out_dir` atomically (nothing is left on failure);
    `pixels` adds the pixel input helper (build --pixel-format), `options` the prefix,
    arena mode and sections (build --prefix, --arena, --weights-section, --arena-section)."""
    with atomic_directory(out_dir) as tmp:
        generated = generate(compiled.full, compiled.plan, compiled.baseline, compiled.target,
                             compiled.kernels, compiled.cmsis_nn_path, tmp, tflm_arena_bytes,
                             pixels, options)
        check_fits(compiled, generated.const_bytes)
        if compile_it and toolchain_available(compiled.target):
            compile_check(compiled, tmp, generated)
    return generated
