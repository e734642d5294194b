"""Render a plan into C sources, headers, build files, plan.json and REPORT.md.

Python decides every number and symbol (mnv2gen.codegen.lower); the Jinja templates under
templates/ only substitute and loop. The output is reproducible byte for byte: no
timestamps, no absolute paths (the build files read CMSIS_NN_PATH when they run).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2

from mnv2gen import __version__
from mnv2gen.codegen.cinit import Initialiser, runtime_structs
from mnv2gen.codegen.consts import ConstPool
from mnv2gen.codegen.footprint import Footprint
from mnv2gen.codegen.generated.instances import InstanceSet
from mnv2gen.codegen.generated.lower import lower_generated
from mnv2gen.codegen.lower import lower_unit
from mnv2gen.codegen.lower_family import output_ctype
from mnv2gen.codegen.options import LibraryOptions
from mnv2gen.codegen.pixels import PixelInput, pixel_context
from mnv2gen.codegen.prefix import Renamer, code_identifiers
from mnv2gen.codegen.ranges import check_arena, check_context, check_stream
from mnv2gen.codegen.steps import describe_step, step_bands
from mnv2gen.codegen.support import check_supported
from mnv2gen.codegen.text import (
    build_file_path,
    check_generated_text,
    comment_text,
    safe_basename,
)
from mnv2gen.estimate.calibration import calibration
from mnv2gen.estimate.features import step_features, total_features
from mnv2gen.ir import DType, Graph, OpKind
from mnv2gen.planner.plan import Plan, SegmentPlan
from mnv2gen.planner.report import plan_report
from mnv2gen.planner.schedule import FusedUnit
from mnv2gen.stats import graph_macs
from mnv2gen.toolchain.build import OPT_FLAGS
from mnv2gen.toolchain.targets import Target, package_dir

RUNTIME_FILES = ("mnv2_ops.h", "mnv2_ops_portable.c", "mnv2_ops_cmsis.c", "mnv2_fused.h",
                 "mnv2_fused.c", "mnv2_segment.h", "mnv2_segment.c", "mnv2_ops_family.h",
                 "mnv2_ops_family.c", "mnv2_ops_cmsis_family.c")
#: Runtime files of the generated backend: the portable kernels run what it does not
#: specialise (mnv2_kernels.c/.h are rendered per model).
GENERATED_KERNEL_HEADERS = ("mnv2_gen_kernels.h", "mnv2_gen_common.h", "mnv2_gen_pw.h",
                            "mnv2_gen_dw.h", "mnv2_gen_conv.h")
GENERATED_RUNTIME_FILES = (*(f for f in RUNTIME_FILES if "cmsis" not in f),
                           *GENERATED_KERNEL_HEADERS)
# The generated library's own C sources (plus one of the kernel backends).
LIBRARY_SOURCES = ("mnv2_model.c", "mnv2_weights.c", "mnv2_fused.c", "mnv2_segment.c")
KERNEL_CHOICES = ("generated", "portable", "cmsis-nn")
#: Generated files renamed as build files (the others: C sources and headers, or data).
BUILD_FILES = ("Makefile", "CMakeLists.txt", "REPORT.md")


def library_sources(kernels: str) -> tuple[str, ...]:
    """Return the C files of a generated library that are compiled (CMSIS-NN's aside), with
    the default prefix (Generated.sources has them as written)."""
    if kernels == "generated":
        return (*LIBRARY_SOURCES, "mnv2_ops_portable.c", "mnv2_kernels.c")
    return (*LIBRARY_SOURCES,
            "mnv2_ops_cmsis.c" if kernels == "cmsis-nn" else "mnv2_ops_portable.c")


def templates_dir() -> Path:
    """Return the folder of the code templates (installed package data or the checkout's)."""
    return Path(str(package_dir("mnv2gen.templates", "templates")))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)
    initialiser = Initialiser(runtime_structs(str(templates_dir() / "runtime")))
    env.globals.update(init=initialiser, static_init=initialiser.define)
    return env


@dataclass(frozen=True)
class Generated:
    """What `generate` wrote: file names, constant bytes and the plan report; the C files
    to compile and the renamer of its prefix (for sources that use the library)."""

    files: tuple[str, ...]
    const_bytes: int
    report: dict
    sources: tuple[str, ...] = ()
    renamer: Renamer = Renamer("mnv2")
    report_context: dict | None = None  # what REPORT.md is rendered from (write_report)


def _with_inner(env, context: dict) -> dict:
    """Return a lowering context with its inner layer steps (a squeeze-excite unit's
    excitation ops: `inner_steps` = [(name, template, context)]) rendered into
    `inner_definitions` (one string) and `inner_calls` (one string per step)."""
    if "inner_steps" not in context:
        return context
    definitions, calls = [], []
    for name, template, inner in context["inner_steps"]:
        inner = {**inner, "step": context["step"]}
        module = env.get_template(f"ops/{template}").module
        definitions.append(str(module.define(name, inner)).strip("\n"))
        calls.append(str(module.call(name, inner)).rstrip("\n"))
    return {**context, "inner_definitions": "\n".join(d for d in definitions if d),
            "inner_calls": calls}


def _layout(graph: Graph, name: str) -> tuple[str, list[str]]:
    """Return the input's layout name and dimension names: NHWC, or NCHW where the model
    begins by transposing it to NHWC (a PyTorch export)."""
    rank = len(graph.tensor(name).shape)
    if rank != 4:
        return f"{rank}-D", [f"D{i}" for i in range(rank)]
    readers = graph.consumers(name)
    if readers and all(o.kind is OpKind.TRANSPOSE and o.attrs.perm == (0, 2, 3, 1)
                       for o in readers):
        return "NCHW", ["N", "C", "H", "W"]
    return "NHWC", ["N", "H", "W", "C"]


def _edge(graph: Graph, full: Graph, name: str, address: str, index: int,
          is_input: bool, count: int = 1) -> dict:
    """Return the header facts of the input or of output `index` (`address`: its C
    expression, an arena offset or, for an output the model computes from constants
    only, its const array)."""
    t = graph.tensor(name)
    quantised = t.quant is not None
    prefix = "MNV2_INPUT" if is_input else ("MNV2_OUTPUT" if index == 0
                                             else f"MNV2_OUTPUT_{index}")
    layout, dim_names = _layout(graph, name)
    label = "Output" if count == 1 else f"Output {index}"
    description = (f"{label}: {t.dtype.value} [{', '.join(map(str, t.shape))}]"
                   + (", real = scale * (q - zero_point)" if quantised else "")
                   + ("; constant (computed at compile time: it lives in flash)"
                      if t.is_const else "") + ".")
    spec = {"shape": list(t.shape), "bytes": t.size_bytes, "elements": t.num_elements,
            "dtype": t.dtype.value, "ctype": output_ctype(graph, name), "index": index,
            "scale": repr(float(t.scale)) if quantised else "1.0",
            "zero_point": t.zero_point if quantised else 0, "address": address,
            "prefix": prefix, "description": description, "layout": layout,
            "named_dims": list(zip(dim_names, t.shape, strict=True)), "note": ""}
    original = full.inputs[0] if is_input else (
        full.outputs[index] if index < len(full.outputs) else name)
    if full.tensor(original).dtype is not DType.FLOAT32 or t.dtype is DType.FLOAT32:
        return spec
    spec["note"] = (f"/* The original model outputs float32: dequantise as "
                    f"x = {prefix}_SCALE * (q - {prefix}_ZERO_POINT). */" if not is_input else
                    "/* The original model takes float32 input: quantise it as "
                    "q = round(x / MNV2_INPUT_SCALE) + MNV2_INPUT_ZERO_POINT. */")
    return spec


def _stream(plan: Plan) -> dict | None:
    """Return the streamed input's numbers for the templates, None for a resident input."""
    ring = plan.input_ring()
    if ring is None:
        return None
    seg = plan.units[0]
    _, w, c = seg.shape.stages[0].in_shape
    return {"segment": seg.name, "entries": len(seg.shape.schedule),
            "rows": seg.shape.stages[0].in_shape[0], "row_bytes": w * c, "ring_rows": ring[1]}


def _output_address(plan: Plan, pool: ConstPool, name: str, index: int) -> str:
    t = plan.graph.tensor(name)
    if t.is_const:
        return pool.add(f"mnv2_constant_output_{index}", t.data, t.dtype.np,
                        f"output {index}: constant, computed at compile time")
    return f"mnv2_arena + {plan.offset(name)}"


def generate(full: Graph, plan: Plan, baseline: Plan, target: Target, kernels: str,
             cmsis_nn_path: str, out_dir: Path, tflm_arena_bytes: int | None = None,
             pixels: PixelInput | None = None,
             options: LibraryOptions | None = None) -> Generated:
    """Write the generated library for `plan` into `out_dir`; return what was written.

    `full` is the model as read (for its float edges), `plan.graph` the integer core that
    runs on the device, `baseline` the layer-by-layer plan reported beside it; `pixels`
    adds mnv2_set_input_pixels() (build --pixel-format); `options` the prefix, arena mode
    and sections (default: mnv2, static arena, .rodata.mnv2_weights and .bss.mnv2_arena).
    `cmsis_nn_path` is not written anywhere: the build files take it from CMSIS_NN_PATH.
    """
    options = options or LibraryOptions()
    graph = plan.graph
    check_supported(graph)
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
            template = f"ops/{template}"
        check_context(f"step {up.step} ({up.name})", context, template.split("/")[-1])
        context = _with_inner(env, {**context, "step": up.step})
        module = env.get_template(template).module
        units.append({"step": up.step, "name": up.name, "bands": step_bands(up),
                      "layer": not isinstance(up, SegmentPlan) and not isinstance(
                          up.unit, FusedUnit),
                      "comment": comment_text(describe_step(up), 1000),
                      "definitions": str(module.define(up.name, context)).rstrip(),
                      "call": str(module.call(up.name, context)).rstrip("\n")})
        if lowered is not None and lowered.prototype:
            steps.append({"step": up.step, "comment": comment_text(describe_step(up), 1000),
                          "text": str(module.step(up.name, context)).strip(),
                          "prototype": lowered.prototype})
    check_arena(plan.peak_bytes, pool.total_bytes)
    report = plan_report(plan, baseline, tflm_arena_bytes)
    model = safe_basename(full.name)
    provenance = comment_text(
        f"Generated by mnv2gen {__version__} from {model} (sha256 {full.source_sha256}) for "
        f"{target.name}, {kernels} kernels. Do not edit.", 240)
    macs = graph_macs(graph)
    stream = _stream(plan)
    check_stream(stream)
    input_address = f"mnv2_arena + {plan.offset(graph.inputs[0])}" if stream is None else "0"
    outputs = [_edge(graph, full, name, _output_address(plan, pool, name, i), i, False,
                     len(graph.outputs)) for i, name in enumerate(graph.outputs)]
    common = {
        "stream": stream,
        "provenance": provenance, "model": model, "target": comment_text(target.name),
        "kernels": kernels, "kernel_set": plan.kernel_set,
        "arena_bytes": plan.peak_bytes, "layer_bytes": baseline.peak_bytes,
        "lower_bytes": plan.lower_bound_bytes, "macs": f"{macs:,}",
        "input": _edge(graph, full, graph.inputs[0], input_address, 0, True),
        "outputs": outputs, "output": outputs[0],
        "plan_summary": (f"{plan.scheme} scheme, arena {plan.peak_bytes} bytes "
                         f"(layer by layer: {baseline.peak_bytes})"),
        "units": units, "band_count": sum(u["bands"] for u in units),
        "arrays": pool.arrays, "const_bytes": pool.total_bytes,
        "cc": "gcc" if target.is_host else "arm-none-eabi-gcc",
        "ar": "ar" if target.is_host else "arm-none-eabi-ar", "cross": not target.is_host,
        "target_flags": " ".join(target.machine_flags), "opt_flags": " ".join(OPT_FLAGS),
        "cmsis_nn_path": build_file_path(cmsis_nn_path, "--cmsis-nn"),
        "generated": kernels == "generated", "sources": library_sources(kernels),
        "steps": steps, "instances": instances.definitions(env),
        "pixels": pixel_context(graph, pixels), **options.context(),
    }
    rendered = {
        "mnv2_model.h": "model/mnv2_model.h.j2", "mnv2_model.c": "model/mnv2_model.c.j2",
        "mnv2_weights.h": "model/mnv2_weights.h.j2", "mnv2_weights.c": "model/mnv2_weights.c.j2",
        "Makefile": "build/Makefile.j2", "CMakeLists.txt": "build/CMakeLists.txt.j2",
    }
    if kernels == "generated":
        rendered |= {"mnv2_kernels.c": "gen/mnv2_kernels.c.j2",
                     "mnv2_kernels.h": "gen/mnv2_kernels.h.j2"}
    texts = {name: env.get_template(template).render(**common)
             for name, template in rendered.items()}
    report_context = {**common, **_estimates(plan, target, kernels, report)}
    texts["REPORT.md"] = _render_report(report_context, None)
    texts["plan.json"] = json.dumps(
        {**report, "target": target.name, "kernels": kernels, "const_bytes": pool.total_bytes},
        indent=2) + "\n"
    for name, text in texts.items():
        check_generated_text(name, text)
        (out_dir / name).write_text(text)
    runtime = GENERATED_RUNTIME_FILES if kernels == "generated" else RUNTIME_FILES
    for name in runtime:
        shutil.copyfile(templates_dir() / "runtime" / name, out_dir / name)
    renamer = apply_prefix(out_dir, options.prefix,
                           (provenance, cmsis_nn_path, *options.free_texts))
    files = sorted(renamer.file_name(p.name) for p in out_dir.iterdir() if p.is_file())
    return Generated(tuple(files), pool.total_bytes, report,
                     tuple(map(renamer.file_name, library_sources(kernels))), renamer,
                     report_context)


def _estimates(plan: Plan, target: Target, kernels: str, report: dict) -> dict:
    """Return REPORT.md's step rows with the calibrated instruction estimate of each step
    (None without a calibration for the target and kernels) and the total."""
    calib = calibration(target.name, kernels)
    rows = []
    for u, up in zip(report["units"], plan.units, strict=True):
        rows.append({**u, "name": comment_text(u["name"]),
                     "chunking": (f"R={u['chunking']['rows']} G={u['chunking']['groups']}"
                                  if u["chunking"] else "-"),
                     "in_place": "yes" if u["in_place"] else "",
                     "instructions": (f"{calib.instructions_for(step_features(plan, up)):,}"
                                      if calib else "")})
    total = calib.instructions_for(total_features(plan)) if calib else None
    return {"units": rows, "estimate": None if calib is None else {
        "total": f"{total:,}", "error_pct": calib.fit_error_pct,
        "borrowed": calib.coefficients_from or ""}}


def _render_report(context: dict, footprint: Footprint | None, why_not: str = "") -> str:
    env = _environment()
    return env.get_template("build/REPORT.md.j2").render(
        **context, footprint=footprint, why_not=why_not or "the build's compile check "
        "did not run (the target's compiler is not installed)")


def write_report(out_dir: Path, generated: Generated, footprint: Footprint | None,
                 why_not: str = "") -> None:
    """Rewrite REPORT.md of a generated library with the measured footprint (sizes and
    stack of the compile check), or `why_not` when there is none."""
    text = generated.renamer.build_file(
        _render_report(generated.report_context, footprint, why_not))
    check_generated_text("REPORT.md", text)
    (out_dir / generated.renamer.file_name("REPORT.md")).write_text(text)


def apply_prefix(out_dir: Path, prefix: str, protected: tuple[str, ...] = ()) -> Renamer:
    """Rename the default prefix `mnv2` to `prefix` in every file of `out_dir` and in the
    names of its `mnv2_*` files (see mnv2gen.codegen.prefix); return the Renamer, which
    knows the library's identifiers. `protected` texts (provenance, user paths) are kept
    verbatim. Every file written into `out_dir` before this call is covered."""
    names = sorted(p.name for p in out_dir.iterdir() if p.is_file())
    sources = {n: (out_dir / n).read_text() for n in names if n.endswith((".c", ".h"))}
    identifiers = set().union(*map(code_identifiers, sources.values())) if prefix != "mnv2" \
        else set()
    renamer = Renamer(prefix, identifiers, names, protected)
    if renamer.identity:
        return renamer
    for name in names:
        path = out_dir / name
        if name in sources:
            text = renamer.library_source(sources[name])
        elif name in BUILD_FILES:
            text = renamer.build_file(path.read_text())
        else:
            continue
        renamed = out_dir / renamer.file_name(name)
        renamed.write_text(text)
        if renamed != path:
            path.unlink()
    return renamer
