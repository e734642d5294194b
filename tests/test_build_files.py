"""The generated Makefile and CMakeLists.txt work as users type them: plain `make` and
`cmake` use the target's compiler, CFLAGS overrides keep the optimisation and section flags,
no path of the build machine is written, and Make and CMake optimise alike."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mnv2gen.codegen.emit import library_sources
from mnv2gen.codegen.options import LibraryOptions
from mnv2gen.pipeline import compile_graph, write_library
from mnv2gen.toolchain import missing_tools
from mnv2gen.toolchain.build import OPT_FLAGS
from mnv2gen.zoo import synthesize

ARM_MACHINE = 40  # ELF e_machine of 32-bit Arm objects
CMSIS_NN = os.environ.get("CMSIS_NN_PATH", "")


def _tools(target: str, *programs: str):
    missing = missing_tools(target) + [p for p in programs if shutil.which(p) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (apt-get "
                              "install gcc-arm-none-eabi libnewlib-arm-none-eabi make cmake)")


@pytest.fixture(scope="module")
def graph():
    return synthesize("mobilenet-v2", 0.35, 32, 4, seed=0)


def _library(graph, tmp_path: Path, target: str, kernels: str = "portable") -> Path:
    out = tmp_path / f"{target}-{kernels}"
    write_library(compile_graph(graph, target, kernels, CMSIS_NN or None), out)
    return out


def _clean_env(**extra) -> dict:
    """The environment of a user who types `make` or `cmake`: no CC, CFLAGS, AR or paths."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CC", "CFLAGS", "AR", "CPPFLAGS", "CMSIS_NN_PATH", "MAKEFLAGS")}
    return env | extra


def _run(cmd, cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _machine(obj: Path) -> int:
    header = obj.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", obj
    return int.from_bytes(header[18:20], "little")


def _check_objects(objects: list[Path], target: str) -> None:
    assert objects
    for obj in objects:
        assert (_machine(obj) == ARM_MACHINE) == (target != "host"), obj


@pytest.mark.parametrize("target", [pytest.param("cortex-m4", marks=_tools("cortex-m4", "make")),
                                    pytest.param("host", marks=_tools("host", "make"))])
def test_plain_make_builds_the_library_with_the_targets_compiler(graph, tmp_path, target):
    lib = _library(graph, tmp_path, target)
    done = _run(["make"], lib, _clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert (lib / "libmnv2.a").stat().st_size > 0
    _check_objects(sorted((lib / "build").glob("*.o")), target)
    compiler = "arm-none-eabi-gcc" if target != "host" else "gcc"
    assert done.stdout.splitlines()[0].startswith(f"{compiler} ")


@_tools("host", "make")
def test_cflags_overrides_keep_optimisation_and_sections(graph, tmp_path):
    lib = _library(graph, tmp_path, "host")
    done = _run(["make", "-B", "-n", "CFLAGS=-g", "EXTRA_CFLAGS=-DEXTRA_ONE",
                 "CPPFLAGS=-DPRE_ONE"], lib, _clean_env())
    assert done.returncode == 0, done.stderr
    compiles = [line for line in done.stdout.splitlines() if " -c " in line]
    assert len(compiles) == len(library_sources("portable"))
    for line in compiles:
        assert " ".join(OPT_FLAGS) in line and " -g " in line
        assert "-DEXTRA_ONE" in line and "-DPRE_ONE" in line and "-Wall" not in line


@pytest.mark.parametrize("target", [pytest.param("cortex-m4", marks=_tools("cortex-m4", "cmake",
                                                                           "make")),
                                    pytest.param("host", marks=_tools("host", "cmake", "make"))])
def test_plain_cmake_builds_the_library(graph, tmp_path, target):
    lib = _library(graph, tmp_path, target)
    build = tmp_path / "cmake-build"
    env = _clean_env()
    done = _run(["cmake", "-S", str(lib), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                lib, env)
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run(["cmake", "--build", str(build), "--verbose"], lib, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (build / "libmnv2.a").stat().st_size > 0
    _check_objects(sorted(p for p in build.rglob("mnv2_*")
                          if re.fullmatch(r"mnv2_\w+\.c\.o(bj)?", p.name)), target)
    compiles = [line for line in done.stdout.splitlines() if " -c " in line]
    assert compiles and all(line.split(" -O3 ")[-1].find(" ".join(OPT_FLAGS)) >= 0
                            for line in compiles)


@_tools("host", "make")
def test_prefixed_library_builds_with_plain_make_and_is_rebuilt_in_place(graph, tmp_path):
    compiled = compile_graph(graph, "host", "portable", None)
    out = tmp_path / "cat"
    write_library(compiled, out, options=LibraryOptions(prefix="cat"))
    done = _run(["make"], out, _clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "libcat.a").stat().st_size > 0 and (out / "build" / "cat_model.o").exists()
    # make's products under the prefix are not foreign: a second build replaces the sources
    write_library(compiled, out, options=LibraryOptions(prefix="cat"))
    assert (out / "libcat.a").exists() and not (out / "libmnv2.a").exists()


def test_make_and_cmake_use_the_same_optimisation_flags(graph, tmp_path):
    lib = _library(graph, tmp_path, "cortex-m7")
    make = re.search(r"^MNV2_OPT_FLAGS := (.*)$", (lib / "Makefile").read_text(), re.M)
    cmake = re.search(r"^target_compile_options\(mnv2 PRIVATE (.*)\)$",
                      (lib / "CMakeLists.txt").read_text(), re.M)
    assert make.group(1) == cmake.group(1) == " ".join(OPT_FLAGS)


def test_no_path_of_the_build_machine_in_generated_files(graph, tmp_path):
    kernels = "cmsis-nn" if CMSIS_NN else "portable"
    lib = _library(graph, tmp_path, "cortex-m4", kernels)
    home = str(Path.home())
    for path in lib.iterdir():
        if path.is_file():
            text = path.read_text(errors="replace")
            for needle in filter(None, (str(tmp_path), CMSIS_NN, home, os.getcwd())):
                assert needle not in text, (path.name, needle)


@_tools("host", "make", "cmake")
def test_cmsis_nn_without_its_path_fails_with_a_clear_message(graph, tmp_path):
    lib = _library(graph, tmp_path, "host")
    done = _run(["make", "KERNELS=cmsis-nn"], lib, _clean_env())
    assert done.returncode != 0 and "KERNELS=cmsis-nn needs CMSIS_NN_PATH" in done.stderr
    done = _run(["cmake", "-S", str(lib), "-B", str(tmp_path / "b"), "-DMNV2_KERNELS=cmsis-nn"],
                lib, _clean_env())
    assert done.returncode != 0 and "MNV2_KERNELS=cmsis-nn needs CMSIS_NN_PATH" in done.stderr


@pytest.mark.skipif(not CMSIS_NN, reason="CMSIS_NN_PATH is not set (CMSIS-NN v7 checkout)")
@pytest.mark.parametrize("tool", [pytest.param("make", marks=_tools("cortex-m4", "make")),
                                  pytest.param("cmake", marks=_tools("cortex-m4", "cmake",
                                                                     "make"))])
def test_cmsis_nn_library_builds_with_the_path_from_the_environment(graph, tmp_path, tool):
    lib = _library(graph, tmp_path, "cortex-m4", "cmsis-nn")
    env = _clean_env(CMSIS_NN_PATH=CMSIS_NN)
    if tool == "make":
        done = _run(["make", "-j2"], lib, env)
        archive = lib / "libmnv2.a"
    else:
        build = tmp_path / "b"
        done = _run(["cmake", "-S", str(lib), "-B", str(build)], lib, env)
        assert done.returncode == 0, done.stdout + done.stderr
        done = _run(["cmake", "--build", str(build), "-j2"], lib, env)
        archive = build / "libmnv2.a"
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert archive.stat().st_size > 100_000  # the CMSIS-NN kernels are in it
