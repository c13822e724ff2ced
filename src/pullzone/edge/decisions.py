"""The edge's cache decisions, without I/O: pure functions over typed records.

    on_request(request, zone, stored, now)          → Deliver | DeliverRefreshing | Revalidate
                                                      | Fetch | Pass | Answer | Redirect
    on_origin_response(request, ..., response)      → Store | Refresh | Withdraw | Pass
                                                      | ServeStale | Fail
    on_origin_failure(stored, policy, status, now)  → ServeStale | Fail

They combine the RFC 9111 rules of `spec/` with the zone's policy. The executors act on
what they answer: lifecycle.py delivers or sends on, fills.py fetches and stores,
deliver.py writes. Time is passed in; nothing here reads a clock, a file or a socket.

The request decisions carry no data of their own (the stored response they speak of is
the one they were given), so each is a prebuilt constant: a HIT allocates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from pullzone.cache.stored import ResponseHead
from pullzone.edge.bounds import Limits, storable_length
from pullzone.edge.deception import disguised, personal
from pullzone.edge.entry import Entry
from pullzone.edge.labels import NotStored, XCache
from pullzone.edge.switches import is_preflight
from pullzone.spec.cache_control import parse_cache_control
from pullzone.spec.cdn_loop import looped
from pullzone.spec.freshness import unstorable
from pullzone.spec.headers import HeaderMap, header_map, split_list
from pullzone.spec.vary import vary_names, vary_values
from pullzone.zones.model import CachePolicy, Zone

if TYPE_CHECKING:
    from pullzone.edge.http import Request

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})


# -- what to do with a request -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    """Serve the stored response, labelled `xcache`."""

    xcache: XCache


@dataclass(frozen=True, slots=True)
class DeliverRefreshing:
    """Serve the stored response at once, labelled `xcache`, and refresh it in the
    background: once for the node, however many requests ask meanwhile (RFC 5861 §3
    stale-while-revalidate: STALE; the zone's prefresh: HIT)."""

    xcache: XCache


@dataclass(frozen=True, slots=True)
class Revalidate:
    """Ask the origin whether the stored response is still good (RFC 9111 §4.3.1)."""

    xcache: XCache = XCache.REVALIDATED


@dataclass(frozen=True, slots=True)
class Fetch:
    """Ask the origin for the whole response; `xcache` says what it replaces."""

    xcache: XCache


@dataclass(frozen=True, slots=True)
class Pass:
    """Not for the cache: the request goes to the origin, or the response to the client,
    without being stored."""

    reason: NotStored


@dataclass(frozen=True, slots=True)
class Answer:
    """The edge answers the request itself, without the origin."""

    status: int
    message: str


@dataclass(frozen=True, slots=True)
class Redirect:
    """The edge sends the client elsewhere: plain HTTP to HTTPS (the zone's
    `ssl.redirect`)."""

    status: int  # 301 for GET and HEAD, 308 for the rest (RFC 9110 §15.4.2, RFC 7538)
    host: str  # without a port; an IPv6 literal in brackets
    target: str  # origin-form: path and query

    def location(self, https_port: int = 443) -> str:
        """The URL on the node's HTTPS listener (`--edge-tls`), its port named unless
        it is https' default (443). The port is the executor's to give, so on_request
        takes no argument for it: a HIT pays nothing for redirects."""
        port = "" if https_port == 443 else f":{https_port}"
        return f"https://{self.host}{port}{self.target}"


# ACME HTTP-01 challenges (RFC 8555 §8.3) are answered over plain HTTP: never redirected.
ACME_CHALLENGE = "/.well-known/acme-challenge/"

DELIVER_HIT: Final = Deliver(XCache.HIT)
REFRESHING: Final = {x: DeliverRefreshing(x) for x in (XCache.HIT, XCache.STALE)}
REVALIDATE: Final = Revalidate()
FETCH_MISS: Final = Fetch(XCache.MISS)
FETCH_EXPIRED: Final = Fetch(XCache.EXPIRED)
PASS_METHOD: Final = Pass(NotStored.METHOD)
PASS_NO_STORE: Final = Pass(NotStored.REQUEST_NO_STORE)
ZONE_DISABLED: Final = Answer(403, "this zone is disabled")
LOOP: Final = Answer(508, "loop detected: the origin is this CDN")
NO_TRACE: Final = Answer(405, "TRACE is not supported")
OPTIONS_HERE: Final = Answer(200, "OK")
NOT_CACHED: Final = Answer(504, "not in cache")
# A CORS preflight to a zone with `edge.cors`: answered at the edge (deliver.preflight).
PREFLIGHT: Final = Answer(204, "preflight")

RequestDecision = Deliver | DeliverRefreshing | Revalidate | Fetch | Pass | Answer | Redirect


def on_request(
    request: Request,
    zone: Zone,
    stored: Entry | None,
    now: float,
    revalidate_all: int,
    cdn_id: str,
) -> RequestDecision:
    """What to do with `request` to `zone`, given the stored response that matches it
    (its variant, RFC 9111 §4.1: `select_variant`). `revalidate_all` (nonzero): this node
    may not know of every purge (a cluster edge out of touch), so nothing is served
    unvalidated."""
    if zone.disabled:
        return ZONE_DISABLED
    ssl = zone.ssl
    # HTTPS only (before the fresh check: it holds for HITs too); one test for a zone
    # without it, whatever the scheme.
    if ssl.redirect and ssl.enabled and request.scheme == "http":
        redirect = to_https(request)
        if redirect is not None:
            return redirect
    cacheable = request.method in CACHEABLE_METHODS
    # RFC 9111 §4.2: a fresh stored response is served (the fast path: checked first).
    if (
        cacheable
        and stored is not None
        and not revalidate_all
        and stored.is_fresh(request.hmap, now)
    ):
        return DELIVER_HIT
    refusal = _not_forwarded(request, cdn_id)
    if refusal is not None:
        return refusal
    if not cacheable:
        if zone.edge.cors and is_preflight(request.method, request.hmap):
            return PREFLIGHT
        return PASS_METHOD
    cc = parse_cache_control(request.hmap.get("cache-control"))
    if "only-if-cached" in cc:  # RFC 9111 §5.2.1.7
        return NOT_CACHED
    if "no-store" in cc:  # RFC 9111 §5.2.1.5: neither stored nor served from the cache
        return PASS_NO_STORE
    if stored is not None and not revalidate_all:
        xcache = stored.while_refreshing(request.hmap, now)
        if xcache is not None:
            return REFRESHING[xcache]
    return on_stale(zone.cache, stored)


def to_https(request: Request) -> Redirect | None:
    """Where a plain-HTTP request is sent on `ssl.redirect`: the same host (without the
    plain listener's port) and target over https (on the HTTPS listener's port:
    `Redirect.location`); None for an ACME challenge."""
    target = request.target
    host = request.hmap.get("host", "")
    if not target.startswith("/"):  # absolute form (RFC 9112 §3.2.2): its own authority
        _, _, rest = target.partition("://")
        host, slash, path = rest.partition("/")
        target = slash + path
    if target.startswith(ACME_CHALLENGE) or not host:
        return None
    host = host.strip(" \t")
    name = host if host.endswith("]") or ":" not in host else host.rpartition(":")[0]
    status = 301 if request.method in CACHEABLE_METHODS else 308
    return Redirect(status, name, target or "/")


def on_stored(
    request: Request, policy: CachePolicy, stored: Entry | None, now: float, *, revalidate_all: int
) -> Deliver | Revalidate | Fetch:
    """`on_request` again once a fill is claimed: what is stored may have changed since the
    lookup (another fill completed, a purge applied)."""
    if stored is not None and not revalidate_all and stored.is_fresh(request.hmap, now):
        return DELIVER_HIT
    return on_stale(policy, stored)


def on_stale(policy: CachePolicy, stored: Entry | None) -> Revalidate | Fetch:
    """A stored response that may not be served as it is: validated when it has a
    validator and the zone revalidates (RFC 9111 §4.3.1), else fetched anew."""
    if stored is None:
        return FETCH_MISS
    if (
        policy.revalidate
        and stored.status in (200, 206)  # a slice revalidates as its own range
        and (stored.etag is not None or "last-modified" in stored.hmap)
    ):
        return REVALIDATE
    return FETCH_EXPIRED


# -- ACME HTTP-01 (RFC 8555 §8.3), before any zone -----------------------------------------

ACME_CHALLENGE_PREFIX: Final = "/.well-known/acme-challenge/"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A challenge of a certificate this CDN is ordering: 200 with the key authorization,
    whatever the Host (the CA asks each of the zone's names), never the origin."""

    key_authorization: str


def on_challenge(method: str, target: str, challenges: Mapping[str, str]) -> Challenge | None:
    """The answer to a request for `target` (origin-form) when it asks for one of the
    `challenges` being answered (token → key authorization), else None: the request is
    routed as any other (an origin's own `/.well-known/acme-challenge/` still works).
    Only targets that start with ACME_CHALLENGE_PREFIX come here: no other request
    pays for it."""
    if method not in CACHEABLE_METHODS or not challenges:
        return None
    token = target[len(ACME_CHALLENGE_PREFIX) :].partition("?")[0]
    key_authorization = challenges.get(token)
    return None if key_authorization is None else Challenge(key_authorization)


def _not_forwarded(request: Request, cdn_id: str) -> Answer | None:
    """Requests that must not reach the origin (checked only on the way to it: a HIT
    never pays for these)."""
    hmap = request.hmap
    if looped(hmap.get("cdn-loop"), cdn_id):
        # RFC 8586: the zone's origin leads back to this CDN; asking again would loop.
        return LOOP
    if request.method == "TRACE":
        # A TRACE echo would show the request's cookies and headers to scripts (cross-
        # site tracing); like most CDNs, the edge answers it itself, with a refusal.
        return NO_TRACE
    if request.method == "OPTIONS" and hmap.get("max-forwards", "").strip() == "0":
        return OPTIONS_HERE  # RFC 9110 §7.6.2: the last recipient answers for itself
    return None


def select_variant(entries: list[Entry], request: HeaderMap) -> Entry | None:
    """RFC 9111 §4.1: the stored response whose Vary'd request headers match."""
    for entry in entries:
        names = entry.vary_names
        if not names or vary_values(names, request) == entry.obj.head.vary_values:
            return entry
    return None


def validators(stored: Entry) -> list[tuple[str, str]]:
    """The conditional request fields that revalidate `stored` (RFC 9110 §13.1)."""
    fields = []
    if stored.etag:
        fields.append(("If-None-Match", stored.etag))
    if "last-modified" in stored.hmap:
        fields.append(("If-Modified-Since", stored.hmap["last-modified"]))
    return fields


# -- what to do with the origin's answer -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Store:
    """Store the response with this head while relaying it."""

    head: ResponseHead


@dataclass(frozen=True, slots=True)
class Refresh:
    """A 304 confirmed the stored response: store its updated head (RFC 9111 §4.3.4)."""

    head: ResponseHead


@dataclass(frozen=True, slots=True)
class Withdraw:
    """A 304 made the stored response unstorable (RFC 9111 §4.3.4, then §3: e.g. it now
    carries Set-Cookie or private): remove it; this client alone gets it, updated."""

    head: ResponseHead
    reason: NotStored


@dataclass(frozen=True, slots=True)
class ServeStale:
    """The origin failed; the stored response may stand in (RFC 9111 §4.2.4, RFC 5861)."""


@dataclass(frozen=True, slots=True)
class Fail:
    """The origin failed and nothing may stand in: answer `status`."""

    status: int


SERVE_STALE: Final = ServeStale()

OriginDecision = Store | Refresh | Withdraw | Pass | ServeStale | Fail


def on_origin_response(
    request: Request,
    path: str,
    policy: CachePolicy,
    stored: Entry | None,
    asked: Revalidate | Fetch,
    response: ResponseHead,
    limits: Limits,
    sliced: bool = False,
) -> OriginDecision:
    """What to do with the origin's `response` (its head) to a fill of `request` for
    `path`, asked as `asked` while `stored` was what the cache held; `sliced`: the fill
    asked for one slice of a large object (edge/slicing.py)."""
    if response.status == 206 and not sliced:
        return Pass(NotStored.STATUS)  # a part nobody asked for: never stored as the whole
    if response.status >= 500 and stored is not None and policy.usestale:
        # A failing origin with a stored copy at hand: that copy, where it may stand in
        # (proxy_cache_use_stale http_5xx, RFC 5861 stale-if-error).
        return on_origin_failure(stored, policy, response.status, response.response_time)
    if response.status == 304 and isinstance(asked, Revalidate) and stored is not None:
        updated = stored.obj.head.updated(
            response.headers, response.request_time, response.response_time
        )
        # The 304's headers are what the response is stored with now (RFC 9111 §3):
        # storable again, or withdrawn. A 304 to a Cookie'd visitor only confirms what
        # was stored before: it makes nothing personal.
        refused = unstorable_reason(request, path, policy, updated)
        return Refresh(updated) if refused is None else Withdraw(updated, refused)
    hmap = header_map(response.headers)
    refused = unstorable_reason(request, path, policy, response, hmap)
    if refused is None and personal(request.hmap, hmap):
        refused = NotStored.PERSONAL  # edge/deception.py
    if refused is not None:
        return Pass(refused)
    if not storable_length(response.length, limits):
        return Pass(NotStored.TOO_BIG)
    names = vary_names(hmap) or ()
    return Store(
        replace(
            response,
            vary_names=names,
            vary_values=vary_values(names, request.hmap),
            tags=tags(hmap),
        )
    )


def on_origin_failure(
    stored: Entry | None, policy: CachePolicy, status: int, now: float
) -> ServeStale | Fail:
    """The origin could not be reached, or answered `status` >= 500, at `now`."""
    if stored is not None and policy.usestale and stored.may_stand_in(now):
        return SERVE_STALE
    return Fail(status)


def unstorable_reason(
    request: Request,
    path: str,
    policy: CachePolicy,
    response: ResponseHead,
    hmap: HeaderMap | None = None,
) -> NotStored | None:
    """Why a response to a fill of `request` may not be stored (RFC 9111 §3 and the zone's
    policy), or None: decided for a response fetched whole, and again for a stored one
    once a 304 updated its headers. `hmap`: the response's header map, when made."""
    if hmap is None:
        hmap = header_map(response.headers)
    refused = unstorable(
        "GET",  # a HEAD is filled with a GET
        response.status,
        request.hmap,
        hmap,
        honour_origin=policy.cachecontrol,
        default_ttl=policy.cache_secs,
    )
    if refused is not None:
        return NotStored(refused)
    if disguised(path, hmap):  # `/account.php/x.css` answered with a page
        return NotStored.DISGUISED
    return None


def tags(hmap: HeaderMap) -> tuple[str, ...]:
    """Surrogate-Key is space-separated (Fastly), Cache-Tag comma-separated (Cloudflare)."""
    found = set((hmap.get("surrogate-key") or "").split())
    found.update(split_list(hmap.get("cache-tag")))
    return tuple(sorted(t for t in found if t))
