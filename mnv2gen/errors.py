"""Typed errors. Library code raises these; only the CLI turns them into exit codes."""

from __future__ import annotations


class MnvError(Exception):
    """A user-facing error: a one-line message and an optional hint."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ModelError(MnvError):
    """The model file cannot be read (missing, truncated, not the expected format)."""


class UnsupportedError(MnvError):
    """The model uses an operator, type or quantisation mnv2gen does not support."""


class IRError(MnvError):
    """An internal graph invariant was broken (a bug in a front end or pass)."""


class InternalError(MnvError):
    """A bug in mnv2gen found by one of its own checks (exit 3, with the hint to report it)."""

    exit_code = 3

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint or "this is a bug in mnv2gen; please report it with "
                         "the command and the model (MNV2GEN_DEBUG=1 shows the traceback)")


class VerificationError(MnvError):
    """Generated code or a plan disagreed with the reference."""

    exit_code = 1


MESSAGE_TEXT_LIMIT = 80


def quoted(text: object, limit: int = MESSAGE_TEXT_LIMIT) -> str:
    """Return model- or path-derived text for an error message: `repr`-style quoted, with
    control and other non-printable characters removed and cut to `limit` characters
    (`...` marks the cut). Bytes are decoded as UTF-8 with undecodable bytes shown as
    \\xNN escapes. Every message that quotes a name, op type or path from a file uses this.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "backslashreplace")
    clean = "".join(ch for ch in str(text) if ch.isprintable())
    if len(clean) > limit:
        clean = clean[:max(limit - 3, 0)] + "..."
    return repr(clean)


def one_line(text: str) -> str:
    """Return `text` as one printable line: line breaks and tabs become spaces, every other
    control character is dropped (the CLI's last line of defence for messages)."""
    spaced = "".join(" " if ch in "\n\r\t\v\f" else ch for ch in str(text))
    return "".join(ch for ch in spaced if ch.isprintable())


def file_label(path: object) -> str:
    """Return a path as messages show it: as given when printable and at most 160
    characters, else `quoted` (a file name is as hostile as any model text)."""
    text = str(path)
    if text.isprintable() and len(text) <= 160:
        return text
    return quoted(text, 120)


def bare(text: object) -> str:
    """Return an identifier-like model string (an ONNX op type, a custom code) as it is when
    it is 1 to 64 characters of letters, digits and ``_.:/+-``, else `quoted`."""
    s = str(text)
    if 0 < len(s) <= 64 and all(ch.isascii() and (ch.isalnum() or ch in "_.:/+-") for ch in s):
        return s
    return quoted(s)


def shown(text: object, limit: int = MESSAGE_TEXT_LIMIT) -> str:
    """Return model- or path-derived text for a report line on stdout: as it is when it is
    printable ASCII of at most `limit` characters, else `quoted`."""
    s = str(text)
    if len(s) <= limit and all(" " <= ch <= "~" for ch in s):
        return s
    return quoted(s, limit)
