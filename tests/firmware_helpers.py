"""Helpers for the embedding tests: two generated libraries (cat_, dog_) built, linked into
one application (tests/firmware/two_models.c) and checked against the NumPy reference."""

from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
from pathlib import Path

from codegen_helpers import logits_graph

from mnv2gen.codegen.options import LibraryOptions
from mnv2gen.inputs import random_inputs
from mnv2gen.pipeline import compile_graph, write_library
from mnv2gen.toolchain import load_target, run_elf
from mnv2gen.toolchain.build import harness_dir
from mnv2gen.verify import reference_io
from mnv2gen.zoo import synthesize

FIRMWARE = Path(__file__).parent / "firmware"
#: The warnings a firmware engineer builds with (issue 14); the libraries must be clean.
STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wcast-align",
                "-Wstrict-prototypes", "-Werror")
_RESULT = re.compile(r"^(cat|dog) (\d) (-?\d+) ([0-9a-f]*)$", re.M)


def two_graphs():
    """Return {"cat": MobileNetV2 0.35/32, "dog": MobileNetV1 0.25/32}, logits outputs."""
    return {"cat": logits_graph(synthesize("mobilenet-v2", 0.35, 32, 4, seed=0)),
            "dog": logits_graph(synthesize("mobilenet-v1", 0.25, 32, 3, seed=1))}


def build_two(graphs, target: str, out: Path, options: dict[str, dict],
              kernels: str = "portable") -> dict:
    """Generate both libraries under out/<name> with `options[name]` (LibraryOptions
    fields besides the prefix); write two inputs per model and out/inputs.h. Return per
    name {"dir", "generated", "expected": [output bytes per input]}."""
    libs, defines = {}, []
    for name, graph in graphs.items():
        compiled = compile_graph(graph, target, kernels=kernels)
        generated = write_library(compiled, out / name, compile_it=False,
                                  options=LibraryOptions(name, **options.get(name, {})))
        expected = []
        for i in range(2):
            device_in, device_out = reference_io(compiled, random_inputs(graph, 10 + i))
            path = (out / f"{name}_input_{i}.bin").resolve()
            path.write_bytes(device_in)
            defines.append(f"#define {name.upper()}_INPUT_{i} {json.dumps(str(path))}\n")
            expected.append(device_out)
        libs[name] = {"dir": out / name, "generated": generated, "expected": expected}
    (out / "inputs.h").write_text("".join(defines))
    return libs


def library_sources(libs) -> list[Path]:
    """Return every library's C files to compile."""
    return [lib["dir"] / s for lib in libs.values() for s in lib["generated"].sources]


def app_sources() -> list[Path]:
    """Return the application's C files (main and the file reader of the harness)."""
    return [FIRMWARE / "two_models.c", harness_dir() / "mnv2_file.c"]


def includes(libs, out: Path) -> list[str]:
    """Return -I flags for the libraries, inputs.h and the harness file reader."""
    return [f"-I{d}" for d in [*(lib["dir"] for lib in libs.values()), out, harness_dir()]]


def check_outputs(stdout: str, libs) -> None:
    """Assert every model's two outputs were printed with status 0 and equal the
    reference bit for bit, and that the program's own checks passed."""
    assert "checks failed: 0" in stdout, stdout
    got = {(m[1], int(m[2])): (int(m[3]), bytes.fromhex(m[4])) for m in _RESULT.finditer(stdout)}
    for name, lib in libs.items():
        for i, want in enumerate(lib["expected"]):
            assert got[(name, i)] == (0, want), (name, i, stdout)


def compile_objects(cc: str, flags: list[str], sources: list[Path], out: Path) -> list[Path]:
    """Compile each source to out/<n>_<stem>.o (no warning allowed); return the objects."""
    out.mkdir(parents=True, exist_ok=True)
    objects = [out / f"{i:02d}_{src.stem}.o" for i, src in enumerate(sources)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda job: subprocess.run(
            [cc, *flags, "-c", str(job[0]), "-o", str(job[1])], capture_output=True, text=True),
            zip(sources, objects, strict=True))
        for src, done in zip(sources, runs, strict=True):
            assert done.returncode == 0 and not done.stderr, f"{src.name}: {done.stderr}"
    return objects


def defined_globals(nm: str, paths: list[Path]) -> list[str]:
    """Return the external symbols the objects or archives define (nm -g --defined-only)."""
    done = subprocess.run([nm, "-g", "--defined-only", "-P", *map(str, paths)],
                          capture_output=True, text=True, check=True)
    return [line.split()[0] for line in done.stdout.splitlines()
            if len(line.split()) >= 2 and not line.endswith(":") and line.split()[1] != "?"]


def symbol_addresses(nm: str, elf: Path) -> dict[str, int]:
    """Return symbol -> address of a linked program (local symbols included)."""
    done = subprocess.run([nm, "-P", str(elf)], capture_output=True, text=True, check=True)
    out = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and re.fullmatch(r"[0-9a-fA-F]+", parts[2]):
            out[parts[0]] = int(parts[2], 16)
    return out


def section_headers(objdump: str, elf: Path) -> dict[str, tuple[int, int]]:
    """Return output section -> (address, size) from objdump -h."""
    done = subprocess.run([objdump, "-h", str(elf)], capture_output=True, text=True, check=True)
    rows = re.findall(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)", done.stdout, re.M)
    return {name: (int(vma, 16), int(size, 16)) for name, size, vma in rows}


def link_firmware(libs, out: Path, script: str, target_name: str = "cortex-m4") -> tuple[Path, str]:
    """Compile the libraries (strict warnings) and the application with the firmware's own
    startup, link them with `script` (--orphan-handling=warn); return (elf, linker stderr)."""
    target = load_target(target_name)
    flags = [*target.machine_flags, "-O2", "-ffunction-sections", "-fdata-sections",
             *includes(libs, out)]
    objects = compile_objects("arm-none-eabi-gcc", [*flags, *STRICT_FLAGS],
                              library_sources(libs), out / "obj")
    objects += compile_objects("arm-none-eabi-gcc", flags,
                               [*app_sources(), FIRMWARE / "startup.c"], out / "app_obj")
    (out / "firmware.ld").write_text(script)
    elf = out / "firmware.elf"
    done = subprocess.run(["arm-none-eabi-gcc", *target.machine_flags, "-nostartfiles",
                           "--specs=nano.specs", "--specs=rdimon.specs", "-Wl,--gc-sections",
                           "-Wl,--orphan-handling=warn", "-T", str(out / "firmware.ld"),
                           *map(str, objects), "-o", str(elf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return elf, done.stderr


#: Sections the linker itself synthesises (stubs, IFUNC tables: empty here) and newlib's
#: debug information: orphans of every CubeMX-style script, not of the generated code.
_LINKER_SYNTHESISED = (".iplt", ".igot.plt", ".rel.iplt", ".v4_bx", ".vfp11_veneer",
                       ".glue_7", ".glue_7t")
_ORPHAN = re.compile(r"orphan section `([^']+)' from `([^']+)'")


def code_orphans(linker_stderr: str) -> list[tuple[str, str]]:
    """Return (section, input) of every orphan ld reported (--orphan-handling=warn) other
    than linker-synthesised sections and debug information."""
    return sorted({(section, source) for section, source in _ORPHAN.findall(linker_stderr)
                   if section not in _LINKER_SYNTHESISED and not section.startswith(".debug_")})


def run_firmware(elf: Path, target_name: str = "cortex-m4") -> str:
    """Run the program in QEMU; return its output (asserting exit status 0)."""
    result = run_elf(target_name, elf, timeout_s=120, icount=False)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout
