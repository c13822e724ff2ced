"""Cache keys: which requests share a stored response.

The key is the zone, the path and (when the zone's `querystring` is Y) the query string,
exactly as the client sent them. The Host is not part of it: every hostname of a zone
shares one cache, so a purge by path reaches what any of them stored.
"""

from __future__ import annotations

import hashlib


def split_target(target: str) -> tuple[str, str]:
    """Path and query of an origin-form request target."""
    path, _, query = target.partition("?")
    return path, query


def cache_key(zone_id: int, path: str, query: str, use_query: bool) -> str:
    return f"{zone_id}\x00{path}\x00{query if use_query else ''}"


def key_hash(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
