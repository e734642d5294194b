"""The MCU catalogue (targets/mcu_catalogue.toml) and which parts a model fits."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mnv2gen.errors import MnvError
from mnv2gen.toolchain.targets import package_dir

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

FILE = "mcu_catalogue.toml"
DEFAULT_RAM_ALLOWANCE = 8 * 1024
_KEYS = {"name", "vendor", "variant", "core", "clock_mhz", "target", "flash_bytes",
         "flash_kind", "sram", "source", "note", "calibration_note"}


@dataclass(frozen=True)
class SramBlock:
    """One SRAM block of a part."""

    name: str
    origin: int
    size_bytes: int


@dataclass(frozen=True)
class Part:
    """One microcontroller of the catalogue."""

    name: str
    vendor: str
    variant: str
    core: str
    clock_mhz: float
    target: str
    flash_bytes: int
    flash_kind: str
    sram: tuple[SramBlock, ...]
    source: str
    note: str
    calibration_note: str = ""

    @property
    def sram_bytes(self) -> int:
        """Return the total SRAM of all blocks."""
        return sum(b.size_bytes for b in self.sram)

    def regions(self) -> list[tuple[str, int]]:
        """Return the contiguous SRAM regions as (names joined by '+', bytes), largest
        first: blocks whose address ranges touch are merged."""
        merged: list[list] = []
        for b in sorted(self.sram, key=lambda b: b.origin):
            if merged and merged[-1][1] + merged[-1][2] == b.origin:
                merged[-1][0] += f"+{b.name}"
                merged[-1][2] += b.size_bytes
            else:
                merged.append([b.name, b.origin, b.size_bytes])
        return sorted(((n, size) for n, _, size in merged), key=lambda r: -r[1])

    @property
    def largest_region(self) -> tuple[str, int]:
        """Return (names, bytes) of the largest contiguous SRAM region."""
        return self.regions()[0]


@functools.cache
def load_catalogue() -> tuple[Part, ...]:
    """Return the parts of targets/mcu_catalogue.toml (MnvError if the file is invalid)."""
    source = package_dir("mnv2gen.targets", "targets") / FILE
    try:
        data = tomllib.loads(source.read_text())
        parts = []
        for entry in data["part"]:
            unknown = set(entry) - _KEYS
            if unknown:
                raise ValueError(f"{entry.get('name')}: unknown keys {sorted(unknown)}")
            blocks = tuple(SramBlock(b["name"], int(b["origin"]), int(b["size_bytes"]))
                           for b in entry["sram"])
            parts.append(Part(entry["name"], entry["vendor"], entry["variant"], entry["core"],
                              float(entry["clock_mhz"]), entry["target"],
                              int(entry["flash_bytes"]), entry["flash_kind"], blocks,
                              entry["source"], entry.get("note", ""),
                              entry.get("calibration_note", "")))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MnvError(f"targets/{FILE}: invalid catalogue: {exc}") from exc
    return tuple(parts)


def core_name(cpu: str) -> str:
    """Return a GCC -mcpu name as the catalogue spells cores (cortex-m0plus -> Cortex-M0+)."""
    return "Cortex-" + cpu.removeprefix("cortex-").upper().replace("PLUS", "+")


def borrows_calibration(part: Part, target_cpu: str) -> bool:
    """Return True when the part's core is not the core its target was calibrated on (an
    FPU variant, Cortex-M4F, counts as its core, Cortex-M4)."""
    return re.sub(r"(?<=\d)F$", "", part.core) != core_name(target_cpu)


def latency_caveats(part: Part, target_cpu: str) -> list[str]:
    """Return what makes this part's latency figure less certain than the global lower-bound
    note says: a calibration borrowed from another core, constants in external flash."""
    caveats = []
    if borrows_calibration(part, target_cpu):
        caveats.append(part.calibration_note or (
            f"{part.core} timed with the {part.target} calibration (a {core_name(target_cpu)}):"
            " no calibration was measured on this core"))
    if part.flash_kind == "external":
        caveats.append("the weights are read from external QSPI flash (execute in place): "
                       "its wait states are not in the lower bound")
    return caveats


@dataclass(frozen=True)
class Fit:
    """Whether one model fits one part, with the margins (negative: short by)."""

    part: Part
    ram_available_bytes: int
    layer_margin_bytes: int
    plan_margin_bytes: int
    flash_margin_bytes: int

    @property
    def verdict(self) -> str:
        """Return "fits" (even layer by layer), "plan-only" (only with mnv2gen's plan),
        "no-flash" (RAM fits, flash does not) or "no"."""
        if self.plan_margin_bytes < 0:
            return "no"
        if self.flash_margin_bytes < 0:
            return "no-flash"
        return "fits" if self.layer_margin_bytes >= 0 else "plan-only"


def fit(part: Part, layer_bytes: int, plan_bytes: int, flash_bytes: int,
        ram_allowance: int = DEFAULT_RAM_ALLOWANCE) -> Fit:
    """Return how an arena (layer by layer and planned) and the flash image fit `part`:
    RAM against its largest contiguous SRAM region minus `ram_allowance` (stack and
    application), flash against its flash size."""
    available = part.largest_region[1] - ram_allowance
    return Fit(part, available, available - layer_bytes, available - plan_bytes,
               part.flash_bytes - flash_bytes)
