"""Render a plan into C sources, headers, build files, plan.json and REPORT.md.

Python decides every number and symbol (mnv2gen.codegen.lower); the Jinja templates under
templates/ only substitute and loop. The output is reproducible byte for byte: no
timestamps, no absolute paths except the CMSIS-NN path the user gave.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2

from mnv2gen import __version__
from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.generated.instances import InstanceSet
from mnv2gen.codegen.generated.lower import lower_generated
from mnv2gen.codegen.lower import lower_unit
from mnv2gen.ir import DType, Graph
from mnv2gen.planner.plan import Plan
from mnv2gen.planner.report import plan_report
from mnv2gen.planner.schedule import FusedUnit
from mnv2gen.stats import graph_macs
from mnv2gen.toolchain.targets import Target, package_dir

RUNTIME_FILES = ("mnv2_ops.h", "mnv2_ops_portable.c", "mnv2_ops_cmsis.c", "mnv2_fused.h",
                 "mnv2_fused.c")
#: Runtime files of the generated backend (the portable kernels run what it does not
#: specialise); mnv2_kernels.c/.h are rendered per model.
GENERATED_KERNEL_HEADERS = ("mnv2_gen_kernels.h", "mnv2_gen_common.h", "mnv2_gen_pw.h",
                            "mnv2_gen_dw.h", "mnv2_gen_conv.h")
GENERATED_RUNTIME_FILES = ("mnv2_ops.h", "mnv2_ops_portable.c", "mnv2_fused.h", "mnv2_fused.c",
                           *GENERATED_KERNEL_HEADERS)
KERNEL_CHOICES = ("generated", "portable", "cmsis-nn")


def library_sources(kernels: str) -> tuple[str, ...]:
    """Return the C files of a generated library that are compiled (CMSIS-NN's aside)."""
    common = ("mnv2_model.c", "mnv2_weights.c", "mnv2_fused.c")
    if kernels == "generated":
        return (*common, "mnv2_ops_portable.c", "mnv2_kernels.c")
    return (*common, "mnv2_ops_cmsis.c" if kernels == "cmsis-nn" else "mnv2_ops_portable.c")


def templates_dir() -> Path:
    """Return the folder of the code templates (installed package data or the checkout's)."""
    return Path(str(package_dir("mnv2gen.templates", "templates")))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)


@dataclass(frozen=True)
class Generated:
    """What `generate` wrote: file names, constant bytes and the plan report."""

    files: tuple[str, ...]
    const_bytes: int
    report: dict


def _describe(up) -> str:
    unit = up.unit
    if isinstance(unit, FusedUnit):
        parts = [o.kind.value.lower() for o in unit.ops]
        c = up.choice
        return (f"{unit.name}, fused {' -> '.join(parts)}; {len(c.bands)} bands of "
                f"{c.chunking.rows} row(s), {c.chunking.groups} channel group(s)")
    return f"{unit.name}, {unit.op.kind.value} ({unit.op.describe()})"


def _edge(graph: Graph, full: Graph, name: str, offset: int, is_input: bool) -> dict:
    t = graph.tensor(name)
    spec = {"shape": list(t.shape), "dims": ([1] * (4 - len(t.shape)) + list(t.shape))[-4:],
            "bytes": t.size_bytes, "elements": t.num_elements, "dtype": t.dtype.value,
            "ctype": "uint8_t" if t.dtype is DType.UINT8 else "int8_t",
            "scale": repr(float(t.scale)), "zero_point": t.zero_point, "offset": offset,
            "note": ""}
    original = full.inputs[0] if is_input else full.outputs[0]
    if full.tensor(original).dtype is DType.FLOAT32:
        spec["note"] = ("/* The original model takes float32 input: quantise it as "
                        "q = round(x / MNV2_INPUT_SCALE) + MNV2_INPUT_ZERO_POINT. */"
                        if is_input else
                        "/* The original model outputs float32: dequantise as "
                        "x = MNV2_OUTPUT_SCALE * (q - MNV2_OUTPUT_ZERO_POINT). */")
    return spec


def generate(full: Graph, plan: Plan, baseline: Plan, target: Target, kernels: str,
             cmsis_nn_path: str, out_dir: Path, tflm_arena_bytes: int | None = None) -> Generated:
    """Write the generated library for `plan` into `out_dir`; return what was written.

    `full` is the model as read (for its float edges), `plan.graph` the integer core that
    runs on the device, `baseline` the layer-by-layer plan reported beside it.
    """
    graph = plan.graph
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        from mnv2gen.errors import UnsupportedError
        raise UnsupportedError(f"{graph.name}: {len(graph.inputs)} inputs and "
                               f"{len(graph.outputs)} outputs",
                               "code generation supports one input and one output")
    env = _environment()
    pool = ConstPool()
    instances = InstanceSet()
    units, steps = [], []
    for up in plan.units:
        if kernels == "generated":
            lowered = lower_generated(plan, up, pool, instances)
            template, context = lowered.template, lowered.context
        else:
            (template, context), lowered = lower_unit(plan, up, pool), None
        module = env.get_template(template).module
        units.append({"step": up.step, "comment": _describe(up),
                      "definitions": str(module.define(up.name, context)).rstrip(),
                      "call": str(module.call(up.name, context)).rstrip("\n")})
        if lowered is not None and lowered.prototype:
            steps.append({"step": up.step, "comment": _describe(up),
                          "text": str(module.step(up.name, context)).strip(),
                          "prototype": lowered.prototype})
    report = plan_report(plan, baseline, tflm_arena_bytes)
    provenance = (f"Generated by mnv2gen {__version__} from {full.name} (sha256 "
                  f"{full.source_sha256}) for {target.name}, {kernels} kernels. Do not edit.")
    macs = graph_macs(graph)
    common = {
        "provenance": provenance, "model": full.name, "target": target.name,
        "kernels": kernels, "kernel_set": plan.kernel_set,
        "arena_bytes": plan.peak_bytes, "layer_bytes": baseline.peak_bytes,
        "lower_bytes": plan.lower_bound_bytes, "macs": f"{macs:,}",
        "input": _edge(graph, full, graph.inputs[0], plan.offset(graph.inputs[0]), True),
        "output": _edge(graph, full, graph.outputs[0], plan.offset(graph.outputs[0]), False),
        "plan_summary": (f"{plan.scheme} scheme, arena {plan.peak_bytes} bytes "
                         f"(layer by layer: {baseline.peak_bytes})"),
        "units": units, "arrays": pool.arrays, "const_bytes": pool.total_bytes,
        "cc": "gcc" if target.is_host else "arm-none-eabi-gcc",
        "ar": "ar" if target.is_host else "arm-none-eabi-ar",
        "target_flags": " ".join(target.machine_flags), "cmsis_nn_path": cmsis_nn_path,
        "generated": kernels == "generated", "sources": library_sources(kernels),
        "steps": steps, "instances": instances.definitions(env),
    }
    rendered = {
        "mnv2_model.h": "model/mnv2_model.h.j2", "mnv2_model.c": "model/mnv2_model.c.j2",
        "mnv2_weights.h": "model/mnv2_weights.h.j2", "mnv2_weights.c": "model/mnv2_weights.c.j2",
        "Makefile": "build/Makefile.j2", "CMakeLists.txt": "build/CMakeLists.txt.j2",
    }
    if kernels == "generated":
        rendered |= {"mnv2_kernels.c": "gen/mnv2_kernels.c.j2",
                     "mnv2_kernels.h": "gen/mnv2_kernels.h.j2"}
    for name, template in rendered.items():
        (out_dir / name).write_text(env.get_template(template).render(**common))
    report_units = [{**u, "chunking": (f"R={u['chunking']['rows']} G={u['chunking']['groups']}"
                                       if u["chunking"] else "-"),
                     "in_place": "yes" if u["in_place"] else ""} for u in report["units"]]
    (out_dir / "REPORT.md").write_text(env.get_template("build/REPORT.md.j2").render(
        **{**common, "units": report_units}))
    (out_dir / "plan.json").write_text(json.dumps(
        {**report, "target": target.name, "kernels": kernels, "const_bytes": pool.total_bytes},
        indent=2) + "\n")
    runtime = GENERATED_RUNTIME_FILES if kernels == "generated" else RUNTIME_FILES
    for name in runtime:
        shutil.copyfile(templates_dir() / "runtime" / name, out_dir / name)
    files = (*rendered, "REPORT.md", "plan.json", *runtime)
    return Generated(tuple(sorted(files)), pool.total_bytes, report)
