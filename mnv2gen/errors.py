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


class VerificationError(MnvError):
    """Generated code or a plan disagreed with the reference."""

    exit_code = 1
