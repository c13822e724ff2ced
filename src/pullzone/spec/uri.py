"""Pieces of URIs (RFC 3986): an authority's host and port, and one spelling per resource.

`/b` and `/%62`, `%c3%a9` and `%C3%A9` name the same resource (§6.2.2). The cache key and
purge matching both use `normalise`, so a purge finds what a request stored however
either spelled it, and one object is never stored twice under two spellings.
"""

from __future__ import annotations

import re
import string

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")  # RFC 3986 §2.3
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def split_authority(authority: str) -> tuple[str, str | None]:
    """`host[:port]` (RFC 3986 §3.2.2, §3.2.3) as (host, port); userinfo is the caller's
    to remove first.

    The host is as written: an IP literal keeps its brackets. The port is None without a
    `:`, else the text after it, unchecked: §3.2.3 allows it empty, and the range a
    caller accepts is its own to check.

    More than one `:` outside brackets is an IPv6 address written without them, which
    §3.2.2 does not allow: it is read as a host with no port, since a port could not be
    told apart from its last group. Anything else that is not `host[:port]` (`[::1]x`,
    `[::1`) comes back whole as the host, which no host check accepts.
    """
    if authority.startswith("["):
        end = authority.find("]") + 1
        rest = authority[end:]
        if end and not rest:
            return authority, None
        if end and rest.startswith(":"):
            return authority[:end], rest[1:]
        return authority, None
    if authority.count(":") == 1:
        host, _, port = authority.partition(":")
        return host, port
    return authority, None


def _one(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    # §6.2.2.2: an encoded unreserved character is that character; §6.2.2.1: the hex
    # digits of every other percent-encoding in upper case.
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def normalise(text: str, encoding: str = "utf-8") -> str:
    """`text` (a path, a query, or both) with its percent-encodings normalised and every
    character outside ASCII percent-encoded as its bytes in `encoding`: UTF-8 for text a
    person wrote (a purge's `/é`), latin-1 for a request target read as latin-1, which
    gives back the bytes the client sent."""
    if not text.isascii():
        text = "".join(
            c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode(encoding)) for c in text
        )
    elif "%" not in text:
        return text
    return _PERCENT.sub(_one, text)
