"""Header maps and list-valued fields (RFC 9110 §5).

A `HeaderMap` holds lower-cased field names; repeated field lines are combined into one
value with ", " (RFC 9110 §5.3). Set-Cookie is combined too even though it is not a list
(RFC 9110 §5.3 exempts it): callers only ever test it for presence.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeAlias

HeaderMap: TypeAlias = dict[str, str]

# RFC 9110 §7.6.1 (and the de-facto keep-alive / proxy-connection): fields that describe
# one connection and are never forwarded or stored.
HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)

_OWS = " \t"  # RFC 9110 §5.6.3: optional whitespace is SP / HTAB


def qvalue(params: str) -> float:
    """The q parameter of one member of an Accept-* field (RFC 9110 §12.4.2); 1 when
    absent, 0 when it is not a number in [0, 1]."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def header_map(pairs: Iterable[tuple[str, str]]) -> HeaderMap:
    """Lower-cased names; repeated fields joined with ", " in order (RFC 9110 §5.3)."""
    out: HeaderMap = {}
    for name, value in pairs:
        # Interned: the same few names recur in every stored response a worker holds.
        key = sys.intern(name.lower())
        prev = out.get(key)
        out[key] = value if prev is None else f"{prev}, {value}"
    return out


def split_list(value: str | None) -> list[str]:
    """Members of a comma-separated list (RFC 9110 §5.6.1): trimmed, empty members dropped,
    commas inside quoted strings (RFC 9110 §5.6.4, with backslash escapes) kept."""
    if not value:
        return []
    if '"' not in value:
        return [s for part in value.split(",") if (s := part.strip(_OWS))]
    out: list[str] = []
    start = 0
    quoted = escaped = False
    for i, c in enumerate(value):
        if quoted:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ",":
            member = value[start:i].strip(_OWS)
            if member:
                out.append(member)
            start = i + 1
    member = value[start:].strip(_OWS)
    if member:
        out.append(member)
    return out


def connection_tokens(value: str | None) -> set[str]:
    """Field names listed in Connection, lower-cased: hop-by-hop too (RFC 9110 §7.6.1)."""
    if not value:
        return set()
    return {token.lower() for token in split_list(value)}
