"""A change or request the domain refuses, and why.

The zone store, the replica, the event logs and the purge parser raise `Refused`; the API
(`control.errors`) answers it with the status its reason maps to and the message as it is.
"""

from __future__ import annotations

from enum import Enum


class Reason(Enum):
    INVALID = "invalid"  # the input itself is wrong
    CONFLICT = "conflict"  # it clashes with what exists: a taken alias or hostname
    NOT_FOUND = "not found"  # what it names does not exist (any more)
    TOO_LARGE = "too large"  # more items than one change may carry
    UNSUPPORTED_MEDIA = "unsupported media"  # a body in a format other than JSON
    FAILED = "failed"  # stored, but applying it failed here
    UNAVAILABLE = "unavailable"  # it cannot be stored or confirmed now: try again


class Refused(Exception):
    """`message` says what is wrong and how to fix it; the client reads it as it is."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"Refused({self.reason.name}, {self.message!r})"
