"""Designated initialisers for the runtime's structs (`{ .stride_h = 2, ... }`).

The field names and order come from the struct definitions in templates/runtime/*.h, read
once, so generated tables name every number without a second copy of the layouts to keep
in step. Lowering stays positional (values in field order) or names fields in a dict;
templates call `init(struct, values)`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

_STRUCT = re.compile(r"typedef\s+struct\s*\{(.*?)\}\s*(\w+)\s*;", re.S)
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DECLARATOR = re.compile(r"^\s*(\**)\s*(\w+)\s*(\[\s*\w+\s*\])?\s*$")
#: Longest line a one-line initialiser may make (else one field per line group).
LINE_WIDTH = 100


@dataclass(frozen=True)
class Field:
    """One struct member: its name, its type name (a struct of the table, or a scalar or
    pointer type) and whether it is an array."""

    name: str
    type_name: str
    array: bool


def parse_structs(header_text: str) -> dict[str, tuple[Field, ...]]:
    """Return {typedef name: fields in order} of every `typedef struct { ... } name;`."""
    structs = {}
    for body, name in _STRUCT.findall(_COMMENT.sub(" ", header_text)):
        fields = []
        for declaration in filter(str.strip, body.split(";")):
            head, *rest = declaration.replace("[", " [").split(",")
            words = head.replace("*", " * ").split()
            array = words[-1].startswith("[")
            if array:
                words = words[:-1]
            base = [w for w in words[:-1] if w not in ("const", "*")]
            if not base:
                raise ValueError(f"cannot read member {declaration.strip()!r} of {name}")
            fields.append(Field(words[-1], base[-1] + ("*" if "*" in words else ""), array))
            for declarator in rest:
                match = _DECLARATOR.match(declarator)
                if match is None:
                    raise ValueError(f"cannot read member {declarator.strip()!r} of {name}")
                fields.append(Field(match[2], base[-1] + ("*" if match[1] else ""),
                                    match[3] is not None))
        structs[name] = tuple(fields)
    return structs


@functools.cache
def runtime_structs(runtime_dir: str) -> dict[str, tuple[Field, ...]]:
    """Return the structs of every header in `runtime_dir` (templates/runtime)."""
    structs: dict[str, tuple[Field, ...]] = {}
    for header in sorted(Path(runtime_dir).glob("*.h")):
        structs.update(parse_structs(header.read_text()))
    return structs


class Initialiser:
    """Renders designated initialisers of the structs it was given."""

    def __init__(self, structs: dict[str, tuple[Field, ...]]):
        self.structs = structs

    def __call__(self, struct: str, values, indent: int = 0, one_line: bool = False) -> str:
        """Return `{ .field = value, ... }` of `struct` with `values` (a list in field
        order, or a dict by field name; None or a missing key leaves a member out, i.e.
        zero); `indent` is the indentation of the line it starts on; `one_line` keeps a
        table row on one line whatever its length."""
        return self._render(struct, values, indent, indent,
                            10**6 if one_line else LINE_WIDTH)

    def define(self, struct: str, symbol: str, values) -> str:
        """Return `static const struct symbol = { ... };` (see __call__)."""
        lead = f"static const {struct} {symbol} = "
        return lead + self._render(struct, values, 0, len(lead), LINE_WIDTH) + ";"

    def _items(self, struct: str, values) -> list[tuple[Field, object]]:
        fields = self.structs[struct]
        if isinstance(values, dict):
            unknown = set(values) - {f.name for f in fields}
            if unknown:
                raise KeyError(f"{struct} has no member {sorted(unknown)}")
            return [(f, values[f.name]) for f in fields if values.get(f.name) is not None]
        values = list(values)
        if len(values) != len(fields):
            raise ValueError(f"{struct} has {len(fields)} members, got {len(values)} values")
        return [(f, v) for f, v in zip(fields, values, strict=True) if v is not None]

    def _value(self, field: Field, value, indent: int, column: int, width: int) -> str:
        if field.array:
            return "{ " + ", ".join(map(str, value)) + " }"
        if field.type_name in self.structs:
            return self._render(field.type_name, value, indent, column, width)
        return str(value)

    def _render(self, struct: str, values, indent: int, column: int, width: int) -> str:
        """`indent`: the indentation of the line the brace is on; `column`: the brace's."""
        items = self._items(struct, values)
        if not items:
            return "{ 0 }"
        inner = indent + 4
        flat = [f".{f.name} = " + self._value(f, v, inner, 0, 10**6) for f, v in items]
        one_line = "{ " + ", ".join(flat) + " }"
        if column + len(one_line) <= width:
            return one_line
        texts = [f".{f.name} = " + self._value(f, v, inner, inner + len(f.name) + 4, width)
                 for f, v in items]
        lines: list[str] = []
        for text in texts:
            if lines and "\n" not in text and "\n" not in lines[-1] and \
                    inner + len(lines[-1]) + len(text) + 3 <= width:
                lines[-1] += ", " + text
            else:
                lines.append(text)
        pad = " " * inner
        return "{\n" + "".join(f"{pad}{line},\n" for line in lines) + " " * indent + "}"
