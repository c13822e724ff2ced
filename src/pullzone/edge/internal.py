"""Requests a node makes to its own edge (a prefetch, server/prefetcher.py): they carry
the node's secret in INTERNAL_HEADER, made at each start and known only to the node's
processes (config.Settings.internal_token). Such a request is served as a client's, but
past the zone's access blocks, `bwlimit` and `ssl.redirect`: they are for visitors, and a
prefetch must store what visitors will be served. The header never reaches an origin
(origin.py), whoever sends it."""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from pullzone.spec.headers import HeaderMap

INTERNAL_HEADER: Final = "x-pullzone-internal"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_internal(request: HeaderMap, token: str) -> bool:
    """Whether the request carries this node's secret (compared in constant time)."""
    given = request.get(INTERNAL_HEADER)
    return bool(token) and given is not None and hmac.compare_digest(given, token)
