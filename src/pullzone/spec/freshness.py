"""Storing, freshness, age and reuse for a shared cache (RFC 9111 §3, §4).

The response directives are those of `targeted.response_directives`: CDN-Cache-Control
or Surrogate-Control when the origin sent one (RFC 9213), else Cache-Control."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from pullzone.spec.cache_control import delta_seconds, parse_cache_control
from pullzone.spec.dates import parse_http_date
from pullzone.spec.headers import HeaderMap, split_list
from pullzone.spec.targeted import has_expires, response_directives

# RFC 9110 §15.1: status codes that are heuristically cacheable.
HEURISTICALLY_CACHEABLE: frozenset[int] = frozenset(
    {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501}
)
# Statuses this cache stores at all (RFC 9111 §3: "the cache understands the response
# status code"). A 206 only as a slice the edge asked for (edge/slicing.py, RFC 9111 §3.3).
UNDERSTOOD_STATUSES: frozenset[int] = frozenset(
    {200, 203, 204, 206, 300, 301, 302, 307, 308, 404, 405, 410, 414, 501}
)
# Server errors stored only when the origin gives them a lifetime of their own (RFC 9111
# §3 allows it; an origin shedding load with `503, max-age=5` asks for exactly that).
EXPLICIT_ONLY_STATUSES: frozenset[int] = frozenset({500, 502, 503, 504})

# Negative caching: an error response (4xx, 5xx) without explicit freshness lives at most
# this long, whatever the zone's TTL (which is meant for content): a 404 from a deploy
# in progress must not stay for the zone's 4 hours. Cloudflare's default for 404 and 410.
NEGATIVE_TTL = 180.0

FRESH: Final = "fresh"
STALE: Final = "stale"  # must be validated with the origin before use

# RFC 9111 §4.2.2: heuristic freshness is at most this (and 10 % of the age of
# Last-Modified, as the RFC suggests).
HEURISTIC_FRACTION = 0.1
HEURISTIC_MAX = 86400.0


# Why `unstorable` refuses a response; the edge counts them (edge/labels.py NotStored).
Unstorable = Literal[
    "method",
    "status",
    "set_cookie",
    "request_no_store",
    "private",
    "no_store",
    "vary_star",
    "authorization",
    "no_lifetime",
]


def unstorable(
    method: str,
    status: int,
    req: HeaderMap,
    resp: HeaderMap,
    *,
    honour_origin: bool,
    default_ttl: int,
) -> Unstorable | None:
    """Why a response may not be stored, or None when it may: RFC 9111 §3 for a shared
    cache, plus this CDN's policy (never store Set-Cookie).

    `honour_origin=False` ignores the origin's freshness directives (max-age, s-maxage,
    Expires, no-cache, must-revalidate, proxy-revalidate, public); `no-store`, `private`
    and Set-Cookie still keep a response out of the cache.
    """
    # RFC 9111 §3: the request method is understood by the cache (HEAD is mapped to GET
    # by callers); the status code is understood.
    if method != "GET":
        return "method"
    if status not in UNDERSTOOD_STATUSES and status not in EXPLICIT_ONLY_STATUSES:
        return "status"
    # Policy: a response that sets a cookie is someone's session; never share it.
    if "set-cookie" in resp:
        return "set_cookie"
    req_cc_value = req.get("cache-control")
    # RFC 9111 §5.2.1.5: request no-store.
    if req_cc_value and "no-store" in parse_cache_control(req_cc_value):
        return "request_no_store"
    directives = response_directives(resp)
    cc = directives.cc
    # RFC 9111 §5.2.2.7: a shared cache never stores a private response. A qualified
    # private="field" is treated like the unqualified form (the safe reading).
    if "private" in cc:
        return "private"
    # RFC 9111 §5.2.2.5: no-store; §5.2.2.3: a cache that understands the status code
    # SHOULD ignore no-store when must-understand is present (status checked above).
    if "no-store" in cc and not (honour_origin and "must-understand" in cc):
        return "no_store"
    # RFC 9111 §4.1: Vary "*" never matches a later request; storing it is useless.
    vary = resp.get("vary")
    if vary and "*" in split_list(vary):
        return "vary_star"
    # RFC 9111 §3.5: a shared cache stores a response to an authorized request only when
    # the response allows it explicitly.
    if "authorization" in req and not (
        honour_origin and ("public" in cc or "s-maxage" in cc or "must-revalidate" in cc)
    ):
        return "authorization"
    explicit = "s-maxage" in cc or "max-age" in cc or has_expires(resp, directives)
    if status in EXPLICIT_ONLY_STATUSES:
        return None if honour_origin and explicit else "status"
    if not honour_origin:
        return None  # the zone's TTL (or heuristics) decides how long; status understood
    # RFC 9111 §3: explicit freshness, public, or a heuristically cacheable status.
    if "public" in cc or explicit:
        return None
    if status in HEURISTICALLY_CACHEABLE:
        return None
    # The zone's edge TTL acts as a cache-configured freshness for the rest.
    return None if default_ttl > 0 else "no_lifetime"


def _heuristic(status: int, resp: HeaderMap, response_time: float) -> float:
    """RFC 9111 §4.2.2: a fraction of the time since Last-Modified, capped."""
    if status not in HEURISTICALLY_CACHEABLE:
        return 0.0
    last_modified = parse_http_date(resp.get("last-modified"))
    if last_modified is None:
        return 0.0
    date = parse_http_date(resp.get("date"))
    if date is None:
        date = response_time
    return max(0.0, min(HEURISTIC_MAX, (date - last_modified) * HEURISTIC_FRACTION))


def freshness_lifetime(
    status: int,
    resp: HeaderMap,
    *,
    honour_origin: bool,
    default_ttl: int,
    response_time: float,
) -> float:
    """RFC 9111 §4.2.1 for a shared cache, in seconds.

    Invalid explicit freshness (e.g. `max-age=abc`, an unparsable Expires) gives 0: RFC
    9111 §4.2.1 encourages treating it as stale. Without explicit freshness the zone's
    `default_ttl` applies when set, else the heuristic of §4.2.2; for an error status
    (negative caching) at most NEGATIVE_TTL.
    """
    if honour_origin:
        directives = response_directives(resp)
        cc = directives.cc
        # RFC 9111 §5.2.2.10: s-maxage overrides max-age and Expires in a shared cache.
        if "s-maxage" in cc:
            return float(delta_seconds(cc["s-maxage"]) or 0)
        # RFC 9111 §5.2.2.1: max-age overrides Expires.
        if "max-age" in cc:
            return float(delta_seconds(cc["max-age"]) or 0)
        # RFC 9111 §5.3: Expires - Date; an invalid Expires (e.g. "0") is in the past.
        expires_value = resp.get("expires") if has_expires(resp, directives) else None
        if expires_value is not None:
            expires = parse_http_date(expires_value)
            if expires is None:
                return 0.0
            date = parse_http_date(resp.get("date"))
            if date is None:  # RFC 9110 §6.6.1: no Date → the time it was received
                date = response_time
            return max(0.0, expires - date)
    implicit = float(default_ttl) if default_ttl > 0 else _heuristic(status, resp, response_time)
    return min(implicit, NEGATIVE_TTL) if status >= 400 else implicit


def age_field(value: str | None) -> int:
    """RFC 9111 §5.1: the first member of an Age list (two Age lines arrive joined as
    one list); an invalid value (not a non-negative integer) is ignored: 0."""
    if value is None:
        return 0
    return delta_seconds(value.split(",", 1)[0].strip()) or 0


CLOCK_SKEW = 1.0  # seconds the clock may step back before stored ages are unknown


def current_age(resp: HeaderMap, *, request_time: float, response_time: float, now: float) -> float:
    """RFC 9111 §4.2.3, term by term. A response received "in the future" (the clock went
    back since) has an unknown age: infinite, so it is revalidated rather than kept fresh
    for as long as the clock was off (a clock set back years must not make it immortal)."""
    if now < response_time - CLOCK_SKEW:
        return math.inf
    age_value = age_field(resp.get("age"))
    date_value = parse_http_date(resp.get("date"))
    if date_value is None:  # RFC 9110 §6.6.1: a missing Date is the time of receipt
        date_value = response_time
    apparent_age = max(0.0, response_time - date_value)
    response_delay = response_time - request_time
    corrected_age_value = age_value + response_delay
    corrected_initial_age = max(apparent_age, corrected_age_value)
    resident_time = now - response_time
    return corrected_initial_age + resident_time


@dataclass(frozen=True, slots=True)
class Freshness:
    """A stored response's freshness, worked out once when it is loaded."""

    lifetime: float  # RFC 9111 §4.2.1
    initial_age: float  # RFC 9111 §4.2.3: corrected_initial_age
    always_validate: bool  # RFC 9111 §5.2.2.4: no-cache (when the origin is honoured)
    # RFC 9111 §4.2 for a request without Cache-Control or Pragma, as a window of clock
    # time: fresh while fresh_from <= now < fresh_until. `fresh_from` is the response
    # time less CLOCK_SKEW: a clock stepped back further makes the age unknown.
    fresh_from: float
    fresh_until: float


def freshness(
    status: int,
    resp: HeaderMap,
    *,
    request_time: float,
    response_time: float,
    honour_origin: bool,
    default_ttl: int,
) -> Freshness:
    lifetime = freshness_lifetime(
        status,
        resp,
        honour_origin=honour_origin,
        default_ttl=default_ttl,
        response_time=response_time,
    )
    initial_age = current_age(
        resp, request_time=request_time, response_time=response_time, now=response_time
    )
    always_validate = honour_origin and "no-cache" in response_directives(resp).cc
    if always_validate:
        return Freshness(lifetime, initial_age, True, 0.0, 0.0)
    return Freshness(
        lifetime,
        initial_age,
        False,
        response_time - CLOCK_SKEW,
        response_time + lifetime - initial_age,
    )


def reuse(
    resp: HeaderMap,
    req: HeaderMap,
    *,
    lifetime: float,
    age: float,
    honour_origin: bool,
) -> str:
    """FRESH when a stored response may be served for `req` without contacting the origin,
    else STALE (validate first). RFC 9111 §4, §4.2, §5.2.1, §5.2.2.4, §5.4.

    A shared cache may ignore the request's max-stale (RFC 9111 §5.2.1.2: "MAY"), and
    this one does: a STALE answer is never turned into a reuse here. That also means a
    stale response carrying must-revalidate, proxy-revalidate or s-maxage is never
    served without validation (§5.2.2.2, §5.2.2.8, §5.2.2.10).
    """
    # RFC 9111 §4.2: fresh while the age is below the freshness lifetime.
    if age >= lifetime:
        return STALE
    # RFC 9111 §5.2.2.4: response no-cache. A qualified no-cache="field" would allow
    # reuse without those fields; treated as unqualified (always validate), the safe side.
    if honour_origin and "no-cache" in response_directives(resp).cc:
        return STALE
    req_cc_value = req.get("cache-control")
    if req_cc_value is None:
        # RFC 9111 §5.4: Pragma: no-cache counts only without a request Cache-Control.
        pragma = req.get("pragma")
        if pragma and any(t.lower() == "no-cache" for t in split_list(pragma)):
            return STALE
        return FRESH
    cc = parse_cache_control(req_cc_value)
    # RFC 9111 §5.2.1.4: request no-cache.
    if "no-cache" in cc:
        return STALE
    # RFC 9111 §5.2.1.1: request max-age — the client wants an age <= N.
    if "max-age" in cc:
        max_age = delta_seconds(cc["max-age"])
        if max_age is not None and age > max_age:
            return STALE
    # RFC 9111 §5.2.1.3: request min-fresh — still fresh for at least N more seconds.
    if "min-fresh" in cc:
        min_fresh = delta_seconds(cc["min-fresh"])
        if min_fresh is not None and lifetime - age < min_fresh:
            return STALE
    return FRESH


@dataclass(frozen=True, slots=True)
class StaleWindows:
    """How long past its freshness lifetime a stored response may still be served, in
    seconds (RFC 5861): while it is revalidated in the background, and in place of an
    origin that fails (math.inf: for as long as it is stored)."""

    while_revalidate: float
    if_error: float


NO_STALE: Final = StaleWindows(0.0, 0.0)
STALE_ON_ERROR: Final = StaleWindows(0.0, math.inf)


def stale_windows(resp: HeaderMap, *, honour_origin: bool, usestale: bool) -> StaleWindows:
    """The windows of RFC 5861 for a stored response, under the zone's `usestale` (the
    operator's switch for every stale answer) and `cachecontrol` (`honour_origin`).

    - `stale-while-revalidate=N` (§3): served stale for N seconds while one background
      revalidation runs. Without it nothing is served stale before the origin answers.
    - `stale-if-error=N` (§4): standing in for a failing origin for N seconds. Without
      it a stale copy stands in for as long as it is stored (the zone's usestale, as
      nginx's proxy_cache_use_stale error).
    - RFC 9111 §4.2.4: never when an in-protocol directive forbids it: must-revalidate
      (§5.2.2.2), proxy-revalidate (§5.2.2.8), no-cache (§5.2.2.4). s-maxage (§5.2.2.10)
      implies proxy-revalidate, which an explicit stale-* directive from the same origin
      lifts: `s-maxage=60, stale-while-revalidate=600` (what Next.js and Vercel send) is
      asking for exactly that, and Cloudflare and Fastly honour it so.
    - With the origin's directives ignored (`cachecontrol=N`), only usestale counts.
    """
    if not usestale:
        return NO_STALE
    if not honour_origin:
        return STALE_ON_ERROR
    cc = response_directives(resp).cc
    if "must-revalidate" in cc or "proxy-revalidate" in cc or "no-cache" in cc:
        return NO_STALE
    revalidate = float(delta_seconds(cc.get("stale-while-revalidate")) or 0)
    if "stale-if-error" in cc:
        on_error = float(delta_seconds(cc["stale-if-error"]) or 0)
    else:
        on_error = 0.0 if "s-maxage" in cc else math.inf
    return StaleWindows(revalidate, on_error)


def client_cache_control(resp_cc_value: str | None, expiry: int) -> str | None:
    """The Cache-Control clients see: the zone's `expiry` (seconds) when set, replacing
    the origin's, else the origin's value unchanged."""
    if expiry > 0:
        return f"max-age={expiry}"
    return resp_cc_value
