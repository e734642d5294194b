"""The symbol prefix of a generated library (`build --prefix NAME`): validation, and the
one renaming step applied to every generated file when it is written.

Templates and runtime sources are written with the default prefix: every external symbol
starts with `mnv2_`, every macro with `MNV2_`, every generated file name with `mnv2_`, and
everything else is `static`. `Renamer` turns that into NAME_ / NAME-in-capitals_ over the
rendered text, token by token, so templates never thread a prefix through and a template
added later is renamed like the others:

- C sources and headers: every identifier that starts with `mnv2_` or `MNV2_`, in code and
  in comments; string literals are left alone except the file name of an `#include` of a
  generated file (free text such as a path in a string is never rewritten).
- build files (Makefile, CMakeLists.txt) and REPORT.md: the same identifiers, plus the
  library's own name (`mnv2` as a whole word: CMake target, `libmnv2.a`).
- sources that are not the library (the verification harness): only identifiers the
  library's code defines or uses, so the harness keeps its own `mnv2_` helpers.

Free text from the model (the provenance line, the model name) is protected: it is cut out
before renaming and put back verbatim. With the default prefix every method is the identity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mnv2gen.errors import MnvError

DEFAULT_PREFIX = "mnv2"
MAX_PREFIX_CHARS = 32

# C23 keywords (the C99/C11 ones included), plus the common extensions asm and fortran.
C_KEYWORDS = frozenset("""
alignas alignof auto bool break case char const constexpr continue default do double else
enum extern false float for goto if inline int long nullptr register restrict return short
signed sizeof static static_assert struct switch thread_local true typedef typeof
typeof_unqual union unsigned void volatile while asm fortran
""".split())
# Target names CMake reserves (policy CMP0037): the library's CMake target is NAME.
CMAKE_RESERVED = frozenset(("all", "clean", "help", "install", "test", "package",
                            "package_source", "depend", "edit_cache", "rebuild_cache",
                            "list_install_components", "preinstall"))
_PREFIX = re.compile(r"[a-z][a-z0-9_]*")

# A C text as a sequence of: comments, string/char literals, prefixed identifiers.
_C_TOKENS = re.compile(
    r"(?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<include>#[ \t]*include[ \t]*[<\"])(?P<included>[^\">\n]*)(?P<close>[\">])"
    r"|(?P<string>\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?)"
    r"|(?P<ident>(?:(?<=-D)|(?<!\w))(?:mnv2|MNV2)_\w*)", re.S)
# An identifier starts a word, or follows -D (a macro on a compiler command line).
_IDENT = re.compile(r"(?:(?<=-D)|(?<!\w))(?:mnv2|MNV2)_\w*")
_LIBRARY_NAME = re.compile(r"(?<!\w)(lib)?mnv2(?!\w)")


def validate_prefix(name: str) -> str:
    """Return `name` if it can prefix every symbol of a library; MnvError (exit 2) if not.

    Accepted: 1 to 32 lowercase letters, digits and underscores, starting with a letter,
    no `__` (reserved to the implementation), no trailing `_` (NAME_ would contain `__`),
    not a C keyword and not a target name CMake reserves.
    """
    hint = ("use lowercase letters, digits and single underscores, starting with a letter, "
            f"at most {MAX_PREFIX_CHARS} characters, e.g. --prefix cat")
    if not _PREFIX.fullmatch(name or "") or len(name) > MAX_PREFIX_CHARS:
        shown = repr(name) if len(name or "") <= 40 else repr(name[:40]) + "..."
        raise MnvError(f"--prefix {shown}: not a lowercase C identifier prefix", hint)
    if "__" in name or name.endswith("_"):
        raise MnvError(f"--prefix {name}: would make identifiers containing '__', which C "
                       "reserves to the compiler and library", hint)
    if name in C_KEYWORDS:
        raise MnvError(f"--prefix {name}: a C keyword", hint)
    if name in CMAKE_RESERVED:
        raise MnvError(f"--prefix {name}: CMake reserves the target name {name!r}", hint)
    return name


class Renamer:
    """Renames the default prefix to another in the generated files (see module docs)."""

    def __init__(self, prefix: str, library_identifiers: Iterable[str] = (),
                 file_names: Iterable[str] = (), protected: Iterable[str] = ()) -> None:
        self.prefix = validate_prefix(prefix)
        self.identifiers = frozenset(library_identifiers)
        self.file_names = frozenset(file_names)
        self.protected = tuple(sorted({p for p in protected if p}, key=len, reverse=True))

    @property
    def identity(self) -> bool:
        """Return True when nothing is renamed (the default prefix)."""
        return self.prefix == DEFAULT_PREFIX

    def identifier(self, name: str) -> str:
        """Return a `mnv2_x` / `MNV2_X` identifier with this prefix (others unchanged)."""
        if name.startswith("mnv2_"):
            return f"{self.prefix}_{name[5:]}"
        if name.startswith("MNV2_"):
            return f"{self.prefix.upper()}_{name[5:]}"
        return name

    def file_name(self, name: str) -> str:
        """Return a generated file's name with this prefix (`mnv2_model.h` -> `cat_model.h`)."""
        return self.identifier(name) if name.startswith("mnv2_") else name

    def library_source(self, text: str) -> str:
        """Return a generated C source or header with every prefixed identifier renamed."""
        return self._protecting(text, lambda part: self._c_text(part, None))

    def harness_source(self, text: str) -> str:
        """Return a C source that uses the library with the library's identifiers renamed."""
        return self._protecting(text, lambda part: self._c_text(part, self.identifiers))

    def build_file(self, text: str) -> str:
        """Return a Makefile, CMakeLists.txt or REPORT.md with identifiers, file names and the
        library's name (`mnv2`, `libmnv2.a`) renamed."""
        def rename(part: str) -> str:
            part = _IDENT.sub(lambda m: self.identifier(m[0]), part)
            return _LIBRARY_NAME.sub(lambda m: (m[1] or "") + self.prefix, part)
        return self._protecting(text, rename)

    def _protecting(self, text: str, rename) -> str:
        if self.identity:
            return text
        # Protected texts become neutral placeholders (NUL never occurs in generated text),
        # so the lexer still sees every comment and string whole.
        for i, free_text in enumerate(self.protected):
            text = text.replace(free_text, f"\0{i}\0")
        text = rename(text)
        for i, free_text in enumerate(self.protected):
            text = text.replace(f"\0{i}\0", free_text)
        return text

    def _c_text(self, text: str, only: frozenset[str] | None) -> str:
        def wanted(name: str) -> bool:
            return only is None or name in only

        def token(m: re.Match) -> str:
            if m["ident"]:
                return self.identifier(m[0]) if wanted(m[0]) else m[0]
            if m["comment"]:
                return _IDENT.sub(lambda i: self.identifier(i[0]) if wanted(i[0]) else i[0],
                                  m[0])
            if m["include"]:
                name = m["included"]
                renamed = self.file_name(name) if name in self.file_names else name
                return f'{m["include"]}{renamed}{m["close"]}'
            return m[0]
        return _C_TOKENS.sub(token, text)


def code_identifiers(text: str) -> set[str]:
    """Return the `mnv2_`/`MNV2_` identifiers a C text uses outside comments and strings."""
    return {m["ident"] for m in _C_TOKENS.finditer(text) if m["ident"]}

