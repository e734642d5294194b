"""How a generated library embeds in a firmware: symbol prefix, arena ownership, sections.

`build --prefix NAME --arena static|external|runtime --weights-section S --arena-section S`
become one `LibraryOptions`, validated here before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mnv2gen.codegen.prefix import DEFAULT_PREFIX, validate_prefix
from mnv2gen.errors import MnvError

ARENA_MODES = ("static", "external", "runtime")
MAX_SECTION_CHARS = 64
_SECTION = re.compile(r"\.?[A-Za-z_][A-Za-z0-9_.]*")
# Output sections the data would land in by the usual GNU ld script rules: weights there
# would be copied to or zeroed in RAM; an arena there would be read-only or take flash.
_NOT_FOR_WEIGHTS = (".bss", ".sbss", ".tbss", ".data", ".sdata", ".tdata", ".noinit")
_NOT_FOR_ARENA = (".rodata", ".text", ".data", ".sdata", ".tdata", ".tbss", ".init",
                  ".fini", ".ARM", ".vectors")


def _starts_with_kind(name: str, kinds: tuple[str, ...]) -> str | None:
    return next((k for k in kinds if name == k or name.startswith(k + ".")), None)


def validate_section(option: str, name: str, forbidden: tuple[str, ...]) -> str:
    """Return `name` if it is a safe section name for `option`; MnvError (exit 2) if not.

    Accepted: up to 64 letters, digits, `_` and `.`, starting with a letter, `_` or `.`
    (what GNU ld, Arm Compiler's armlink and IAR's ilink all accept, and nothing that could
    end a C string or a linker-script token), and not one of the sections whose contents
    the startup code copies or zeroes (weights) or that are read-only (arena).
    """
    hint = (f"use letters, digits, '_' and '.', at most {MAX_SECTION_CHARS} characters, "
            "e.g. " + ("--weights-section .rodata.qspi_weights"
                       if option == "--weights-section" else "--arena-section .bss.dtcm_arena"))
    if not _SECTION.fullmatch(name or "") or len(name) > MAX_SECTION_CHARS or name == ".":
        shown = repr(name) if len(name or "") <= 40 else repr(name[:40]) + "..."
        raise MnvError(f"{option} {shown}: not a section name mnv2gen writes into C and "
                       "linker scripts", hint)
    kind = _starts_with_kind(name, forbidden)
    if kind:
        what = "the weights are const data" if option == "--weights-section" else \
            "the arena is zero-initialised RAM"
        raise MnvError(f"{option} {name}: a {kind} section, but {what}", hint)
    return name


@dataclass(frozen=True)
class LibraryOptions:
    """The embedding choices of one generated library (validated on construction).

    prefix: NAME of every symbol, macro (in capitals) and file name; arena: who owns the
    arena (static array, the application's array at link time, or a buffer handed over
    with NAME_set_arena); weights_section / arena_section: the sections the const data and
    the static arena go to (None: `.rodata.NAME_weights` and `.bss.NAME_arena`).
    """

    prefix: str = DEFAULT_PREFIX
    arena: str = "static"
    weights_section: str | None = None
    arena_section: str | None = None

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)
        if self.arena not in ARENA_MODES:
            raise MnvError(f"--arena {self.arena!r}: unknown arena mode",
                           f"choose {', '.join(ARENA_MODES)}")
        if self.weights_section is not None:
            validate_section("--weights-section", self.weights_section, _NOT_FOR_WEIGHTS)
        if self.arena_section is not None:
            validate_section("--arena-section", self.arena_section, _NOT_FOR_ARENA)
            if self.arena != "static":
                raise MnvError(f"--arena-section places the static arena; with --arena "
                               f"{self.arena} the application places it",
                               "drop --arena-section, or use --arena static")

    @property
    def weights(self) -> str:
        """Return the section of the weights: `.rodata.NAME_weights` unless given."""
        return self.weights_section or f".rodata.{self.prefix}_weights"

    @property
    def arena_placement(self) -> str:
        """Return the section of the static arena: `.bss.NAME_arena` unless given."""
        return self.arena_section or f".bss.{self.prefix}_arena"

    @property
    def free_texts(self) -> tuple[str, ...]:
        """Return the user's texts the prefix renaming must keep verbatim (section names)."""
        return (self.weights, self.arena_placement)

    def context(self) -> dict:
        """Return the template values: arena mode (upper case), the two section names and
        a one-line description of the arena's ownership (written with the mnv2_ prefix)."""
        ownership = {"static": f"a static array in section `{self.arena_placement}`",
                     "external": "`mnv2_arena`, defined by the application",
                     "runtime": "a buffer handed over with `mnv2_set_arena()`"}[self.arena]
        return {"arena_mode": self.arena.upper(), "weights_section": self.weights,
                "arena_section": self.arena_placement, "arena_ownership": ownership}
