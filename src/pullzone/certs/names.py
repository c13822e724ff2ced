"""Which host names a certificate is valid for (RFC 6125 §6.4): pure, for the edge's SNI
choice and for the API's `installs` and warnings."""

from __future__ import annotations

from collections.abc import Iterable


def _normal(name: str) -> str:
    return name.strip().lower().removesuffix(".")


def matches(cert_name: str, host: str) -> bool:
    """Does the DNS name `cert_name` (possibly `*.example.com`) cover `host`?

    A wildcard is a whole leftmost label only, and matches exactly one label (RFC 6125
    §6.4.3): `*.example.com` covers `a.example.com`, not `example.com` nor
    `a.b.example.com`. Partial wildcards (`f*.example.com`) and wildcards over a single
    label (`*.com`) match nothing. IP literals are never matched by a DNS name pattern.
    """
    pattern, host = _normal(cert_name), _normal(host)
    if not pattern or not host or host.startswith("[") or "*" in host:
        return False
    if "*" not in pattern:
        return pattern == host
    label, _, base = pattern.partition(".")
    if label != "*" or "*" in base or "." not in base:
        return False
    first, _, rest = host.partition(".")
    return bool(first) and rest == base and not _is_ipv4(host)


def covers(cert_names: Iterable[str], host: str) -> bool:
    """Is `host` covered by any of `cert_names` (a certificate's DNS names)?"""
    return any(matches(name, host) for name in cert_names)


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)
