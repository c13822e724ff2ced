"""Text that is not valid Unicode is refused where it enters.

JSON's `\\ud800` escape decodes to a lone surrogate: a Python `str` that cannot be
encoded as UTF-8, so SQLite, the logs and every peer would fail on it later, long after
the request was answered. Every string a client sends goes through `invalid_text` before
anything is stored or committed (docs/hardening.md, "Text").
"""

from __future__ import annotations

from typing import Any

_WHY = " (it holds a lone surrogate, such as the JSON escape \\ud800)"


def is_text(value: str) -> bool:
    """Whether `value` is valid Unicode text (encodes as UTF-8: no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(value: str) -> str:
    """`value` made valid text for an answer or a log line (a lone surrogate as `\\ud800`),
    for what was stored before it could be refused."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def invalid_text(value: Any, where: str = "the body") -> str | None:
    """Where in a decoded JSON value (objects, arrays, strings) the first string that is
    not valid Unicode text is, as a message for the client; None when there is none."""
    if isinstance(value, str):
        return None if is_text(value) else f"{where} is not valid Unicode text{_WHY}"
    if isinstance(value, dict):
        for name, item in value.items():
            if not is_text(name):
                return f"a field name in {where} is not valid Unicode text{_WHY}"
            found = invalid_text(item, name if where == "the body" else f"{where}.{name}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = invalid_text(item, f"{where}[{i}]")
            if found is not None:
                return found
    return None
