"""Storing, freshness lifetime, age and reuse for a shared cache (RFC 9111 §3, §4)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullzone.spec.dates import format_http_date
from pullzone.spec.freshness import (
    CLOCK_SKEW,
    FRESH,
    HEURISTICALLY_CACHEABLE,
    NEGATIVE_TTL,
    STALE,
    UNDERSTOOD_STATUSES,
    StaleWindows,
    client_cache_control,
    current_age,
    freshness,
    freshness_lifetime,
    reuse,
    stale_windows,
    unstorable,
)
from pullzone.spec.headers import HeaderMap

NOW = 1_700_000_000.0
DATE = format_http_date(NOW)


def can_store(
    resp: HeaderMap,
    req: HeaderMap | None = None,
    *,
    status: int = 200,
    method: str = "GET",
    honour_origin: bool = True,
    default_ttl: int = 0,
) -> bool:
    refused = unstorable(
        method,
        status,
        req or {},
        resp,
        honour_origin=honour_origin,
        default_ttl=default_ttl,
    )
    return refused is None


def lifetime(
    resp: HeaderMap,
    *,
    status: int = 200,
    honour_origin: bool = True,
    default_ttl: int = 0,
    response_time: float = NOW,
) -> float:
    return freshness_lifetime(
        status,
        resp,
        honour_origin=honour_origin,
        default_ttl=default_ttl,
        response_time=response_time,
    )


def decide(
    req: HeaderMap,
    resp: HeaderMap | None = None,
    *,
    life: float = 100,
    age: float = 10,
    honour_origin: bool = True,
) -> str:
    return reuse(resp or {}, req, lifetime=life, age=age, honour_origin=honour_origin)


# -- constants ---------------------------------------------------------------------------


def test_status_sets_match_rfc_9110() -> None:
    rfc_9110 = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501}
    assert rfc_9110 == HEURISTICALLY_CACHEABLE
    # A 206 is understood as a slice (edge/slicing.py); decisions.on_origin_response
    # refuses one that was not asked for.
    assert HEURISTICALLY_CACHEABLE | {302, 307} == UNDERSTOOD_STATUSES


# -- storable ------------------------------------------------------------------------------


def test_plain_200_is_storable_as_heuristically_cacheable() -> None:
    assert can_store({})


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "get"])
def test_only_get_is_storable(method: str) -> None:
    assert not can_store({"cache-control": "max-age=60"}, method=method)


@pytest.mark.parametrize("status", [304, 400, 403, 201])
def test_statuses_not_understood_are_never_stored(status: int) -> None:
    assert not can_store({"cache-control": "public, max-age=60"}, status=status, default_ttl=60)


def test_response_no_store_prevents_storing() -> None:
    assert not can_store({"cache-control": "max-age=60, no-store"})


def test_request_no_store_prevents_storing() -> None:
    assert not can_store({"cache-control": "max-age=60"}, {"cache-control": "no-store"})


def test_private_prevents_storing_in_a_shared_cache_even_when_qualified() -> None:
    assert not can_store({"cache-control": "private, max-age=60"})
    assert not can_store({"cache-control": 'private="x-user", max-age=60'})


def test_set_cookie_prevents_storing_even_with_public() -> None:
    assert not can_store({"cache-control": "public, max-age=60", "set-cookie": "id=1"})


@pytest.mark.parametrize("vary", ["*", "Accept-Encoding, *", " * "])
def test_vary_star_prevents_storing(vary: str) -> None:
    assert not can_store({"cache-control": "max-age=60", "vary": vary})


def test_vary_on_named_fields_is_storable() -> None:
    assert can_store({"cache-control": "max-age=60", "vary": "Accept-Encoding"})


def test_authorized_request_is_not_stored_without_explicit_permission() -> None:
    assert not can_store({"cache-control": "max-age=60"}, {"authorization": "Bearer x"})


@pytest.mark.parametrize("cc", ["public", "s-maxage=60", "must-revalidate, max-age=5"])
def test_authorized_request_is_stored_with_public_s_maxage_or_must_revalidate(cc: str) -> None:
    assert can_store({"cache-control": cc}, {"authorization": "Bearer x"})


def test_authorized_request_is_not_stored_when_origin_directives_are_ignored() -> None:
    resp = {"cache-control": "public, max-age=60"}
    assert not can_store(resp, {"authorization": "Bearer x"}, honour_origin=False)


@pytest.mark.parametrize(
    "resp",
    [
        {"cache-control": "max-age=60"},
        {"cache-control": "s-maxage=60"},
        {"cache-control": "public"},
        {"expires": "Thu, 01 Jan 2099 00:00:00 GMT"},
        {"expires": "0"},  # present, though invalid: stored as already stale
    ],
)
def test_explicit_freshness_makes_a_302_storable(resp: HeaderMap) -> None:
    assert can_store(resp, status=302)


def test_302_without_freshness_needs_a_zone_ttl() -> None:
    assert not can_store({}, status=302)
    assert can_store({}, status=302, default_ttl=60)


def test_no_cache_alone_does_not_make_a_307_storable() -> None:
    assert not can_store({"cache-control": "no-cache"}, status=307)


def test_heuristically_cacheable_404_is_storable_without_freshness() -> None:
    assert can_store({}, status=404)


def test_must_understand_lets_an_understood_status_override_no_store() -> None:
    assert can_store({"cache-control": "no-store, must-understand, max-age=60"})
    assert not can_store(
        {"cache-control": "no-store, must-understand, max-age=60"}, honour_origin=False
    )


@pytest.mark.parametrize(
    "resp",
    [
        {"cache-control": "no-store"},
        {"cache-control": "private"},
        {"set-cookie": "a=b"},
        {"vary": "*"},
    ],
)
def test_safety_rules_hold_when_origin_freshness_is_ignored(resp: HeaderMap) -> None:
    assert not can_store(resp, honour_origin=False, default_ttl=3600)


@pytest.mark.parametrize("status", sorted(UNDERSTOOD_STATUSES))
def test_ignoring_the_origin_stores_every_understood_status(status: int) -> None:
    assert can_store({"cache-control": "no-cache"}, status=status, honour_origin=False)


# -- freshness lifetime ------------------------------------------------------------------


def test_s_maxage_overrides_max_age_for_shared_cache() -> None:
    assert lifetime({"cache-control": "max-age=10, s-maxage=500"}) == 500


def test_max_age_overrides_expires() -> None:
    resp = {"cache-control": "max-age=10", "date": DATE, "expires": format_http_date(NOW + 900)}
    assert lifetime(resp) == 10


def test_expires_minus_date_is_the_lifetime() -> None:
    resp = {"date": format_http_date(NOW - 50), "expires": format_http_date(NOW + 250)}
    assert lifetime(resp) == 300


def test_expires_without_date_counts_from_the_response_time() -> None:
    resp = {"expires": format_http_date(NOW + 120)}
    assert lifetime(resp, response_time=NOW) == 120


def test_expires_in_the_past_gives_zero_not_negative() -> None:
    resp = {"date": DATE, "expires": format_http_date(NOW - 3600)}
    assert lifetime(resp) == 0


@pytest.mark.parametrize("expires", ["0", "-1", "never", ""])
def test_invalid_expires_means_already_stale(expires: str) -> None:
    assert lifetime({"date": DATE, "expires": expires}, default_ttl=600) == 0


@pytest.mark.parametrize("cc", ["max-age=abc", "max-age=-5", "s-maxage=1.5", "max-age"])
def test_invalid_explicit_freshness_means_stale(cc: str) -> None:
    assert lifetime({"cache-control": cc}, default_ttl=600) == 0


def test_huge_max_age_is_capped_at_2_to_the_31() -> None:
    assert lifetime({"cache-control": "max-age=99999999999999"}) == 2**31


def test_zone_ttl_applies_without_explicit_freshness() -> None:
    resp = {"date": DATE, "last-modified": format_http_date(NOW - 10 * 86400)}
    assert lifetime(resp, default_ttl=7200) == 7200
    assert lifetime({"cache-control": "public"}, default_ttl=7200, status=302) == 7200


def test_heuristic_is_ten_percent_of_the_time_since_last_modified() -> None:
    resp = {"date": DATE, "last-modified": format_http_date(NOW - 1000)}
    assert lifetime(resp) == pytest.approx(100)


def test_heuristic_is_capped_at_one_day() -> None:
    resp = {"date": DATE, "last-modified": format_http_date(NOW - 365 * 86400)}
    assert lifetime(resp) == 86400


def test_heuristic_uses_response_time_without_date() -> None:
    resp = {"last-modified": format_http_date(NOW - 2000)}
    assert lifetime(resp, response_time=NOW) == pytest.approx(200)


def test_heuristic_needs_a_heuristically_cacheable_status() -> None:
    resp = {"date": DATE, "last-modified": format_http_date(NOW - 1000)}
    assert lifetime(resp, status=302) == 0
    assert lifetime(resp, status=404) == pytest.approx(100)


def test_no_last_modified_and_no_ttl_gives_zero() -> None:
    assert lifetime({"date": DATE}) == 0


def test_last_modified_in_the_future_gives_zero() -> None:
    assert lifetime({"date": DATE, "last-modified": format_http_date(NOW + 1000)}) == 0


def test_ignoring_the_origin_uses_the_zone_ttl_over_max_age() -> None:
    resp = {"cache-control": "max-age=10, s-maxage=20", "expires": "0"}
    assert lifetime(resp, honour_origin=False, default_ttl=3600) == 3600


def test_ignoring_the_origin_without_zone_ttl_falls_back_to_heuristics() -> None:
    resp = {
        "cache-control": "max-age=999999",
        "date": DATE,
        "last-modified": format_http_date(NOW - 1000),
    }
    assert lifetime(resp, honour_origin=False) == pytest.approx(100)


# -- age -----------------------------------------------------------------------------------


def test_current_age_adds_resident_time_to_the_corrected_initial_age() -> None:
    resp = {"date": format_http_date(NOW), "age": "30"}
    age = current_age(resp, request_time=NOW - 2, response_time=NOW, now=NOW + 100)
    # corrected_age_value = 30 + 2 (response delay) beats apparent age 0
    assert age == 132


def test_a_clock_set_back_makes_stored_ages_unknown_not_young() -> None:
    # Stored at NOW; the clock then went back a year: the response is not fresh for a
    # year more (immortal, for a clock set back far enough) but of unknown age: stale.
    resp = {"cache-control": "max-age=60"}
    year = 365 * 86400
    age = current_age(resp, request_time=NOW, response_time=NOW, now=NOW - year)
    assert age == float("inf")
    assert reuse(resp, {}, lifetime=60, age=age, honour_origin=True) == STALE
    # A step back within the skew allowed is an age of about zero, not unknown.
    assert current_age(resp, request_time=NOW, response_time=NOW, now=NOW - 0.5) == -0.5


def test_apparent_age_wins_when_date_is_older_than_age_suggests() -> None:
    resp = {"date": format_http_date(NOW - 50), "age": "5"}
    assert current_age(resp, request_time=NOW, response_time=NOW, now=NOW) == 50


def test_date_in_the_future_gives_no_negative_apparent_age() -> None:
    resp = {"date": format_http_date(NOW + 500)}
    assert current_age(resp, request_time=NOW - 1, response_time=NOW, now=NOW + 3) == 4


@pytest.mark.parametrize("age_value", ["abc", "-3", "1.5", "x, 5"])
def test_invalid_age_header_is_ignored(age_value: str) -> None:
    resp = {"date": DATE, "age": age_value}
    assert current_age(resp, request_time=NOW, response_time=NOW, now=NOW + 7) == 7


def test_a_list_valued_age_counts_as_its_first_member() -> None:
    """RFC 9111 §5.1: "use the first member of the field value"."""
    resp = {"date": DATE, "age": "5, 6"}
    assert current_age(resp, request_time=NOW, response_time=NOW, now=NOW + 7) == 12


def test_missing_date_counts_as_the_response_time() -> None:
    assert current_age({}, request_time=NOW - 1, response_time=NOW, now=NOW + 10) == 11


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=0, max_value=10**6),
)
def test_current_age_is_at_least_age_header_plus_resident_time(
    age_value: int, delay: int, resident: int
) -> None:
    resp = {"date": DATE, "age": str(age_value)}
    age = current_age(resp, request_time=NOW - delay, response_time=NOW, now=NOW + resident)
    assert age >= age_value + resident
    assert age == age_value + delay + resident


# -- reuse ---------------------------------------------------------------------------------


def test_fresh_while_age_below_lifetime() -> None:
    assert decide({}, life=100, age=99.9) == FRESH


def test_stale_once_age_reaches_lifetime() -> None:
    assert decide({}, life=100, age=100) == STALE
    assert decide({}, life=0, age=0) == STALE


def test_request_no_cache_forces_validation() -> None:
    assert decide({"cache-control": "no-cache"}) == STALE


def test_pragma_no_cache_forces_validation_without_cache_control() -> None:
    assert decide({"pragma": "no-cache"}) == STALE
    assert decide({"pragma": "NO-CACHE"}) == STALE


def test_pragma_is_ignored_when_the_request_has_cache_control() -> None:
    assert decide({"pragma": "no-cache", "cache-control": "max-age=3600"}) == FRESH


def test_response_no_cache_forces_validation_when_honouring_the_origin() -> None:
    assert decide({}, {"cache-control": "no-cache, max-age=60"}) == STALE
    assert decide({}, {"cache-control": 'no-cache="set-cookie"'}) == STALE


def test_response_no_cache_is_ignored_when_not_honouring_the_origin() -> None:
    assert decide({}, {"cache-control": "no-cache"}, honour_origin=False) == FRESH


def test_request_max_age_makes_older_responses_stale() -> None:
    assert decide({"cache-control": "max-age=5"}, age=10) == STALE
    assert decide({"cache-control": "max-age=10"}, age=10) == FRESH
    assert decide({"cache-control": "max-age=0"}, age=0.5) == STALE


def test_invalid_request_max_age_is_ignored() -> None:
    assert decide({"cache-control": "max-age=soon"}, age=10) == FRESH


def test_request_min_fresh_requires_remaining_freshness() -> None:
    assert decide({"cache-control": "min-fresh=50"}, life=100, age=60) == STALE
    assert decide({"cache-control": "min-fresh=40"}, life=100, age=60) == FRESH


def test_request_max_stale_never_turns_stale_into_fresh() -> None:
    assert decide({"cache-control": "max-stale"}, life=100, age=150) == STALE
    assert decide({"cache-control": "max-stale=1000"}, life=100, age=150) == STALE


@given(
    st.floats(min_value=0, max_value=1e7),
    st.floats(min_value=0, max_value=1e7),
    st.sampled_from(["", "max-age=5", "min-fresh=5", "max-stale=99999", "no-transform"]),
)
def test_reuse_is_never_fresh_at_or_past_the_lifetime(life: float, age: float, cc: str) -> None:
    result = decide({"cache-control": cc}, life=life, age=age)
    assert result in (FRESH, STALE)
    if age >= life:
        assert result == STALE


# -- stale on error, client cache-control ------------------------------------------------


def windows(cc: str, *, honour_origin: bool = True, usestale: bool = True) -> StaleWindows:
    return stale_windows({"cache-control": cc}, honour_origin=honour_origin, usestale=usestale)


@pytest.mark.parametrize(
    "cc",
    [
        "must-revalidate",
        "proxy-revalidate",
        "no-cache",
        "MUST-REVALIDATE",
        "max-age=1, must-revalidate, stale-while-revalidate=60, stale-if-error=60",
    ],
)
def test_stale_is_forbidden_by_revalidation_directives(cc: str) -> None:
    """RFC 9111 §4.2.4: never stale when an in-protocol directive forbids it."""
    assert windows(cc) == StaleWindows(0.0, 0.0)
    assert windows(cc, honour_origin=False) == StaleWindows(0.0, math.inf)


def test_stale_on_error_is_unbounded_without_stale_if_error() -> None:
    assert windows("public, max-age=60") == StaleWindows(0.0, math.inf)
    assert stale_windows({}, honour_origin=True, usestale=True) == StaleWindows(0.0, math.inf)


def test_rfc5861_directives_give_the_windows() -> None:
    assert windows("max-age=60, stale-while-revalidate=600") == StaleWindows(600.0, math.inf)
    assert windows("max-age=60, stale-if-error=30") == StaleWindows(0.0, 30.0)
    assert windows("max-age=60, stale-while-revalidate=abc") == StaleWindows(0.0, math.inf)
    # An invalid stale-if-error allows nothing: the origin meant to bound it.
    assert windows("max-age=60, stale-if-error=-1") == StaleWindows(0.0, 0.0)


def test_s_maxage_needs_an_explicit_stale_directive() -> None:
    """s-maxage implies proxy-revalidate (RFC 9111 §5.2.2.10); an explicit stale-* from
    the same origin lifts it (what Next.js and Vercel send)."""
    assert windows("s-maxage=60") == StaleWindows(0.0, 0.0)
    assert windows("s-maxage=1, stale-while-revalidate=59") == StaleWindows(59.0, 0.0)
    assert windows("s-maxage=1, stale-if-error=300") == StaleWindows(0.0, 300.0)


def test_the_cdn_targeted_field_gives_the_stale_windows() -> None:
    resp = {
        "cache-control": "max-age=60, must-revalidate",
        "cdn-cache-control": "max-age=60, stale-while-revalidate=120",
    }
    assert stale_windows(resp, honour_origin=True, usestale=True) == StaleWindows(120.0, math.inf)


def test_usestale_off_means_never_stale() -> None:
    assert windows("max-age=1, stale-while-revalidate=60", usestale=False) == StaleWindows(0.0, 0.0)


# -- negative caching -------------------------------------------------------------------


def test_an_error_without_explicit_freshness_lives_at_most_the_negative_ttl() -> None:
    assert lifetime({}, status=404, default_ttl=14400) == NEGATIVE_TTL
    assert lifetime({}, status=410, default_ttl=60) == 60
    assert lifetime({}, status=404, honour_origin=False, default_ttl=14400) == NEGATIVE_TTL
    assert lifetime({}, status=200, default_ttl=14400) == 14400


def test_an_error_with_explicit_freshness_lives_as_the_origin_says() -> None:
    assert lifetime({"cache-control": "max-age=3600"}, status=404, default_ttl=60) == 3600


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_stored_only_with_explicit_freshness(status: int) -> None:
    assert not can_store({}, status=status, default_ttl=3600)
    assert not can_store({"cache-control": "public"}, status=status)
    assert can_store({"cache-control": "max-age=5"}, status=status)
    assert can_store({"cdn-cache-control": "max-age=5"}, status=status)
    assert not can_store({"cache-control": "max-age=5"}, status=status, honour_origin=False)


def test_zone_expiry_replaces_the_client_cache_control() -> None:
    assert client_cache_control("no-cache, private", 3600) == "max-age=3600"


def test_without_zone_expiry_the_origin_cache_control_passes_through() -> None:
    assert client_cache_control("public, max-age=5", 0) == "public, max-age=5"
    assert client_cache_control(None, 0) is None


def test_freshness_is_the_window_the_edge_serves_a_hit_in() -> None:
    """RFC 9111 §4.2 as a window of clock time, worked out once per stored response."""
    at = 1_800_000_000.0
    window = freshness(
        200,
        {"cache-control": "max-age=60", "age": "10"},
        request_time=at - 2,
        response_time=at,
        honour_origin=True,
        default_ttl=0,
    )
    assert window.lifetime == 60
    assert window.initial_age == 12  # Age plus the response delay (§4.2.3)
    assert window.fresh_until == at + 48
    assert window.fresh_from == at - CLOCK_SKEW
    assert not window.always_validate
    no_cache = freshness(
        200,
        {"cache-control": "max-age=60, no-cache"},
        request_time=at,
        response_time=at,
        honour_origin=True,
        default_ttl=0,
    )
    assert no_cache.always_validate and no_cache.fresh_until == 0.0
