"""Target descriptions: one TOML file per target in package `mnv2gen.targets`."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from mnv2gen.errors import MnvError, quoted

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the API-compatible backport
    import tomli as tomllib

#: -icount shift used for every QEMU run: each instruction advances virtual time 2**shift ns.
ICOUNT_SHIFT = 0

_TOP_KEYS = {"name", "description", "toolchain", "cpu", "fpu", "float_abi", "dsp", "mve",
             "kernel_set", "extra_cflags", "qemu", "memory", "harness", "calibration"}
_KERNEL_SETS = {"cmsis-c", "cmsis-dsp", "cmsis-mve", "portable"}
_REGIONS = {"FLASH", "RAM", "WEIGHTS"}


@dataclass(frozen=True)
class MemoryRegion:
    """One linker memory region: FLASH (code, constants), RAM (data, stack) or WEIGHTS."""

    name: str
    label: str
    origin: int
    size_bytes: int


@dataclass(frozen=True)
class Target:
    """A build target as described by its TOML file."""

    name: str
    description: str
    toolchain: str  # "arm-none-eabi" or "host"
    kernel_set: str  # "cmsis-c", "cmsis-dsp", "cmsis-mve" or "portable"
    dsp: bool
    mve: bool
    cpu: str | None = None
    fpu: str | None = None
    float_abi: str | None = None
    qemu_machine: str | None = None
    systick_hz: int | None = None
    instructions_per_tick: float | None = None
    regions: tuple[MemoryRegion, ...] = ()
    extra_cflags: tuple[str, ...] = ()
    #: stack and heap of the verification harness when the target file sets them
    #: (small RAMs); None: the toolchain defaults
    harness_stack_bytes: int | None = None
    harness_heap_bytes: int | None = None
    #: extra QEMU arguments (only the calibration variant has any)
    qemu_args: tuple[str, ...] = ()
    #: [calibration] of the target file: QEMU arguments and larger FLASH/RAM sizes on the
    #: same emulated core, for benchmarks/calibrate.py; None when it has none
    calibration_memory: tuple[tuple[str, ...], int, int] | None = None

    @property
    def is_host(self) -> bool:
        """Return True for the native host target (no QEMU, no memory map)."""
        return self.toolchain == "host"

    def region(self, name: str) -> MemoryRegion | None:
        """Return the region called `name` (FLASH, RAM, WEIGHTS; any case) or None."""
        return next((r for r in self.regions if r.name == name.upper()), None)

    @property
    def ram_bytes(self) -> int | None:
        """Return the size of the RAM region in bytes (None for host)."""
        ram = self.region("RAM")
        return ram.size_bytes if ram else None

    @property
    def weights_region(self) -> MemoryRegion | None:
        """Return where `.weights` sections go: WEIGHTS if the target has it, else FLASH."""
        return self.region("WEIGHTS") or self.region("FLASH")

    @property
    def machine_flags(self) -> tuple[str, ...]:
        """Return the code generation flags (-mthumb, -mcpu, -mfpu, -mfloat-abi, extras)."""
        flags = [] if self.is_host else ["-mthumb", f"-mcpu={self.cpu}"]
        flags += [f"-mfpu={self.fpu}"] if self.fpu else []
        flags += [f"-mfloat-abi={self.float_abi}"] if self.float_abi else []
        return (*flags, *self.extra_cflags)

    def for_calibration(self) -> Target:
        """Return the target instruction counts are measured on (benchmarks/calibrate.py,
        estimate --measure): itself, or for a target whose file has a [calibration] table
        the same core and machine with that table's larger FLASH/RAM sizes and QEMU
        arguments (instruction counts do not depend on memory size; the real sizes stay
        what build and verify enforce)."""
        if self.calibration_memory is None:
            return self
        args, flash, ram = self.calibration_memory
        sizes = {"FLASH": flash, "RAM": ram}
        regions = tuple(dataclasses.replace(r, size_bytes=sizes.get(r.name, r.size_bytes),
                                            label=f"{r.label}, enlarged for calibration")
                        if r.name in sizes else r for r in self.regions)
        return dataclasses.replace(self, regions=regions, qemu_args=args,
                                   calibration_memory=None)


def package_dir(package: str, folder: str) -> Path:
    """Return the folder of package data `folder` (`templates` or `targets`): inside the
    installed package (a wheel puts it at mnv2gen/<folder>), else the checkout's top level."""
    installed = Path(__file__).resolve().parents[1] / folder
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / folder


def list_targets() -> list[str]:
    """Return the names of all shipped targets, sorted (other data files in targets/,
    such as the MCU catalogue, have no `toolchain` key)."""
    folder = package_dir("mnv2gen.targets", "targets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")
                  and "toolchain" in tomllib.loads(p.read_text()))


@functools.cache
def load_target(name: str) -> Target:
    """Return the Target described by targets/<name>.toml; MnvError if unknown or invalid."""
    available = list_targets()
    if name not in available:
        raise MnvError(f"unknown target {quoted(name)}; available targets: {', '.join(available)}",
                       hint="pass one of them with --target")
    source = package_dir("mnv2gen.targets", "targets") / f"{name}.toml"
    try:
        return _parse_target(tomllib.loads(source.read_text()), name)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise MnvError(f"targets/{name}.toml: invalid target file: {detail}") from exc


def as_target(target: Target | str) -> Target:
    """Return `target` itself, or the loaded target of that name."""
    return target if isinstance(target, Target) else load_target(target)


def _parse_target(data: dict, file_stem: str) -> Target:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    if data["name"] != file_stem:
        raise ValueError(f"name {data['name']!r} does not match the file name")
    if data["kernel_set"] not in _KERNEL_SETS:
        raise ValueError(f"kernel_set must be one of {sorted(_KERNEL_SETS)}")
    common = dict(name=data["name"], description=data["description"],
                  toolchain=data["toolchain"], kernel_set=data["kernel_set"],
                  dsp=bool(data["dsp"]), mve=bool(data["mve"]),
                  extra_cflags=tuple(data.get("extra_cflags", ())))
    if data["toolchain"] == "host":
        return Target(**common)
    if data["toolchain"] != "arm-none-eabi":
        raise ValueError("toolchain must be 'arm-none-eabi' or 'host'")
    qemu = data["qemu"]
    per_tick = float(qemu["instructions_per_tick"])
    if abs(per_tick - 1e9 / 2**ICOUNT_SHIFT / qemu["systick_hz"]) > 1e-6:
        raise ValueError("instructions_per_tick must equal 1e9 / systick_hz")
    regions = tuple(MemoryRegion(key.upper(), r["label"], int(r["origin"]), int(r["size_bytes"]))
                    for key, r in data["memory"].items())
    names = {r.name for r in regions}
    if names - _REGIONS or not {"FLASH", "RAM"} <= names:
        raise ValueError("memory must have flash and ram regions, and optionally weights")
    harness = data.get("harness", {})
    if set(harness) - {"stack_bytes", "heap_bytes"}:
        raise ValueError("[harness] takes stack_bytes and heap_bytes")
    calibration = data.get("calibration")
    if calibration is not None:
        calibration = (tuple(str(a) for a in calibration["qemu_args"]),
                       int(calibration["flash_bytes"]), int(calibration["ram_bytes"]))
    return Target(**common, cpu=data["cpu"], fpu=data.get("fpu"),
                  float_abi=data["float_abi"], qemu_machine=qemu["machine"],
                  systick_hz=int(qemu["systick_hz"]), instructions_per_tick=per_tick,
                  regions=regions, harness_stack_bytes=harness.get("stack_bytes"),
                  harness_heap_bytes=harness.get("heap_bytes"),
                  calibration_memory=calibration)
