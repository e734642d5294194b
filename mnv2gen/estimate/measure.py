"""Measured figures: build the model for a target, run it in QEMU, count instructions."""

from __future__ import annotations

from mnv2gen.errors import MnvError
from mnv2gen.ir import Graph
from mnv2gen.pipeline import compile_graph
from mnv2gen.toolchain import Target
from mnv2gen.verify import verification_inputs, verify

NOTE = ("QEMU -icount instruction count of one inference on a seeded random input "
        "(not cycles); program_regions: bytes per memory region of the test program, "
        "harness included")


def measure(full: Graph, target: str | Target, kernels: str, cmsis_nn_path: str | None = None,
            profile: bool = False, input_mode: str = "resident") -> dict:
    """Return what one QEMU run of the generated code measured: `instructions`,
    `bit_exact` (against the NumPy reference), `elf_sizes`, `const_bytes`, the plan and,
    with `profile`, `steps` (instructions per plan step). A model that does not fit the
    target's memory or cannot be built gives {"error": message} instead."""
    try:
        compiled = compile_graph(full, target, kernels, cmsis_nn_path, input_mode=input_mode)
        report = verify(compiled, verification_inputs(compiled, 1, 0, []), profile=profile)
    except MnvError as exc:
        return {"error": exc.message}
    return {"instructions": report["instructions"], "bit_exact": report["bit_exact"],
            "elf_sizes": report["elf_sizes"], "const_bytes": report["const_bytes"],
            "steps": report.get("steps"), "plan": compiled.plan, "note": NOTE}
