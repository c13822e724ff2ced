"""Web cache deception guards (edge/deception.py), without sockets."""

from __future__ import annotations

import pytest

from pullzone.edge.deception import personal

COOKIE = {"cookie": "session=alice"}


@pytest.mark.parametrize(
    "resp",
    [
        {"content-type": "text/html; charset=utf-8"},
        {"content-type": "application/json"},
        {"content-type": "text/html", "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT"},
        {},
    ],
)
def test_a_page_asked_for_with_a_cookie_and_no_lifetime_is_personal(resp: dict[str, str]) -> None:
    assert personal(COOKIE, resp)


@pytest.mark.parametrize(
    ("req", "resp"),
    [
        ({}, {"content-type": "text/html"}),  # no cookie: the zone's TTL applies
        (COOKIE, {"content-type": "text/html", "cache-control": "max-age=60"}),
        (COOKIE, {"content-type": "text/html", "cache-control": "public"}),
        (COOKIE, {"content-type": "text/html", "cache-control": "s-maxage=60"}),
        (COOKIE, {"content-type": "text/html", "expires": "Thu, 01 Jan 2099 00:00:00 GMT"}),
        (COOKIE, {"content-type": "image/png"}),
        (COOKIE, {"content-type": "text/css"}),
        (COOKIE, {"content-type": "application/javascript; charset=utf-8"}),
        (COOKIE, {"content-type": "font/woff2"}),
        (COOKIE, {"content-type": "video/mp4"}),
        (COOKIE, {"content-type": "application/octet-stream"}),
    ],
)
def test_assets_and_pages_with_a_lifetime_are_not(
    req: dict[str, str], resp: dict[str, str]
) -> None:
    assert not personal(req, resp)
