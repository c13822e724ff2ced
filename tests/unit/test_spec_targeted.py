"""CDN-Cache-Control and Surrogate-Control (RFC 9213) over Cache-Control, and the Age
field's first member (RFC 9111 §5.1), without sockets."""

from __future__ import annotations

import pytest

from pullzone.edge.writer import client_headers
from pullzone.spec.freshness import (
    NO_STALE,
    age_field,
    freshness_lifetime,
    stale_windows,
    unstorable,
)
from pullzone.spec.headers import header_map
from pullzone.spec.targeted import response_directives

NOW = 1_800_000_000.0


def lifetime(*pairs: tuple[str, str]) -> float:
    return freshness_lifetime(
        200, header_map(pairs), honour_origin=True, default_ttl=0, response_time=NOW
    )


def refused(*pairs: tuple[str, str]) -> str | None:
    return unstorable("GET", 200, {}, header_map(pairs), honour_origin=True, default_ttl=0)


def test_cdn_cache_control_gives_the_cdn_its_own_life() -> None:
    assert lifetime(("Cache-Control", "max-age=60"), ("CDN-Cache-Control", "max-age=600")) == 600
    assert lifetime(("Cache-Control", "max-age=600"), ("CDN-Cache-Control", "max-age=5")) == 5
    # s-maxage in the targeted field is what a shared cache reads first (RFC 9111 §5.2.2.10)
    assert lifetime(("CDN-Cache-Control", "max-age=5, s-maxage=50")) == 50


def test_a_targeted_field_makes_cache_control_and_expires_not_count() -> None:
    expires = ("Expires", "Fri, 15 Jan 2027 08:00:00 GMT")
    assert lifetime(expires, ("CDN-Cache-Control", "public")) == 0  # heuristics: none here
    assert refused(("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=60")) is None
    assert refused(("Cache-Control", "max-age=60"), ("CDN-Cache-Control", "no-store")) == "no_store"
    assert refused(("CDN-Cache-Control", "private")) == "private"
    resp = header_map([("CDN-Cache-Control", "max-age=60, must-revalidate")])
    assert stale_windows(resp, honour_origin=True, usestale=True) == NO_STALE


@pytest.mark.parametrize("value", ["max-age=abc=", "max-age=60,,", '"just a string"', "", " "])
def test_an_invalid_or_empty_cdn_cache_control_is_ignored(value: str) -> None:
    pairs = (("Cache-Control", "max-age=60"), ("CDN-Cache-Control", value))
    assert lifetime(*pairs) == 60
    assert not response_directives(header_map(pairs)).targeted


def test_surrogate_control_counts_after_cdn_cache_control() -> None:
    assert lifetime(("Cache-Control", "max-age=60"), ("Surrogate-Control", "max-age=3600")) == 3600
    both = (("Surrogate-Control", "max-age=3600"), ("CDN-Cache-Control", "max-age=7"))
    assert lifetime(*both) == 7
    assert refused(("Surrogate-Control", "no-store")) == "no_store"


def test_clients_never_see_the_targeted_fields() -> None:
    headers = (
        ("Cache-Control", "max-age=60"),
        ("CDN-Cache-Control", "max-age=600"),
        ("Surrogate-Control", "max-age=600"),
        ("Content-Type", "text/plain"),
    )
    shown = client_headers(headers, header_map(headers), None)
    assert shown == [("Cache-Control", "max-age=60"), ("Content-Type", "text/plain")]


@pytest.mark.parametrize(
    ("value", "age"),
    [(None, 0), ("30", 30), ("30, 90", 30), ("30,90", 30), ("abc", 0), ("-5", 0), ("abc, 30", 0)],
)
def test_the_age_field_is_its_first_member_and_an_invalid_one_is_ignored(
    value: str | None, age: int
) -> None:
    assert age_field(value) == age
