"""`estimate`: every configuration on every target, and the parts it fits, as one report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnv2gen import __version__
from mnv2gen.errors import MnvError
from mnv2gen.estimate import catalogue as cat
from mnv2gen.estimate.calibration import calibrated_pairs, calibration
from mnv2gen.estimate.codesize import can_measure, measure_code_bytes
from mnv2gen.estimate.configs import Configuration
from mnv2gen.estimate.features import code_features, total_features
from mnv2gen.estimate.memory import Memory, plan_memory
from mnv2gen.estimate.timeline import memory_details
from mnv2gen.passes.integer_core import integer_core
from mnv2gen.toolchain import load_target

INSTRUCTIONS_NOTE = ("instruction counts, not cycles: 'measured' = QEMU -icount count of one "
                     "inference; 'estimate' = the calibrated model of targets/calibration.toml")
LATENCY_NOTE = ("latency_ms = instructions / clock: an optimistic lower bound (real cores "
                "need more than one cycle per instruction on average, plus wait states)")


@dataclass(frozen=True)
class Options:
    """How to estimate: targets, kernel backend, measurements, RAM allowance."""

    targets: tuple[str, ...]
    kernels: str | None = None  # None: backend_for's default per target
    cmsis_nn_path: str = ""
    measure: bool = False
    ram_allowance: int = cat.DEFAULT_RAM_ALLOWANCE
    code_table: bool = False  # take code bytes from the calibration table, do not build
    input_mode: str = "resident"  # the plan whose code, flash and instructions are given


def work_items(configs: list[Configuration], options: Options) -> int:
    """Return how many progress steps `estimate` reports (one per configuration and target)."""
    return len(configs) * len(options.targets)


def backend_for(target: str, kernels: str | None) -> str:
    """Return the kernel backend `estimate` prices on `target`: `kernels` when given, else
    generated (the build default) where targets/calibration.toml calibrates it, else
    portable."""
    if kernels is not None:
        return kernels
    return "generated" if calibration(target, "generated") is not None else "portable"


def _kernel_set(target, options: Options) -> str:
    kernels = backend_for(target.name, options.kernels)
    return kernels if kernels in ("portable", "generated") else target.kernel_set


def _can_build(target, options: Options) -> bool:
    return (not options.code_table and can_measure(target)
            and (backend_for(target.name, options.kernels) != "cmsis-nn"
                 or bool(options.cmsis_nn_path)))


def _measured_code(graph, memories: dict[str, Memory], targets: list, options: Options
                   ) -> dict[str, int]:
    """Return code bytes per target name for the targets this machine can build for."""
    code = {}
    for kernel_set, memory in memories.items():
        group = [t for t in targets if _kernel_set(t, options) == kernel_set
                 and _can_build(t, options)]
        if group:  # one kernel set is one backend
            code.update(measure_code_bytes(graph, memory.plan, memory.baseline, group,
                                           backend_for(group[0].name, options.kernels),
                                           options.cmsis_nn_path))
    return code


def _code(memory: Memory, measured: int | None, calib) -> tuple[int | None, str]:
    """Return (code bytes, how they were obtained)."""
    if measured is not None:
        return measured, "measured (arm-none-eabi-size)"
    if calib is None:
        return None, "unknown (not built, no calibration)"
    return (calib.code_bytes_for(code_features(memory.plan)),
            f"table (targets/calibration.toml, max error {calib.code_error_pct:g} %)")


def uncalibrated_note(target: str, kernels: str) -> str:
    """Return the one-line reason `target` has no instruction estimate with `kernels`:
    the targets calibrated for `kernels` and the backends calibrated for `target`."""
    pairs = calibrated_pairs()
    others = ", ".join(t for t, k in pairs if k == kernels) or "none"
    own = [k for t, k in pairs if t == target]
    instead = f"--kernels {' or '.join(own)}" if own else "another target"
    return (f"no calibration of the {kernels} kernels for {target} (calibrated for: "
            f"{others}): use --measure or {instead}")


def _instructions(memory: Memory, calib, target: str, kernels: str) -> dict:
    if calib is None:
        return {"instructions": None, "instructions_source": uncalibrated_note(target, kernels),
                "instructions_error_pct": None, "instructions_error_basis": None}
    error = calib.max_shared_error_pct
    return {"instructions": calib.instructions_for(total_features(memory.plan)),
            "instructions_source": "estimate",
            "instructions_error_pct": error if error is not None else calib.fit_error_pct,
            "instructions_error_basis": ("largest |error| on the shared models" if error
                                         is not None else "largest |error| on the "
                                         "calibration models")}


def _measure(config: Configuration, target: str, options: Options, cache: dict) -> dict:
    from mnv2gen.estimate.measure import measure

    if "graph" not in cache:
        cache["graph"] = config.load_for_measurement()
    # the parts of a small-RAM target (cortex-m0: a 16 KiB nRF51 for 264 KiB RP2040s) are
    # measured on its calibration variant: the same core with larger memories
    real = load_target(target)
    roomy = real.for_calibration()
    result = measure(cache["graph"], roomy, backend_for(target, options.kernels),
                     options.cmsis_nn_path or None,
                     input_mode=options.input_mode)
    if "error" in result:
        return {"error": result["error"]}
    note = result["note"] + ("" if roomy is real else f"; run on {target}'s QEMU machine with "
                             "enlarged memories (instruction counts do not depend on them)")
    return {"instructions": result["instructions"], "bit_exact": result["bit_exact"],
            "program_regions": result["elf_sizes"].get("regions"), "note": note}


def _target_entry(memory: Memory, code: int | None, target, options: Options, config,
                  cache) -> dict:
    kernels = backend_for(target.name, options.kernels)
    calib = calibration(target.name, kernels)
    code, code_source = _code(memory, code, calib)
    entry = {"target": target.name, "kernels": kernels, "kernel_set": memory.kernel_set,
             "layer_by_layer_bytes": memory.baseline.peak_bytes,
             "plan_bytes": memory.plan.peak_bytes,
             "lower_bound_bytes": memory.plan.lower_bound_bytes,
             "input_mode": memory.plan.input_mode,
             "resident_plan_bytes": _peak(memory.resident),
             "streamed_plan_bytes": _peak(memory.streamed),
             "streamed_lower_bound_bytes": (memory.streamed.lower_bound_bytes
                                            if memory.streamed else None),
             "const_bytes": memory.const_bytes, "code_bytes": code,
             "code_bytes_source": code_source,
             "flash_bytes": None if code is None else memory.const_bytes + code,
             **_instructions(memory, calib, target.name, kernels), "measured": None}
    if options.measure:
        entry["measured"] = _measure(config, target.name, options, cache)
    return entry


def _peak(plan) -> int | None:
    return plan.peak_bytes if plan is not None else None


def _streamed_verdict(part, entry: dict, flash: int, options: Options) -> tuple:
    """Return (margin, verdict) of the streamed plan on a part (None, "n/a" without one)."""
    if entry["streamed_plan_bytes"] is None:
        return None, "n/a"
    f = cat.fit(part, entry["layer_by_layer_bytes"], entry["streamed_plan_bytes"], flash,
                options.ram_allowance)
    verdict = "no" if f.plan_margin_bytes < 0 else (
        "no-flash" if f.flash_margin_bytes < 0 else "fits")
    return f.plan_margin_bytes, verdict


def _parts(entries: dict[str, dict], options: Options) -> list[dict]:
    """Return the catalogue parts whose target was estimated, with their fit."""
    rows = []
    for part in cat.load_catalogue():
        entry = entries.get(part.target)
        if entry is None:
            continue
        flash = entry["flash_bytes"] if entry["flash_bytes"] is not None else entry["const_bytes"]
        f = cat.fit(part, entry["layer_by_layer_bytes"],
                    entry["resident_plan_bytes"] or entry["plan_bytes"], flash,
                    options.ram_allowance)
        streamed_margin, streamed_fits = _streamed_verdict(part, entry, flash, options)
        measured = entry["measured"] or {}
        instructions = measured.get("instructions") or entry["instructions"]
        region, _ = part.largest_region
        cpu = load_target(part.target).cpu
        rows.append({
            "part": part.name, "target": part.target, "core": part.core,
            "clock_mhz": part.clock_mhz, "ram_region": region,
            "ram_available_bytes": f.ram_available_bytes,
            "layer_margin_bytes": f.layer_margin_bytes, "plan_margin_bytes": f.plan_margin_bytes,
            "flash_capacity_bytes": part.flash_bytes, "flash_kind": part.flash_kind,
            "flash_margin_bytes": f.flash_margin_bytes, "fits": f.verdict,
            "streamed_margin_bytes": streamed_margin, "fits_streamed": streamed_fits,
            "latency_ms": (round(instructions / (part.clock_mhz * 1e3), 2)
                           if instructions else None),
            "latency_source": ("measured" if measured.get("instructions") else "estimate")
            if instructions else None,
            "calibration_core": cat.core_name(cpu),
            "calibration_borrowed": cat.borrows_calibration(part, cpu),
            "latency_caveats": cat.latency_caveats(part, cpu), "note": part.note})
    return rows


def estimate_configuration(config: Configuration, options: Options,
                           step: Callable[[str], None] = lambda label: None) -> dict:
    """Return the report entry of one configuration on every target of `options`."""
    graph = config.load()
    core = integer_core(graph)
    targets = [load_target(name) for name in options.targets]
    memories: dict[str, Memory] = {}
    for target in targets:
        kernel_set = _kernel_set(target, options)
        if kernel_set not in memories:
            memories[kernel_set] = plan_memory(core, kernel_set, options.input_mode)
    code = _measured_code(graph, memories, targets, options)
    entries: dict[str, dict] = {}
    cache: dict = {}
    for target in targets:
        memory = memories[_kernel_set(target, options)]
        entries[target.name] = _target_entry(memory, code.get(target.name), target, options,
                                             config, cache)
        step(f"{config.name} on {target.name}")
    first = next(iter(memories.values()))
    parts = _parts(entries, options)
    return {**config.describe(), "sha256": graph.source_sha256 if config.model else None,
            "input_shape": list(core.tensor(core.inputs[0]).shape), "macs": first.macs,
            "memory": {k: memory_details(m) for k, m in memories.items()},
            "targets": list(entries.values()), "parts": parts,
            "fits": [p["part"] for p in parts if p["fits"] == "fits"],
            "fits_with_plan_only": [p["part"] for p in parts if p["fits"] == "plan-only"],
            "fits_streamed": [p["part"] for p in parts if p["fits_streamed"] == "fits"],
            "fits_only_streamed": [p["part"] for p in parts if p["fits_streamed"] == "fits"
                                   and p["fits"] not in ("fits", "plan-only")]}


def estimate(configs: list[Configuration], options: Options,
             step: Callable[[str], None] = lambda label: None) -> dict:
    """Return the whole estimate report (the `--json` document; README documents it)."""
    for name in options.targets:
        target = load_target(name)  # unknown targets fail before any work
        if target.is_host:
            raise MnvError(f"target {name} is the host: estimate is for Cortex-M targets")
    if options.kernels == "cmsis-nn" and options.cmsis_nn_path:
        if not (Path(options.cmsis_nn_path) / "Include" / "arm_nnfunctions.h").is_file():
            raise MnvError(f"{options.cmsis_nn_path}: not a CMSIS-NN checkout (no "
                           "Include/arm_nnfunctions.h)",
                           "point --cmsis-nn (or CMSIS_NN_PATH) at the folder holding "
                           "Include/ and Source/")
    if options.measure and options.kernels == "cmsis-nn" and not options.cmsis_nn_path:
        raise MnvError("--measure with --kernels cmsis-nn needs your CMSIS-NN checkout",
                       "pass --cmsis-nn PATH or set CMSIS_NN_PATH")
    return {"mnv2gen": __version__, "kernels": options.kernels or "default",
            "input_mode": options.input_mode,
            "targets": list(options.targets), "ram_allowance_bytes": options.ram_allowance,
            "instructions_note": INSTRUCTIONS_NOTE, "latency_note": LATENCY_NOTE,
            "configurations": [estimate_configuration(c, options, step) for c in configs]}
