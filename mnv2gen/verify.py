"""`mnv2gen verify`: build the generated C with a harness, run it (QEMU or host) on N
inputs and compare every output byte with the NumPy reference."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnv2gen import __version__
from mnv2gen.codegen.emit import RUNTIME_FILES, _environment, templates_dir
from mnv2gen.codegen.options import LibraryOptions
from mnv2gen.codegen.text import c_string, check_generated_text
from mnv2gen.errors import MnvError
from mnv2gen.frontend.validate import check_reference_work
from mnv2gen.inputs import random_inputs
from mnv2gen.pipeline import Compiled, write_library
from mnv2gen.reference import run_all
from mnv2gen.stats import graph_macs
from mnv2gen.toolchain import FAULT_EXIT_CODE, build_elf, missing_tools, run_elf, size_report

_RESULT = re.compile(r"^MNV2 RESULT (\d+) (-?\d+) (\d+) (\d+)$")
_OUT = re.compile(r"^MNV2 OUT (\d+) ([0-9a-f]*)$")
_STACK = re.compile(r"^MNV2 STACK (\d+)$")
_PROFILE = re.compile(r"^MNV2 PROFILE 0 (\d+) (\d+) (\d+)$")


@dataclass(frozen=True)
class DeviceRun:
    """What the program printed: outputs, statuses and instruction counts per input."""

    outputs: list[bytes]
    statuses: list[int]
    instructions: list[int]
    stack_bytes: int | None
    profile: list[int]  # cumulative instructions after each step, first input only


def parse_run(stdout: str, count: int) -> DeviceRun:
    """Return the parsed harness output (raises MnvError if an input is missing)."""
    chunks: dict[int, list[str]] = {i: [] for i in range(count)}
    statuses, counts, stack, profile = {}, {}, None, {}
    for line in stdout.splitlines():
        if m := _RESULT.match(line):
            i = int(m[1])
            statuses[i], counts[i] = int(m[2]), (int(m[3]) << 32) | int(m[4])
        elif m := _OUT.match(line):
            chunks[int(m[1])].append(m[2])
        elif m := _STACK.match(line):
            stack = int(m[1])
        elif m := _PROFILE.match(line):
            profile[int(m[1])] = (int(m[2]) << 32) | int(m[3])
    if len(statuses) != count:
        raise MnvError(f"the program reported {len(statuses)} of {count} inferences",
                       "see its output with --keep")
    return DeviceRun([bytes.fromhex("".join(chunks[i])) for i in range(count)],
                     [statuses[i] for i in range(count)], [counts[i] for i in range(count)],
                     stack, [profile[k] for k in sorted(profile)])


def reference_io(compiled: Compiled, full_inputs: list[np.ndarray]) -> tuple[bytes, bytes]:
    """Return (device input bytes, expected device output bytes) for one model input: the
    outputs' bytes in order, concatenated (as the harness prints them)."""
    env = run_all(compiled.full, full_inputs)
    core = compiled.core
    outputs = [core.tensor(n).data if core.tensor(n).is_const else env[n]
               for n in core.outputs]
    return (env[core.inputs[0]].tobytes(),
            b"".join(np.ascontiguousarray(a).tobytes() for a in outputs))


#: instructions per second QEMU -icount runs at, conservatively (measured on a shared
#: 2-core machine: Cortex-M7 ~290 M/s, Cortex-M55 with Helium kernels ~31 M/s)
QEMU_INSTRUCTIONS_PER_S = 100e6
QEMU_MVE_INSTRUCTIONS_PER_S = 15e6
HOST_INSTRUCTIONS_PER_S = 1e9
TIMEOUT_CAP_S = 3600.0


def estimated_instructions(compiled: Compiled) -> int:
    """Return the instructions one inference is expected to take: the calibrated model of
    targets/calibration.toml when it covers the target, else 20 per MAC (the portable
    kernels' worst measured rate is ~15)."""
    from mnv2gen.estimate.calibration import calibration
    from mnv2gen.estimate.features import total_features

    calib = None if compiled.target.is_host else calibration(compiled.target.name,
                                                              compiled.kernels)
    if calib is not None:
        return calib.instructions_for(total_features(compiled.plan))
    return 20 * graph_macs(compiled.core) + 100_000


def default_timeout(compiled: Compiled, count: int) -> float:
    """Return the seconds `verify` lets the program run for `count` inferences: a minute
    to start plus three times the estimated instructions at a slow emulation rate, at
    most TIMEOUT_CAP_S (`verify --timeout` overrides)."""
    target = compiled.target
    rate = (HOST_INSTRUCTIONS_PER_S if target.is_host else
            QEMU_MVE_INSTRUCTIONS_PER_S if target.mve else QEMU_INSTRUCTIONS_PER_S)
    return min(TIMEOUT_CAP_S, 60.0 + 3.0 * count * estimated_instructions(compiled) / rate)


def stream_chunks(compiled: Compiled) -> tuple[int, ...]:
    """Return the rows per mnv2_feed_rows call verify tries for a streamed input (each a
    whole inference per input, the first one's instructions reported): the whole image at
    once, one row at a time, and an odd chunk that does not divide the height (like a
    DMA transfer); empty for a resident input."""
    if compiled.plan.input_mode != "streamed":
        return ()
    height = compiled.core.tensor(compiled.core.inputs[0]).shape[1]
    odd = next((k for k in (7, 5, 3) if height % k), 2)
    return tuple(dict.fromkeys((height, 1, min(odd, height))))


def verify(compiled: Compiled, inputs: list[list[np.ndarray]], work_dir: Path | None = None,
           timeout_s: float | None = None, profile: bool = False,
           options: LibraryOptions | None = None) -> dict:
    """Build and run the model on `inputs` (each a list of full-model input arrays); return
    the verification report (DESIGN.md's `verify --json` keys and details).

    profile: also record the instructions of every plan step of the first inference
    (`steps` in the report; the hooks add a few instructions per step to the total).
    options: the library's prefix, arena mode and sections (the harness follows them: it
    defines the arena in the external mode and hands one over in the runtime mode).
    """
    options = options or LibraryOptions()
    target = compiled.target
    check_reference_work(compiled.full, compiled.full.name)
    missing = missing_tools(target)
    if missing:
        raise MnvError(f"verify on {target.name} needs {', '.join(missing)}",
                       "install with: apt-get install --no-install-recommends "
                       "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm")
    with tempfile.TemporaryDirectory(prefix="mnv2gen-verify-") as scratch:
        work = Path(work_dir) if work_dir else Path(scratch)
        lib = work / "lib"
        generated = write_library(compiled, lib, compile_it=False, options=options)
        renamer = generated.renamer
        expected, paths = [], []
        for i, model_inputs in enumerate(inputs):
            device_in, device_out = reference_io(compiled, model_inputs)
            name = f"input_{i}.bin"  # relative: the program runs in `work`
            (work / name).write_bytes(device_in)
            paths.append(name)
            expected.append(device_out)
        chunks = stream_chunks(compiled)
        main = _environment().get_template("harness/verify_main.c.j2").render(
            provenance=f"Generated by mnv2gen {__version__}: verification harness.",
            paths=[c_string(p) for p in paths], steps=len(compiled.plan.units),
            outputs=len(compiled.core.outputs), arena=options.arena, chunks=chunks)
        main = renamer.harness_source(main)
        check_generated_text("verify_main.c", main)
        (work / "verify_main.c").write_text(main)
        sources = [work / "verify_main.c", templates_dir() / "harness" / "mnv2_file.c",
                   *(lib / n for n in generated.sources)]
        includes = [lib]
        if compiled.kernels == "cmsis-nn":
            root = Path(compiled.cmsis_nn_path)
            sources += sorted(p for p in (root / "Source").rglob("*.c")
                              if "Bindings" not in p.parts
                              and not p.name.endswith(("_f16.c", "_f32.c")))
            includes.append(root / "Include")
        elf = build_elf(target, sources, includes, work / "build",
                        defines={renamer.identifier("MNV2_PROFILE"): None} if profile else None,
                        weights_sections=[options.weights],
                        arena_sections=[options.arena_placement])
        limit = timeout_s or default_timeout(compiled, len(inputs) * max(len(chunks), 1))
        result = run_elf(target, elf, limit, cwd=work)
        if result.timed_out:
            raise MnvError(f"{target.name}: the program did not finish within {limit:.0f} s",
                           "give more time with --timeout SECONDS, or rerun with --keep and "
                           "inspect it (a hang in generated code is a bug)")
        if result.exit_code == FAULT_EXIT_CODE:
            raise MnvError(f"{target.name}: the program faulted: {result.stderr.strip()}",
                           "a bug in generated code or an arena overrun; rerun with --keep")
        if result.exit_code != 0:
            raise MnvError(f"{target.name}: the program exited with {result.exit_code}: "
                           f"{(result.stdout + result.stderr).strip()[-300:]}")
        runs_per_input = max(len(chunks), 1)
        run = parse_run(result.stdout, len(inputs) * runs_per_input)
        sizes = size_report(target, elf)
    per_input = []
    for k, got in enumerate(run.outputs):
        want = expected[k // runs_per_input]
        diff = int(np.count_nonzero(np.frombuffer(got, np.uint8) != np.frombuffer(want, np.uint8))
                   ) if len(got) == len(want) else max(len(got), len(want))
        entry = {"index": k // runs_per_input, "mismatched_bytes": diff,
                 "status": run.statuses[k],
                 "instructions": run.instructions[k] if not target.is_host else None}
        if chunks:
            entry["rows_per_call"] = chunks[k % runs_per_input]
        per_input.append(entry)
    mismatched = sum(p["mismatched_bytes"] for p in per_input)
    failed = sum(p["status"] != 0 for p in per_input)
    return {
        "model": compiled.full.name, "target": target.name, "kernels": compiled.kernels,
        "kernel_set": compiled.plan.kernel_set,
        "bit_exact": mismatched == 0 and failed == 0, "mismatched_bytes": mismatched,
        "inputs": len(inputs), "output_bytes": len(expected[0]) if expected else 0,
        "instructions": None if target.is_host else run.instructions[0],
        "instructions_note": ("QEMU -icount instruction count of one inference (not cycles)"
                              if not target.is_host else "host run: no instruction count"),
        "input_mode": compiled.plan.input_mode,
        "rows_per_call": list(chunks) if chunks else None,
        "peak_bytes": compiled.plan.peak_bytes,
        "layer_by_layer_bytes": compiled.baseline.peak_bytes,
        "const_bytes": generated.const_bytes, "stack_bytes": run.stack_bytes,
        "elf_sizes": sizes, "per_input": per_input,
        "steps": _steps(compiled, run.profile) if profile and not target.is_host else None,
    }


def _steps(compiled: Compiled, cumulative: list[int]) -> list[dict]:
    """Return per plan step its unit name and the instructions it took."""
    previous, steps = 0, []
    for up, total in zip(compiled.plan.units, cumulative, strict=True):
        steps.append({"step": up.step, "name": up.name, "instructions": total - previous})
        previous = total
    return steps


def verification_inputs(compiled: Compiled, count: int, seed: int,
                        given: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Return the given inputs followed by seeded random ones, `count` in all (at least the
    given ones)."""
    randoms = [random_inputs(compiled.full, seed + i) for i in range(max(count - len(given), 0))]
    return [*given, *randoms]


__all__ = ["verify", "verification_inputs", "parse_run", "RUNTIME_FILES"]
