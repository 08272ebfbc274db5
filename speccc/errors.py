"""Typed errors. Everything below the CLI raises these; only the CLI prints them.

A `SpecccError` is bad input (exit 2): its message is one line that names the file,
op or line it is about and, where it can, says what to do. `CheckFailed` is the thing
asked for failing (a mismatch, a checker violation): exit 1.
"""
from __future__ import annotations


class SpecccError(Exception):
    """Bad input or usage. Message: one line, names the file/op/line."""

    exit_code = 2

    def __init__(self, message: str, *, location: str | None = None):
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class ParseError(SpecccError):
    """Text (IR, listing, pipeline) that does not parse; location is FILE:LINE:COL."""


class VerifyError(SpecccError):
    """IR that breaks an invariant (arity, types, attributes, acyclicity, dominance)."""


class CapacityError(SpecccError):
    """Data that does not fit the hardware's memory (rows per bank, a channel set)."""


class NotConstantError(VerifyError):
    """A shape operand that must be known at compile time is not (the ONNX backend
    answers it by specializing on the given inputs)."""


class UnsupportedError(SpecccError):
    """Model uses ops/opsets that speccc does not convert (all listed at once)."""


class CheckFailed(Exception):
    """The thing asked for failed (comparison mismatch, timing check). Exit 1."""

    exit_code = 1
