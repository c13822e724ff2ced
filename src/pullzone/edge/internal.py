"""Requests a node makes to its own edge (a prefetch, server/prefetcher.py), and an edge's
requests to an origin shield (docs/cluster.md): they carry a secret in INTERNAL_HEADER:
the node's own, made at each start and known only to the node's processes
(config.Settings.internal_token), or, to a shield, the cluster's (`cluster_token`, made
once by the first node and kept in the bus). Such a request is served as a client's, but
past the zone's access blocks, `bwlimit` and `ssl.redirect`: they are for visitors, and a
prefetch must store what visitors will be served. The header never reaches an origin
(origin.py), whoever sends it."""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from pullzone.spec.headers import HeaderMap

INTERNAL_HEADER: Final = "x-pullzone-internal"
# An edge's request to a shield: the event the edge had applied when it asked. The shield
# answers once it has applied it too, so it never serves an edge what a purge the edge
# has seen removed (docs/cluster.md).
SEQ_HEADER: Final = "x-pullzone-seq"
# A shield's refusal (a 503 with it): the edge asks the next shield, or the origin.
SHIELD_REFUSED: Final = "x-pullzone-shield-refused"
# What an edge notes in a head it got from a shield: which one (never sent to clients).
FROM_SHIELD: Final = "x-pullzone-shield"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_internal(request: HeaderMap, token: str) -> bool:
    """Whether the request carries this node's secret (compared in constant time)."""
    given = request.get(INTERNAL_HEADER)
    return bool(token) and given is not None and hmac.compare_digest(given, token)
