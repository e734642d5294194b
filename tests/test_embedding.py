"""Two generated libraries (cat_, dog_) in one program: on the host (objects, Make archives,
CMake add_subdirectory and installed packages) and on a Cortex-M4 under QEMU with the
firmware's own startup and linker scripts (CubeMX style; custom QSPI/DTCM sections).
Outputs are compared with the NumPy reference bit for bit; the arena modes and
cat_set_arena's refusals are checked by the program itself (tests/firmware/two_models.c)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from codegen_helpers import need_toolchain
from firmware_helpers import (
    FIRMWARE,
    STRICT_FLAGS,
    app_sources,
    build_two,
    check_outputs,
    code_orphans,
    compile_objects,
    defined_globals,
    includes,
    library_sources,
    link_firmware,
    run_firmware,
    section_headers,
    symbol_addresses,
    two_graphs,
)

FLASH, RAM = (0x00000000, 1024 * 1024), (0x20000000, 128 * 1024)
QSPI, DTCM = (0x00200000, 2048 * 1024), (0x21000000, 64 * 1024)
#: What a firmware engineer adds to a CubeMX script for QSPI weights and a DTCM arena.
CUSTOM_REGIONS = """\
  QSPI  (rx)  : ORIGIN = 0x00200000, LENGTH = 2048K
  DTCM  (xrw) : ORIGIN = 0x21000000, LENGTH = 64K
"""
CUSTOM_SECTIONS = """\
  .qspi :
  {
    . = ALIGN(16);
    *(.qspi_weights)
  } >QSPI

  .dtcm (NOLOAD) :
  {
    . = ALIGN(16);
    *(.dtcm_arena)
  } >DTCM

"""


@pytest.fixture(scope="module")
def graphs():
    """The two models: MobileNetV2 0.35/32 (cat) and MobileNetV1 0.25/32 (dog)."""
    return two_graphs()


def _inside(address: int, region: tuple[int, int]) -> bool:
    return region[0] <= address < region[0] + region[1]


def _weights_symbols(lib) -> list[str]:
    header = next(lib["dir"].glob("*_weights.h")).read_text()
    return re.findall(r"^extern const \w+ (\w+)\[", header, re.M)


@pytest.fixture(scope="module")
def host_libs(graphs, tmp_path_factory):
    """Both libraries for the host: cat hands its arena over at run time, dog's arena is
    the application's (external); the static mode is the QEMU tests' default."""
    need_toolchain("host")
    out = tmp_path_factory.mktemp("host")
    return out, build_two(graphs, "host", out, {"cat": {"arena": "runtime"},
                                                "dog": {"arena": "external"}})


def _run(exe) -> str:
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_two_models_link_into_one_host_program(host_libs, tmp_path):
    out, libs = host_libs
    objects = compile_objects("gcc", [*STRICT_FLAGS, "-O2", *includes(libs, out)],
                              library_sources(libs), tmp_path / "obj")
    symbols = defined_globals("nm", objects)
    assert [s for s in symbols if not s.startswith(("cat_", "dog_"))] == []
    assert {"cat_invoke", "dog_invoke", "cat_set_arena"} <= set(symbols)
    objects += compile_objects("gcc", ["-O2", *includes(libs, out)], app_sources(),
                               tmp_path / "app_obj")
    exe = tmp_path / "app"
    done = subprocess.run(["gcc", *map(str, objects), "-o", str(exe)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr  # no duplicate symbol between the two
    check_outputs(_run(exe), libs)


def test_two_make_archives_link_into_one_host_program(host_libs, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("needs make (apt-get install make)")
    out, libs = host_libs
    archives = []
    for name, lib in libs.items():
        done = subprocess.run(["make", "-s", "CC=gcc", "AR=ar", f"BUILD={tmp_path / name}"],
                              cwd=lib["dir"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        archives.append(lib["dir"] / f"lib{name}.a")
    symbols = defined_globals("nm", archives)
    assert symbols and [s for s in symbols if not s.startswith(("cat_", "dog_"))] == []
    exe = tmp_path / "app"
    done = subprocess.run(["gcc", "-O2", *includes(libs, out), *map(str, app_sources()),
                           *map(str, archives), "-o", str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    check_outputs(_run(exe), libs)


def _cmake(*args, cwd) -> None:
    done = subprocess.run(["cmake", *map(str, args)], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_cmake_add_subdirectory_and_an_installed_package_in_one_project(host_libs, tmp_path):
    """dog is built and installed as a CMake package (find_package(dog), dog::dog), cat is
    added with add_subdirectory (cat::cat): both ways, two models, one program."""
    if shutil.which("cmake") is None:
        pytest.skip("needs cmake (apt-get install cmake)")
    out, libs = host_libs
    installed = tmp_path / "installed"
    _cmake("-S", libs["dog"]["dir"], "-B", tmp_path / "dog-build", cwd=tmp_path)
    _cmake("--build", tmp_path / "dog-build", cwd=tmp_path)
    _cmake("--install", tmp_path / "dog-build", "--prefix", installed, cwd=tmp_path)
    assert (installed / "include" / "dog" / "dog_model.h").is_file()
    assert (installed / "lib" / "libdog.a").is_file()
    harness = app_sources()[1].parent
    project = tmp_path / "project"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(app C)\n"
        f"add_subdirectory({libs['cat']['dir']} cat)\nfind_package(dog REQUIRED)\n"
        f"add_executable(app {FIRMWARE / 'two_models.c'} {harness / 'mnv2_file.c'})\n"
        f"target_include_directories(app PRIVATE {out} {harness})\n"
        "target_link_libraries(app PRIVATE cat::cat dog::dog)\n")
    _cmake("-S", project, "-B", project / "build", f"-DCMAKE_PREFIX_PATH={installed}",
           cwd=project)
    _cmake("--build", project / "build", cwd=project)
    check_outputs(_run(project / "build" / "app"), libs)


@pytest.mark.qemu
def test_two_models_in_one_cortex_m4_firmware_with_a_cubemx_linker_script(graphs, tmp_path):
    """Default sections: weights under .rodata (flash), static arena under .bss (RAM), no
    orphan section, with a linker script that knows nothing about mnv2gen."""
    need_toolchain("cortex-m4")
    libs = build_two(graphs, "cortex-m4", tmp_path, {"cat": {"arena": "runtime"}})
    elf, linker_messages = link_firmware(libs, tmp_path, (FIRMWARE / "cubemx.ld").read_text())
    assert code_orphans(linker_messages) == []
    assert "orphan section `.rodata" not in linker_messages
    addresses = symbol_addresses("arm-none-eabi-nm", elf)
    for name, lib in libs.items():
        weights = _weights_symbols(lib)
        assert weights and all(_inside(addresses[s], FLASH) for s in weights), name
    assert _inside(addresses["dog_arena"], RAM) and addresses["dog_arena"] % 16 == 0
    assert _inside(addresses["cat_buffer"], RAM)
    check_outputs(run_firmware(elf), libs)


@pytest.mark.qemu
def test_custom_sections_go_where_the_users_linker_script_puts_them(graphs, tmp_path):
    """--weights-section .qspi_weights / --arena-section .dtcm_arena for cat, placed by a
    CubeMX script with QSPI and DTCM regions added; dog keeps the defaults and its arena is
    the application's (external mode)."""
    need_toolchain("cortex-m4")
    libs = build_two(graphs, "cortex-m4", tmp_path, {
        "cat": {"weights_section": ".qspi_weights", "arena_section": ".dtcm_arena"},
        "dog": {"arena": "external"}})
    script = (FIRMWARE / "cubemx.ld").read_text()
    script = script.replace("  RAM   (xrw) : ORIGIN = 0x20000000, LENGTH = 128K\n",
                            "  RAM   (xrw) : ORIGIN = 0x20000000, LENGTH = 128K\n"
                            + CUSTOM_REGIONS)
    script = script.replace("  .rodata :\n", CUSTOM_SECTIONS + "  .rodata :\n", 1)
    elf, linker_messages = link_firmware(libs, tmp_path, script)
    assert code_orphans(linker_messages) == []
    sections = section_headers("arm-none-eabi-objdump", elf)
    cat = libs["cat"]["generated"]
    assert sections[".qspi"][0] == QSPI[0] and sections[".qspi"][1] >= cat.const_bytes
    assert sections[".dtcm"][0] == DTCM[0]
    assert sections[".dtcm"][1] == cat.report["peak_bytes"]
    addresses = symbol_addresses("arm-none-eabi-nm", elf)
    assert all(_inside(addresses[s], QSPI) for s in _weights_symbols(libs["cat"]))
    assert all(_inside(addresses[s], FLASH) for s in _weights_symbols(libs["dog"]))
    assert addresses["cat_arena"] == DTCM[0]
    assert _inside(addresses["dog_arena"], RAM)
    check_outputs(run_firmware(elf), libs)
