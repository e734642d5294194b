"""Observability of a generated library (issue 14): the step table names the plan's
units, the weak yield hook runs once per band, the profiling hook once per step, and a
kernel failure returns the documented code naming its step. Host builds of a prefixed
library (cat_), compiled without a warning under the strict flags; the application is
tests/firmware/observe.c."""

from __future__ import annotations

import re
import subprocess

import pytest
from codegen_helpers import logits_graph, need_toolchain
from firmware_helpers import FIRMWARE, STRICT_FLAGS, compile_objects

from mnv2gen.codegen.options import LibraryOptions
from mnv2gen.inputs import random_inputs
from mnv2gen.pipeline import compile_graph, write_library
from mnv2gen.toolchain.build import harness_dir
from mnv2gen.verify import reference_io, verify
from mnv2gen.zoo import synthesize

STEP_ERROR_BASE = -1000


def _bands(unit: dict) -> int:
    if unit["kind"] == "segment":
        return unit["segment"]["row_steps"]
    return unit["chunking"]["bands"] if unit["chunking"] else 1


@pytest.fixture(scope="module", params=["resident", "streamed"])
def library(request, tmp_path_factory):
    """A cat_ library of MobileNetV2 0.35/32 (host), its objects and one input."""
    need_toolchain("host")
    out = tmp_path_factory.mktemp(request.param)
    graph = logits_graph(synthesize("mobilenet-v2", 0.35, 32, 4, seed=0))
    compiled = compile_graph(graph, "host", kernels="portable", input_mode=request.param)
    generated = write_library(compiled, out / "cat", compile_it=False,
                              options=LibraryOptions("cat"))
    device_in, expected = reference_io(compiled, random_inputs(graph, 3))
    (out / "input.bin").write_bytes(device_in)
    flags = ["-O2", f"-I{out / 'cat'}", f"-I{harness_dir()}"]
    objects = {}
    for profile in (False, True):
        defines = ["-DCAT_PROFILE"] if profile else []
        objects[profile] = compile_objects(
            "gcc", [*STRICT_FLAGS, *flags, *defines],
            [out / "cat" / s for s in generated.sources], out / f"obj{int(profile)}")
    return {"out": out, "flags": flags, "objects": objects, "expected": expected,
            "units": generated.report["units"], "header": (out / "cat" / "cat_model.h")}


def _run(library, name: str, defines: list[str] = (), link: list[str] = (),
         profile: bool = False) -> str:
    out = library["out"]
    app = compile_objects("gcc", [*library["flags"], *defines],
                          [FIRMWARE / "observe.c", harness_dir() / "mnv2_file.c"],
                          out / f"app_{name}")
    exe = out / name
    done = subprocess.run(["gcc", *map(str, library["objects"][profile] + app), *link,
                           "-o", str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    run = subprocess.run([str(exe), str(out / "input.bin")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _field(stdout: str, key: str) -> list[int]:
    return [int(v) for v in re.search(rf"^{key} (.*)$", stdout, re.M)[1].split()]


def test_step_names_and_yields_match_the_plan(library):
    stdout = _run(library, "observe")
    units = library["units"]
    steps = re.findall(r"^step (\d+) (\S+) (\d+) (\d+)$", stdout, re.M)
    assert [(int(k), n, int(b)) for k, n, b, _ in steps] == [
        (u["step"], u["name"], _bands(u)) for u in units]
    # the weak default is overridden: one call per band, in order, every band of every step
    assert [int(s) for *_, s in steps] == [_bands(u) for u in units]
    total = sum(_bands(u) for u in units)
    assert _field(stdout, "yields") == [total, 1]
    assert re.search(rf"#define CAT_BAND_COUNT {total}\n", library["header"].read_text())
    assert _field(stdout, "status") == [0, -1]
    assert bytes.fromhex(re.search(r"^out (\w*)$", stdout, re.M)[1]) == library["expected"]
    # names are the model file's operator indices: op<N>_<unit>, one numbering
    assert all(re.fullmatch(r"op\d+_[a-z_0-9]+", u["name"]) for u in units)


def test_the_profiling_hook_runs_once_per_step_in_order(library):
    stdout = _run(library, "profile", ["-DCAT_PROFILE"], profile=True)
    assert _field(stdout, "profile") == [len(library["units"]), 1]
    assert bytes.fromhex(re.search(r"^out (\w*)$", stdout, re.M)[1]) == library["expected"]


def test_a_kernel_failure_returns_the_code_of_its_step(library):
    fused = [u for u in library["units"] if u["kind"] == "fused"]
    assert len(fused) >= 2
    fail_at = _bands(fused[0]) + 1  # the first band of the second fused step
    stdout = _run(library, "fail", [f"-DFAIL_AT={fail_at}"], ["-Wl,--wrap=cat_fused_band"])
    step = fused[1]["step"]
    assert _field(stdout, "status") == [STEP_ERROR_BASE - step, step]
    header = library["header"].read_text()
    assert "#define CAT_STATUS_STEP_ERROR_BASE (-1000)" in header
    assert "-1000 - k       CAT_STATUS_STEP_ERROR(k)" in header
    # the steps after the failing one never ran
    seen = {int(k): int(s) for k, s in re.findall(r"^step (\d+) \S+ \d+ (\d+)$", stdout, re.M)}
    assert all(seen[k] == 0 for k in seen if k > step) and seen[step] == 1


def test_report_states_sizes_stack_and_the_instruction_estimate(tmp_path):
    need_toolchain("cortex-m4")
    graph = logits_graph(synthesize("mobilenet-v2", 0.35, 32, 4, seed=0))
    compiled = compile_graph(graph, "cortex-m4", kernels="portable")
    write_library(compiled, tmp_path / "cat", options=LibraryOptions("cat"))
    report = (tmp_path / "cat" / "REPORT.md").read_text()
    sizes = {k: int(v) for k, v in re.findall(
        r"^\| library (text|data|bss)\b[^|]*\| (\d+) \|$", report, re.M)}
    assert set(sizes) == {"text", "data", "bss"}
    assert sizes["text"] > compiled.plan.peak_bytes and sizes["bss"] == compiled.plan.peak_bytes
    stack = int(re.search(r"^\| stack, deepest call of the library's API \| (\d+) \|$",
                          report, re.M)[1])
    assert re.search(r"call graph: cat_run -> cat_run_steps -> ", report)
    estimate = int(re.search(r"^Instructions per inference \(estimate\): ([\d,]+),",
                             report, re.M)[1].replace(",", ""))
    rows = re.findall(r"^\| (\d+) \| (\S+) \(.*\| ([\d,]+) \|$", report, re.M)
    assert [n for _, n, _ in rows] == [u.name for u in compiled.plan.units]
    # the call graph bounds what the harness measures by painting the stack in QEMU, and
    # the estimate is within the calibration's error of the QEMU count
    measured = verify(compiled, [random_inputs(graph, 0)])
    assert measured["bit_exact"] and 0 < measured["stack_bytes"] <= stack
    assert abs(estimate - measured["instructions"]) < 0.1 * measured["instructions"]
