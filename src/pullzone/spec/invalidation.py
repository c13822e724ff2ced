"""Invalidation by unsafe methods (RFC 9111 §4.4)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from pullzone.spec.headers import HeaderMap
from pullzone.spec.uri import split_authority

# RFC 9110 §9.2.1: the safe methods. Method names are case-sensitive (§9.1), so "get"
# is an unknown method, which §4.4 treats as unsafe.
SAFE_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _host(authority: str) -> str:
    """Host of an authority, lower-cased, without userinfo or port; IPv6 keeps brackets."""
    host, _port = split_authority(authority.rpartition("@")[2])
    return host.lower()


def _same_host_path(reference: str, request_path: str, host: str) -> str | None:
    """Path and query of a URI reference resolved against the request, or None when it
    names another host (or is not http/https)."""
    try:
        parts = urlsplit(reference)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        return None
    if parts.netloc or reference.startswith("//"):
        if _host(parts.netloc) != host:
            return None
        path = parts.path or "/"
    elif parts.scheme:
        return None  # "http:path" without an authority: not something we can place
    else:
        resolved = urlsplit(urljoin(request_path, reference))
        path = resolved.path or "/"
        parts = resolved
    return f"{path}?{parts.query}" if parts.query else path


def invalidated_paths(
    method: str, status: int, request_path: str, resp: HeaderMap, request_host: str
) -> list[str]:
    """Paths (with query) whose stored responses an unsafe request makes stale.

    RFC 9111 §4.4: after a non-error (2xx/3xx) response to an unsafe method, the target
    URI, and the URIs in Location and Content-Location — but only when they are on the
    request's host (the RFC requires the same origin; zones are per host, and the port
    and scheme are not compared).
    """
    if method in SAFE_METHODS or not 200 <= status < 400:
        return []
    out = [request_path]
    host = _host(request_host)
    for name in ("location", "content-location"):
        reference = resp.get(name)
        if not reference:
            continue
        path = _same_host_path(reference.strip(" \t"), request_path, host)
        if path is not None and path not in out:
            out.append(path)
    return out
