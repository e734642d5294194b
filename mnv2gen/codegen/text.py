"""Text that may reach generated files: the only way model- or path-derived strings get in.

Generated C, headers, Makefile, CMakeLists.txt and REPORT.md carry generated identifiers
and numbers; where they show a name (the model's file name, an operator's name) it goes
through one of these functions first. Their outputs are plain printable ASCII without
anything that means something to C (`*/`, `/*`, `//`-continuations, trigraphs, quotes),
the C preprocessor (`#`, backslash-newline), make (`$`, `#`, `;`, backslash), CMake
(`$`, `;`, quotes, `#[[`), a shell or Markdown (`<`, `>`, `|`, backticks, brackets).
plan.json is written by `json.dumps` and keeps every string, escaped.
"""

from __future__ import annotations

import re

from mnv2gen.errors import InternalError, MnvError, quoted

COMMENT_LIMIT = 80
BASENAME_LIMIT = 64
# Kept as they are; anything else becomes '_'. No '*', '#', '$', '\\', '?', quotes, '<|`'.
_COMMENT_SAFE = re.compile(r"[^A-Za-z0-9 ._,:;()+=@%/>-]")
_BASENAME_SAFE = re.compile(r"[^A-Za-z0-9._+-]")
# Characters a path may have to be written into a Makefile variable or a CMake string.
_BUILD_PATH_SAFE = re.compile(r"[A-Za-z0-9/._+,@=:-]+")
# A C string literal keeps these bytes; every other byte becomes an octal escape.
_C_STRING_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                           b"0123456789/._-+,:=@ ")


def comment_text(text: object, limit: int = COMMENT_LIMIT) -> str:
    """Return `text` made safe for a comment in any generated file: printable ASCII from a
    small set (letters, digits, space and ``._,:;()+=@%/>-``), every other character
    replaced by '_', runs of spaces collapsed, cut to `limit` characters ('...' marks it).
    The result cannot end a C comment, start one, continue a line or open a Markdown or
    HTML construct."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    clean = _COMMENT_SAFE.sub("_", str(text))
    clean = re.sub(r" {2,}", " ", clean).strip()
    if len(clean) > limit:
        clean = clean[:max(limit - 3, 0)] + "..."
    return clean


def safe_basename(name: object, default: str = "model") -> str:
    """Return the last path component of `name` reduced to ``[A-Za-z0-9._+-]`` (others
    become '_'), at most BASENAME_LIMIT characters, never empty, never starting with '-'
    or '.'; for provenance lines and titles of generated files."""
    text = str(name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    clean = _BASENAME_SAFE.sub("_", text)[:BASENAME_LIMIT].lstrip("-.")
    return clean or default


def build_file_path(path: str, option: str) -> str:
    """Return `path` unchanged if it can be written verbatim into a Makefile variable and a
    CMake string, else raise MnvError naming the option: make, CMake and the shell give
    meaning to spaces, '$', '#', ';', quotes, '%', backslashes and line breaks."""
    if path == "" or _BUILD_PATH_SAFE.fullmatch(path):
        return path
    raise MnvError(f"{option} {quoted(path)}: the path has characters that cannot be "
                   "written safely into the generated Makefile and CMakeLists.txt",
                   "use a path of letters, digits and / . _ + , @ = : - (a symlink works)")


def c_string(text: str) -> str:
    """Return a C string literal (quotes included) holding the UTF-8 bytes of `text`
    exactly; bytes outside a small safe set are written as three-digit octal escapes."""
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        out.append(chr(byte) if byte in _C_STRING_SAFE else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def check_generated_text(name: str, content: str) -> None:
    """Raise InternalError if a generated text file holds anything but printable ASCII,
    newlines and tabs: the guarantee behind every function above."""
    bad = re.search(r"[^\x20-\x7e\n\t]", content)
    if bad:
        raise InternalError(f"generated {name} holds the character {bad.group()!r} at "
                            f"offset {bad.start()}")
