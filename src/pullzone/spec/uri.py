"""One spelling per resource: percent-encoding normalised (RFC 3986 §6.2.2).

`/b` and `/%62`, `%c3%a9` and `%C3%A9` name the same resource. The cache key and purge
matching both use `normalise`, so a purge finds what a request stored however either
spelled it, and one object is never stored twice under two spellings.
"""

from __future__ import annotations

import re
import string

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")  # RFC 3986 §2.3
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


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
