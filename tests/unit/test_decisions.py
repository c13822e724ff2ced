"""The edge's cache decisions (edge/decisions.py), branch by branch: no socket, no file, no
clock. Each RFC 9111 path the e2e tests drive through a real origin is decided here too."""

from __future__ import annotations

import pytest

from pullzone.cache.stored import ResponseHead, StoredObject
from pullzone.edge.bounds import Limits
from pullzone.edge.decisions import (
    DELIVER_HIT,
    FETCH_EXPIRED,
    FETCH_MISS,
    LOOP,
    NO_TRACE,
    NOT_CACHED,
    OPTIONS_HERE,
    PASS_METHOD,
    PASS_NO_STORE,
    REVALIDATE,
    SERVE_STALE,
    ZONE_DISABLED,
    Fail,
    Fetch,
    OriginDecision,
    Pass,
    Redirect,
    Refresh,
    Revalidate,
    Store,
    Withdraw,
    on_origin_failure,
    on_origin_response,
    on_request,
    on_stored,
    select_variant,
    to_https,
    validators,
)
from pullzone.edge.entry import Entry
from pullzone.edge.http import Request
from pullzone.edge.labels import NotStored
from pullzone.spec.freshness import Unstorable
from pullzone.spec.headers import header_map
from pullzone.zones.model import CachePolicy, SslPolicy, Zone

NOW = 1_800_000_000.0  # the clock, as the caller passes it
DATE = "Fri, 15 Jan 2027 08:00:00 GMT"  # NOW as an HTTP date
LIMITS = Limits(max_object=1024**3, max_cache=10 * 1024**3)
CDN = "cdn.example"


def request(method: str = "GET", **fields: str) -> Request:
    headers = [(name.replace("_", "-"), value) for name, value in fields.items()]
    return Request(method, "/a.css", headers, header_map(headers), "1.1", True, b"")


def zone(**policy: object) -> Zone:
    return Zone(1, "z", "z", "http://127.0.0.1:9", cache=CachePolicy(**policy))  # type: ignore[arg-type]


def head(status: int = 200, *fields: tuple[str, str], at: float = NOW) -> ResponseHead:
    return ResponseHead(status, "", tuple(fields), at, at, 10)


def stored(
    *fields: tuple[str, str],
    status: int = 200,
    at: float = NOW,
    policy: CachePolicy | None = None,
    purged: bool = False,
    vary: tuple[tuple[str, ...], tuple[str | None, ...]] = ((), ()),
) -> Entry:
    response = ResponseHead(status, "", tuple(fields), at, at, 10, vary[0], vary[1])
    obj = StoredObject("id", "kh", 1, "/a.css", "", response, 0, 10, 0)
    return Entry(obj, policy or CachePolicy(), "/nonexistent", 0, purged)


def decide(
    entry: Entry | None,
    req: Request | None = None,
    *,
    now: float = NOW,
    the_zone: Zone | None = None,
    revalidate_all: bool = False,
) -> object:
    return on_request(
        req or request(),
        the_zone or zone(),
        entry,
        now,
        revalidate_all=revalidate_all,
        cdn_id=CDN,
    )


def answer(
    response: ResponseHead,
    *,
    req: Request | None = None,
    entry: Entry | None = None,
    asked: Revalidate | Fetch = FETCH_MISS,
    path: str = "/a.css",
    policy: CachePolicy | None = None,
    limits: Limits = LIMITS,
    sliced: bool = False,
) -> OriginDecision:
    return on_origin_response(
        req or request(), path, policy or CachePolicy(), entry, asked, response, limits, sliced
    )


MAX_AGE_60 = ("Cache-Control", "max-age=60")
ETAG = ("ETag", '"v1"')
CSS = ("Content-Type", "text/css")


# -- on_request: serve, or ask the origin ------------------------------------------------


class TestFreshness:
    """RFC 9111 §4.2: a fresh stored response is served; a stale one is validated or
    fetched anew."""

    def test_fresh_is_a_hit_for_get_and_head(self) -> None:
        entry = stored(MAX_AGE_60)
        assert decide(entry, now=NOW + 59) is DELIVER_HIT
        assert decide(entry, request("HEAD"), now=NOW + 59) is DELIVER_HIT

    def test_nothing_stored_is_a_miss(self) -> None:
        assert decide(None) is FETCH_MISS

    def test_past_its_lifetime_with_a_validator_it_is_revalidated(self) -> None:
        assert decide(stored(MAX_AGE_60, ETAG), now=NOW + 60) is REVALIDATE
        last_modified = ("Last-Modified", DATE)
        assert decide(stored(MAX_AGE_60, last_modified), now=NOW + 61) is REVALIDATE

    def test_past_its_lifetime_without_a_validator_it_is_fetched_whole(self) -> None:
        assert decide(stored(MAX_AGE_60), now=NOW + 61) is FETCH_EXPIRED

    def test_zone_revalidate_n_fetches_expired_objects_whole(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        assert decide(entry, now=NOW + 61, the_zone=zone(revalidate=False)) is FETCH_EXPIRED

    def test_only_a_stored_200_is_revalidated(self) -> None:
        entry = stored(MAX_AGE_60, ETAG, status=404)
        assert decide(entry, now=NOW + 61) is FETCH_EXPIRED

    def test_age_counts_the_origins_age_header(self) -> None:  # RFC 9111 §4.2.3
        entry = stored(MAX_AGE_60, ("Age", "50"), ETAG)
        assert decide(entry, now=NOW + 9) is DELIVER_HIT
        assert decide(entry, now=NOW + 11) is REVALIDATE

    def test_s_maxage_overrides_max_age(self) -> None:  # RFC 9111 §5.2.2.10
        entry = stored(("Cache-Control", "max-age=5, s-maxage=100"))
        assert decide(entry, now=NOW + 50) is DELIVER_HIT

    def test_expires_gives_freshness(self) -> None:  # RFC 9111 §5.3
        entry = stored(("Date", DATE), ("Expires", "Fri, 15 Jan 2027 08:01:00 GMT"))
        assert decide(entry, now=NOW + 59) is DELIVER_HIT
        assert decide(entry, now=NOW + 61) is FETCH_EXPIRED

    def test_an_invalid_expires_is_already_stale(self) -> None:
        assert decide(stored(("Expires", "0")), now=NOW + 1) is FETCH_EXPIRED

    def test_heuristic_freshness_from_last_modified(self) -> None:  # RFC 9111 §4.2.2
        modified = ("Last-Modified", "Fri, 15 Jan 2027 07:00:00 GMT")  # an hour before
        entry = stored(("Date", DATE), modified, policy=CachePolicy(cache="0"))
        assert decide(entry, now=NOW + 359) is DELIVER_HIT  # 10 % of an hour
        assert decide(entry, now=NOW + 361) is REVALIDATE

    def test_the_zone_ttl_applies_without_origin_freshness(self) -> None:
        entry = stored(policy=CachePolicy(cache="1m"))
        assert decide(entry, now=NOW + 59) is DELIVER_HIT
        assert decide(entry, now=NOW + 61) is FETCH_EXPIRED

    def test_cachecontrol_n_ignores_the_origins_max_age(self) -> None:
        entry = stored(
            ("Cache-Control", "max-age=3600"), policy=CachePolicy(cache="1m", cachecontrol=False)
        )
        assert decide(entry, now=NOW + 61) is FETCH_EXPIRED

    def test_response_no_cache_is_always_validated(self) -> None:  # RFC 9111 §5.2.2.4
        entry = stored(("Cache-Control", "max-age=60, no-cache"), ETAG)
        assert decide(entry, now=NOW + 1) is REVALIDATE

    def test_a_clock_stepped_back_makes_the_age_unknown(self) -> None:
        entry = stored(("Cache-Control", "max-age=600"), ETAG)
        assert decide(entry, now=NOW + 10) is DELIVER_HIT
        assert decide(entry, now=NOW - 86400) is REVALIDATE


class TestRequestDirectives:
    """RFC 9111 §5.2.1 and §5.4: what the client asks of the cache."""

    def test_no_cache_forces_revalidation(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        assert decide(entry, request(cache_control="no-cache"), now=NOW + 1) is REVALIDATE

    def test_pragma_no_cache_counts_without_cache_control(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        assert decide(entry, request(pragma="no-cache"), now=NOW + 1) is REVALIDATE
        both = request(pragma="no-cache", cache_control="max-age=100")
        assert decide(entry, both, now=NOW + 1) is DELIVER_HIT

    def test_max_age_zero_forces_revalidation(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        assert decide(entry, request(cache_control="max-age=0"), now=NOW + 1) is REVALIDATE
        assert decide(entry, request(cache_control="max-age=10"), now=NOW + 5) is DELIVER_HIT

    def test_min_fresh(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        assert decide(entry, request(cache_control="min-fresh=30"), now=NOW + 20) is DELIVER_HIT
        assert decide(entry, request(cache_control="min-fresh=30"), now=NOW + 40) is REVALIDATE

    def test_only_if_cached_without_a_fresh_copy_is_504(self) -> None:  # §5.2.1.7
        only = request(cache_control="only-if-cached")
        assert decide(None, only) is NOT_CACHED
        assert decide(stored(MAX_AGE_60), only, now=NOW + 61) is NOT_CACHED
        assert decide(stored(MAX_AGE_60), only, now=NOW + 1) is DELIVER_HIT

    def test_no_store_is_passed_and_never_served_from_the_cache(self) -> None:  # §5.2.1.5
        no_store = request(cache_control="no-store")
        assert decide(None, no_store) is PASS_NO_STORE
        assert decide(stored(MAX_AGE_60), no_store, now=NOW + 61) is PASS_NO_STORE


class TestEdgeRules:
    def test_a_disabled_zone_is_403_even_for_a_fresh_object(self) -> None:
        assert decide(stored(MAX_AGE_60), the_zone=zone(), now=NOW + 1) is DELIVER_HIT
        disabled = Zone(1, "z", "z", "http://127.0.0.1:9", disabled=True)
        assert decide(stored(MAX_AGE_60), the_zone=disabled, now=NOW + 1) is ZONE_DISABLED

    def test_a_purged_object_is_revalidated_before_use(self) -> None:  # a soft purge
        assert decide(stored(MAX_AGE_60, ETAG, purged=True), now=NOW + 1) is REVALIDATE

    def test_a_node_out_of_touch_serves_nothing_unvalidated(self) -> None:
        assert decide(stored(MAX_AGE_60, ETAG), now=NOW + 1, revalidate_all=True) is REVALIDATE

    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    def test_other_methods_are_passed(self, method: str) -> None:  # RFC 9111 §3
        assert decide(stored(MAX_AGE_60), request(method), now=NOW + 1) is PASS_METHOD

    def test_trace_is_refused(self) -> None:
        assert decide(None, request("TRACE")) is NO_TRACE

    def test_options_with_max_forwards_zero_is_answered_here(self) -> None:  # §7.6.2
        assert decide(None, request("OPTIONS", max_forwards="0")) is OPTIONS_HERE
        assert decide(None, request("OPTIONS", max_forwards="1")) is PASS_METHOD

    def test_a_request_that_looped_through_this_cdn_is_508_on_the_way_to_the_origin(
        self,
    ) -> None:  # RFC 8586
        looped = request(cdn_loop=f"other, {CDN}")
        assert decide(None, looped) is LOOP
        assert decide(None, request("POST", cdn_loop=CDN)) is LOOP
        assert decide(stored(MAX_AGE_60), looped, now=NOW + 1) is DELIVER_HIT  # no origin

    def test_on_stored_decides_again_under_the_claim(self) -> None:
        policy = CachePolicy()
        assert on_stored(request(), policy, None, NOW, revalidate_all=False) is FETCH_MISS
        fresh = stored(MAX_AGE_60)
        assert on_stored(request(), policy, fresh, NOW + 1, revalidate_all=False) is DELIVER_HIT
        assert on_stored(request(), policy, fresh, NOW + 1, revalidate_all=True) is FETCH_EXPIRED


class TestVariants:
    """RFC 9111 §4.1: the stored response whose Vary'd request fields match."""

    def test_the_matching_variant_is_selected(self) -> None:
        gzip = stored(("Vary", "Accept-Encoding"), vary=(("accept-encoding",), ("gzip",)))
        plain = stored(("Vary", "Accept-Encoding"), vary=(("accept-encoding",), ("identity",)))
        entries = [gzip, plain]
        assert select_variant(entries, {"accept-encoding": "gzip"}) is gzip
        assert select_variant(entries, {"accept-encoding": "gzip, deflate"}) is gzip
        assert select_variant(entries, {}) is plain
        assert select_variant(entries, {"accept-encoding": "br"}) is None

    def test_a_response_without_vary_matches_every_request(self) -> None:
        entry = stored()
        assert select_variant([entry], {"accept-encoding": "br"}) is entry

    def test_validators_are_the_stored_etag_and_last_modified(self) -> None:
        entry = stored(ETAG, ("Last-Modified", DATE))
        assert validators(entry) == [("If-None-Match", '"v1"'), ("If-Modified-Since", DATE)]
        assert validators(stored()) == []


# -- on_origin_response: store, refresh, or relay ----------------------------------------


class TestStoring:
    def test_a_cacheable_response_is_stored_with_its_variant_and_tags(self) -> None:
        response = head(
            200,
            MAX_AGE_60,
            ("Vary", "Accept-Encoding"),
            ("Surrogate-Key", "red blue"),
            ("Cache-Tag", "green, red"),
        )
        decision = answer(response, req=request(accept_encoding="gzip"))
        assert isinstance(decision, Store)
        assert decision.head.vary_names == ("accept-encoding",)
        assert decision.head.vary_values == ("gzip",)
        assert decision.head.tags == ("blue", "green", "red")
        assert decision.head.headers == response.headers

    @pytest.mark.parametrize(
        ("fields", "reason"),
        [
            ((MAX_AGE_60, ("Set-Cookie", "s=1")), NotStored.SET_COOKIE),
            ((("Cache-Control", "private, max-age=60"),), NotStored.PRIVATE),
            ((("Cache-Control", "no-store"),), NotStored.NO_STORE),
            ((MAX_AGE_60, ("Vary", "*")), NotStored.VARY_STAR),
        ],
    )
    def test_responses_a_shared_cache_must_not_store(
        self, fields: tuple[tuple[str, str], ...], reason: NotStored
    ) -> None:  # RFC 9111 §3
        assert answer(head(200, *fields)) == Pass(reason)

    def test_a_part_is_stored_only_as_a_slice_asked_for(self) -> None:
        part = head(206, MAX_AGE_60, ("Content-Range", "bytes 0-9/100"))
        assert answer(part) == Pass(NotStored.STATUS)
        assert isinstance(answer(part, sliced=True), Store)

    def test_an_unknown_status_is_not_stored(self) -> None:
        assert answer(head(201, MAX_AGE_60)) == Pass(NotStored.STATUS)

    def test_an_authorized_request_needs_public(self) -> None:  # RFC 9111 §3.5
        authorized = request(authorization="Basic eDp5")
        assert answer(head(200, MAX_AGE_60), req=authorized) == Pass(NotStored.AUTHORIZATION)
        public = head(200, ("Cache-Control", "public, max-age=60"))
        assert isinstance(answer(public, req=authorized), Store)

    def test_no_lifetime_and_no_zone_ttl_is_not_stored(self) -> None:
        response = head(302)
        assert answer(response, policy=CachePolicy(cache="0")) == Pass(NotStored.NO_LIFETIME)
        assert isinstance(answer(response, policy=CachePolicy(cache="1h")), Store)

    def test_must_understand_overrides_no_store(self) -> None:  # RFC 9111 §5.2.2.3
        response = head(200, ("Cache-Control", "no-store, must-understand, max-age=60"))
        assert isinstance(answer(response), Store)

    def test_a_page_for_a_static_looking_path_is_not_stored(self) -> None:
        page = head(200, ("Content-Type", "text/html"))
        assert answer(page, path="/account.php/x.css") == Pass(NotStored.DISGUISED)

    def test_a_cookied_visitors_page_without_a_lifetime_is_not_stored(self) -> None:
        page = head(200, ("Content-Type", "text/html"))
        assert answer(page, path="/page", req=request(cookie="s=1")) == Pass(NotStored.PERSONAL)
        assert isinstance(answer(head(200, CSS), req=request(cookie="s=1")), Store)

    def test_a_response_over_the_size_limit_is_relayed(self) -> None:
        small = Limits(max_object=5, max_cache=100)
        assert answer(head(200, MAX_AGE_60), limits=small) == Pass(NotStored.TOO_BIG)

    def test_every_reason_the_rfc_rules_give_is_a_label(self) -> None:
        for reason in Unstorable.__args__:  # type: ignore[attr-defined]
            assert NotStored(reason).value == reason


class TestRevalidation:
    """RFC 9111 §4.3.3-4.3.4: what a 304 does to the stored response."""

    def test_a_304_refreshes_the_stored_head(self) -> None:
        entry = stored(MAX_AGE_60, ETAG, ("Content-Length", "10"), ("X-Old", "1"), at=NOW)
        response = head(304, ("Cache-Control", "max-age=120"), ("Content-Length", "0"), at=NOW + 70)
        decision = answer(response, entry=entry, asked=REVALIDATE)
        assert isinstance(decision, Refresh)
        fields = dict(decision.head.headers)
        assert fields["Cache-Control"] == "max-age=120"
        assert fields["Content-Length"] == "10"  # describes the stored body, kept
        assert fields["X-Old"] == "1" and fields["ETag"] == '"v1"'
        assert decision.head.response_time == NOW + 70
        assert decision.head.status == 200

    def test_a_304_that_makes_it_unstorable_withdraws_it(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        response = head(304, ("Set-Cookie", "s=1"))
        decision = answer(response, entry=entry, asked=REVALIDATE)
        assert isinstance(decision, Withdraw)
        assert decision.reason is NotStored.SET_COOKIE
        assert ("Set-Cookie", "s=1") in decision.head.headers

    def test_a_200_to_a_revalidation_replaces_the_stored_response(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        assert isinstance(answer(head(200, MAX_AGE_60), entry=entry, asked=REVALIDATE), Store)


class TestFailures:
    """RFC 9111 §4.2.4 and RFC 5861 stale-if-error, as the zone's `usestale`."""

    def test_a_5xx_with_a_stored_copy_serves_it_stale(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        assert answer(head(503), entry=entry, asked=REVALIDATE) is SERVE_STALE

    def test_must_revalidate_forbids_serving_it_stale(self) -> None:
        entry = stored(("Cache-Control", "max-age=60, must-revalidate"), ETAG)
        assert answer(head(503), entry=entry, asked=REVALIDATE) == Fail(503)

    def test_usestale_n_relays_the_origins_5xx(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        policy = CachePolicy(usestale=False)
        decision = answer(head(503), entry=entry, asked=REVALIDATE, policy=policy)
        assert decision == Pass(NotStored.STATUS)

    def test_an_unreachable_origin(self) -> None:
        entry = stored(MAX_AGE_60, ETAG)
        now = entry.response_time + 3600  # long expired
        assert on_origin_failure(entry, CachePolicy(), 502, now) is SERVE_STALE
        assert on_origin_failure(None, CachePolicy(), 502, now) == Fail(502)
        assert on_origin_failure(entry, CachePolicy(usestale=False), 504, now) == Fail(504)

    def test_stale_if_error_bounds_the_stand_in(self) -> None:
        """RFC 5861 §4: a stale copy stands in for N seconds past its lifetime."""
        entry = stored(("Cache-Control", "max-age=60, stale-if-error=30"), ETAG)
        at = entry.response_time
        assert on_origin_failure(entry, CachePolicy(), 502, at + 80) is SERVE_STALE
        assert on_origin_failure(entry, CachePolicy(), 502, at + 91) == Fail(502)


# -- on_request: HTTPS only (the zone's ssl.redirect) ------------------------------------


class TestRedirectToHttps:
    """`ssl.redirect=Y`: plain HTTP is sent to the same URL over https, before anything
    else (a HIT too); HTTPS requests and ACME HTTP-01 challenges are not."""

    @staticmethod
    def https_zone(**ssl: bool) -> Zone:
        policy = SslPolicy(**{"enabled": True, "redirect": True, "certid": 7, **ssl})
        return Zone(1, "z", "z", "http://127.0.0.1:9", ssl=policy)

    @staticmethod
    def req(method: str = "GET", target: str = "/a.css?v=1", scheme: str = "http") -> Request:
        headers = [("Host", "www.example.com:8080")]
        return Request(method, target, headers, header_map(headers), "1.1", True, b"", scheme)

    def test_get_and_head_are_301_to_the_same_url_over_https(self) -> None:
        for method in ("GET", "HEAD"):
            decision = decide(stored(MAX_AGE_60), self.req(method), the_zone=self.https_zone())
            assert decision == Redirect(301, "www.example.com", "/a.css?v=1")
            assert isinstance(decision, Redirect)
            assert decision.location() == "https://www.example.com/a.css?v=1"

    def test_other_methods_are_308(self) -> None:
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            decision = decide(None, self.req(method), the_zone=self.https_zone())
            assert decision == Redirect(308, "www.example.com", "/a.css?v=1")

    def test_the_https_listeners_port_is_in_the_location_unless_443(self) -> None:
        redirect = to_https(self.req())
        assert redirect is not None
        assert redirect.location(8443) == "https://www.example.com:8443/a.css?v=1"
        assert redirect.location(443) == "https://www.example.com/a.css?v=1"
        v6 = [("Host", "[::1]:8080")]
        req = Request("GET", "/x", v6, header_map(v6), "1.1", True, b"", "http")
        assert to_https(req) == Redirect(301, "[::1]", "/x")
        assert Redirect(301, "[::1]", "/x").location(8443) == "https://[::1]:8443/x"
        assert Redirect(301, "[::1]", "/x").location(443) == "https://[::1]/x"

    def test_an_absolute_form_target_keeps_its_path(self) -> None:
        req = self.req(target="http://www.example.com/b?x")
        assert decide(None, req, the_zone=self.https_zone()) == Redirect(
            301, "www.example.com", "/b?x"
        )

    def test_https_requests_are_served(self) -> None:
        req = self.req(scheme="https")
        assert decide(stored(MAX_AGE_60), req, the_zone=self.https_zone()) is DELIVER_HIT

    def test_acme_challenges_are_answered_over_plain_http(self) -> None:
        req = self.req(target="/.well-known/acme-challenge/tok3n")
        assert decide(None, req, the_zone=self.https_zone()) is FETCH_MISS

    def test_no_redirect_without_it_or_without_https(self) -> None:
        assert decide(None, self.req(), the_zone=self.https_zone(redirect=False)) is FETCH_MISS
        assert decide(None, self.req(), the_zone=self.https_zone(enabled=False)) is FETCH_MISS

    def test_a_disabled_zone_is_403_first(self) -> None:
        zone_off = Zone(1, "z", "z", "http://x", disabled=True, ssl=SslPolicy(True, redirect=True))
        assert decide(None, self.req(), the_zone=zone_off) is ZONE_DISABLED
