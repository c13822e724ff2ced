"""Which response directives rule this cache: a field targeted at CDNs, else Cache-Control
(RFC 9213 §2.1).

An origin can give the CDN a life different from browsers': `CDN-Cache-Control` (RFC
9213, honoured by Cloudflare, Fastly and Akamai) and its older form `Surrogate-Control`
(W3C Edge Architecture, Fastly, Varnish) hold Cache-Control's response directives for
the CDN alone. The first of them with a valid, non-empty value is used, and Cache-Control
and Expires are then ignored for caching here (RFC 9213 §2.1); clients never see the
targeted fields (edge/writer.py) and keep Cache-Control as the origin sent it.

`CDN-Cache-Control` is a Structured Field Dictionary (RFC 9213 §2.1, RFC 8941 §3.2): a
value that does not parse as one is invalid and ignored, as the RFC requires.
`Surrogate-Control` predates Structured Fields and is read as Cache-Control is.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from http_sfv.dictionary import Dictionary

from pullzone.spec.cache_control import parse_cache_control
from pullzone.spec.headers import HeaderMap

CDN_CACHE_CONTROL = "cdn-cache-control"
SURROGATE_CONTROL = "surrogate-control"


@dataclass(frozen=True, slots=True)
class Directives:
    """The response directives this cache follows, and where they came from."""

    cc: Mapping[str, str | None]  # read-only: one record serves every response alike
    targeted: bool  # from a targeted field: Cache-Control and Expires do not count


def _structured(value: str) -> dict[str, str | None] | None:
    """A Structured Field Dictionary as Cache-Control directives (a bare key is a flag:
    None); None when the value is not a valid dictionary."""
    parsed = Dictionary()
    try:
        parsed.parse(value.encode("latin-1"))
    except (ValueError, UnicodeEncodeError):
        return None
    directives: dict[str, str | None] = {}
    for key, member in parsed.items():
        item = getattr(member, "value", None)  # an inner list has no single value
        if item is True:
            directives[key] = None
        elif isinstance(item, bool) or item is None:
            continue  # `key=?0` (false) or a list: no directive
        else:
            directives[key] = str(item)
    return directives


def response_directives(resp: HeaderMap) -> Directives:
    """RFC 9213 §2.1: the first targeted field with a valid, non-empty value, else
    Cache-Control."""
    return _directives(
        resp.get(CDN_CACHE_CONTROL), resp.get(SURROGATE_CONTROL), resp.get("cache-control")
    )


# Parsed once per distinct set of values: a site's objects share a few, and a stored
# response's are read several times as it is loaded (freshness, stale windows, storing).
@functools.lru_cache(maxsize=4096)
def _directives(cdn: str | None, surrogate: str | None, cache_control: str | None) -> Directives:
    if cdn is not None and cdn.strip():
        directives = _structured(cdn)
        if directives:
            return Directives(MappingProxyType(directives), True)
    if surrogate is not None and surrogate.strip():
        directives = parse_cache_control(surrogate)
        if directives:
            return Directives(MappingProxyType(directives), True)
    return Directives(MappingProxyType(parse_cache_control(cache_control)), False)


def has_expires(resp: HeaderMap, directives: Directives) -> bool:
    """Whether Expires counts: not when a targeted field rules (RFC 9213 §2.1)."""
    return not directives.targeted and "expires" in resp
