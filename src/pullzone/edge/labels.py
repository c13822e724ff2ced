"""The names the edge gives its answers: X-Cache labels, and why a response was not stored
(the `reason` of `pullzone_fills_not_stored`)."""

from __future__ import annotations

from enum import StrEnum


class XCache(StrEnum):
    HIT = "HIT"  # served from the cache
    MISS = "MISS"  # fetched: nothing was stored
    EXPIRED = "EXPIRED"  # fetched in place of a stored response that may no longer be used
    REVALIDATED = "REVALIDATED"  # the stored response, confirmed by the origin (304)
    STALE = "STALE"  # the stored response, stale, served because the origin failed
    BYPASS = "BYPASS"  # not for the cache: the request was passed, or refused by the edge


class NotStored(StrEnum):
    """Why a response was relayed without being stored."""

    METHOD = "method"  # only GET (and HEAD, fetched as GET) is stored
    STATUS = "status"  # a status this cache does not store (RFC 9111 §3)
    SET_COOKIE = "set_cookie"  # someone's session
    REQUEST_NO_STORE = "request_no_store"  # RFC 9111 §5.2.1.5
    PRIVATE = "private"  # RFC 9111 §5.2.2.7
    NO_STORE = "no_store"  # RFC 9111 §5.2.2.5
    VARY_STAR = "vary_star"  # RFC 9111 §4.1: never matches
    AUTHORIZATION = "authorization"  # RFC 9111 §3.5
    NO_LIFETIME = "no_lifetime"  # no freshness and no zone TTL (RFC 9111 §3)
    DISGUISED = "disguised"  # a page answered for a static-looking path (edge/deception.py)
    PERSONAL = "personal"  # a Cookie'd visitor's page without a lifetime of its own
    WITHDRAWN = "withdrawn"  # a 304 made the stored response unstorable (RFC 9111 §4.3.4)
    TOO_BIG = "too_big"  # over --max-object-size (edge/bounds.py)
    NO_ROOM = "no_room"  # the cache's budget or disk could not hold it
    UNSLICEABLE = "unsliceable"  # an answer to a slice's range that is no slice (slicing.py)
    ABANDONED = "abandoned"  # nobody read the fill any more, and finishing was not worth it
