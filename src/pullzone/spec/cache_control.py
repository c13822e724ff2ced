"""Cache-Control parsing (RFC 9111 §5.2) and delta-seconds (RFC 9111 §1.2.2)."""

from __future__ import annotations

from pullzone.spec.headers import split_list

# RFC 9111 §1.2.2: a delta-seconds value too large to represent is taken as 2^31.
DELTA_SECONDS_MAX = 2147483648
_OWS = " \t"


def _unquote(text: str) -> str:
    """The content of a quoted-string (RFC 9110 §5.6.4); tolerant of a missing close."""
    end = text.find('"', 1)
    if end == len(text) - 1 and "\\" not in text:
        return text[1:-1]
    out: list[str] = []
    escaped = False
    for c in text[1:]:
        if escaped:
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            break
        else:
            out.append(c)
    return "".join(out)


def parse_cache_control(value: str | None) -> dict[str, str | None]:
    """Directives of a Cache-Control value (RFC 9111 §5.2): name (lower-cased) → argument
    (unquoted) or None when there is none.

    Never raises: members without a name are skipped, anything else is kept as given.
    RFC 9111 §4.2.1: when a directive repeats, the first occurrence is used.
    """
    out: dict[str, str | None] = {}
    if not value:
        return out
    if '"' not in value:
        for member in value.split(","):
            name, eq, arg = member.partition("=")
            name = name.strip(_OWS).lower()
            if name and name not in out:
                out[name] = arg.strip(_OWS) if eq else None
        return out
    for member in split_list(value):
        name, eq, arg = member.partition("=")
        name = name.strip(_OWS).lower()
        if not name or name in out:
            continue
        if not eq:
            out[name] = None
            continue
        arg = arg.strip(_OWS)
        out[name] = _unquote(arg) if arg.startswith('"') else arg
    return out


def delta_seconds(value: str | None) -> int | None:
    """RFC 9111 §1.2.2: a non-negative decimal integer of seconds, at most 2^31; anything
    else (sign, fraction, empty, non-ASCII digits) is invalid → None."""
    if value is None:
        return None
    value = value.strip(_OWS)
    if not value or not value.isascii() or not value.isdigit():
        return None
    digits = value.lstrip("0")
    if len(digits) > 10:  # also keeps int() clear of its 4300-digit limit
        return DELTA_SECONDS_MAX
    return min(int(digits or "0"), DELTA_SECONDS_MAX)
