"""The zone's edge switches and origin choices (edge/switches.py, edge/origin.py
`attempts`, `forward_headers`), decided without sockets."""

from __future__ import annotations

from pullzone.cache.stored import ResponseHead, StoredObject
from pullzone.edge.bounds import Limits
from pullzone.edge.decisions import (
    FETCH_MISS,
    PASS_METHOD,
    PREFLIGHT,
    Store,
    on_origin_response,
    on_request,
)
from pullzone.edge.entry import Entry
from pullzone.edge.http import Request
from pullzone.edge.origin import attempts, forward_headers
from pullzone.edge.pacing import Pace, pace_of, wait_for
from pullzone.edge.switches import (
    NO_EDITS,
    fails_over,
    is_preflight,
    preflight_fields,
    response_edits,
)
from pullzone.edge.writer import client_headers
from pullzone.spec.headers import header_map
from pullzone.zones.blocks import BwLimit, EdgeOptions, OriginIp
from pullzone.zones.model import CachePolicy, Zone

NOW = 1_800_000_000.0
LIMITS = Limits(max_object=1024**3, max_cache=10 * 1024**3)


def request(method: str = "GET", **fields: str) -> Request:
    headers = [(name.replace("_", "-"), value) for name, value in fields.items()]
    return Request(method, "/a.js", headers, header_map(headers), "1.1", True, b"")


def zone(**changes: object) -> Zone:
    return Zone(1, "z", "z", "http://origin.test:8080").with_changes(**changes)


def test_a_zone_with_its_switches_off_edits_nothing() -> None:
    assert response_edits(EdgeOptions()) is NO_EDITS
    fields = [("Content-Type", "text/plain")]
    assert NO_EDITS.apply(fields) is fields
    headers = (("Set-Cookie", "a=1"),)
    assert NO_EDITS.strip(headers) is headers


def test_cors_and_disposition_replace_the_origins_fields() -> None:
    edits = response_edits(EdgeOptions(cors=True, disposition=True))
    origin = [
        ("Content-Type", "text/plain"),
        ("access-control-allow-origin", "https://a.example"),
        ("Content-Disposition", "inline"),
    ]
    assert client_headers(origin, header_map(origin), None, edits) == [
        ("Content-Type", "text/plain"),
        ("Access-Control-Allow-Origin", "*"),
        ("Content-Disposition", "attachment"),
    ]


def test_stripcookie_removes_set_cookie_and_makes_the_response_storable() -> None:
    edits = response_edits(EdgeOptions(stripcookie=True))
    headers = (("Cache-Control", "max-age=60"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"))
    stripped = edits.strip(headers)
    assert stripped == (("Cache-Control", "max-age=60"),)
    fill = request()
    policy = CachePolicy()
    kept = ResponseHead(200, "OK", headers, NOW, NOW, 1)
    assert not isinstance(
        on_origin_response(fill, "/a.js", policy, None, FETCH_MISS, kept, LIMITS), Store
    )
    clean = ResponseHead(200, "OK", stripped, NOW, NOW, 1)
    decision = on_origin_response(fill, "/a.js", policy, None, FETCH_MISS, clean, LIMITS)
    assert isinstance(decision, Store)


def test_a_preflight_is_answered_only_for_a_cors_zone() -> None:
    asked = request(
        "OPTIONS",
        origin="https://app.example",
        access_control_request_method="PUT",
        access_control_request_headers="x-a, x-b",
    )
    assert is_preflight("OPTIONS", asked.hmap)
    assert not is_preflight("OPTIONS", request("OPTIONS", origin="https://a").hmap)
    assert not is_preflight("GET", asked.hmap)
    cors = zone(edge=EdgeOptions(cors=True))
    assert on_request(asked, cors, None, NOW, 0, "cdn") is PREFLIGHT
    assert on_request(asked, zone(), None, NOW, 0, "cdn") is PASS_METHOD
    assert on_request(request("OPTIONS"), cors, None, NOW, 0, "cdn") is PASS_METHOD
    assert preflight_fields(asked.hmap) == [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
        ("Access-Control-Allow-Headers", "x-a, x-b"),
        ("Access-Control-Max-Age", "86400"),
    ]
    plain = request("OPTIONS", origin="https://a", access_control_request_method="GET")
    assert [n for n, _ in preflight_fields(plain.hmap)] == [
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Methods",
        "Access-Control-Max-Age",
    ]


def test_a_cached_entry_carries_the_zones_fields_in_its_prebuilt_head_and_its_304() -> None:
    head = ResponseHead(200, "OK", (("ETag", '"1"'), ("Cache-Control", "max-age=9")), NOW, NOW, 1)
    obj = StoredObject("o", "k", 1, "/a", "", head, 0, 1, 1)
    edits = response_edits(EdgeOptions(cors=True))
    entry = Entry(obj, CachePolicy(), "/nowhere", 1, False, edits)
    assert b"Access-Control-Allow-Origin: *\r\n" in entry.full_head
    assert b"Access-Control-Allow-Origin: *\r\n" in entry.not_modified_head()
    bare = Entry(obj, CachePolicy(), "/nowhere", 1, False)
    assert b"Access-Control" not in bare.full_head + bare.not_modified_head()


def test_xff_is_sent_only_when_switched_on() -> None:
    client = request(x_forwarded_for="198.51.100.1")

    def sent(z: Zone) -> dict[str, str]:
        out = forward_headers(client.headers, client.hmap, z, "192.0.2.7", shared=True, cdn_id="c")
        return {n.lower(): v for n, v in out}

    assert "x-forwarded-for" not in sent(zone())
    assert sent(zone(edge=EdgeOptions(xff=True)))["x-forwarded-for"] == "198.51.100.1, 192.0.2.7"


def test_the_backup_origin_is_the_second_attempt_with_its_own_host() -> None:
    only = attempts(zone(), "/p?q=1")
    assert [(str(a.url), a.host, a.backup) for a in only] == [
        ("http://origin.test:8080/p?q=1", "origin.test:8080", False)
    ]
    both = attempts(zone(backup="https://b.example/base/"), "/p")
    assert [(str(a.url), a.host, a.backup) for a in both] == [
        ("http://origin.test:8080/p", "origin.test:8080", False),
        ("https://b.example/base/p", "b.example", True),
    ]
    assert fails_over(500) and fails_over(504) and not fails_over(404) and not fails_over(200)


def test_originip_pins_the_address_and_keeps_the_host_and_sni() -> None:
    pinned = zone(originip=OriginIp(True, "127.0.0.2"))
    (first,) = attempts(pinned, "/p")
    assert (str(first.url), first.host, first.server_hostname) == (
        "http://127.0.0.2:8080/p",
        "origin.test:8080",
        None,
    )
    secure = Zone(1, "z", "z", "https://origin.test").with_changes(
        originip=OriginIp(True, "2001:db8::5", "www.example.com")
    )
    (first,) = attempts(secure, "/p")
    assert (str(first.url), first.host, first.server_hostname) == (
        "https://[2001:db8::5]/p",
        "www.example.com",
        "www.example.com",
    )
    client = request()
    out = forward_headers(client.headers, client.hmap, secure, "192.0.2.7", shared=True, cdn_id="c")
    assert ("Host", "www.example.com") in out
    # Switched off, or without an address: the origin's name as it is.
    off = zone(originip=OriginIp(False, "127.0.0.2", "www.example.com"))
    assert str(attempts(off, "/p")[0].url) == "http://origin.test:8080/p"
    assert attempts(off, "/p")[0].host == "origin.test:8080"


def test_a_bwlimit_is_paced_in_bytes_from_its_first_byte_or_after_rateafter() -> None:
    assert pace_of(BwLimit()) is None
    assert pace_of(BwLimit(enabled=True, rate=0)) is None
    assert pace_of(BwLimit(enabled=True, policy="0", rate=4096, rateafter=99)) == Pace(524_288, 0)
    assert pace_of(BwLimit(enabled=True, policy="1", rate=8, rateafter=2)) == Pace(1024, 2048)
    pace = Pace(rate=1000, free=0)
    assert wait_for(pace, 0.0, 0, 500) == 0.5
    assert wait_for(pace, 1.0, 500, 500) == 0.0  # a second's worth, half of it sent
    assert wait_for(pace, 1.0, 1000, 250) == 0.25
    after = Pace(rate=1000, free=4096)
    assert wait_for(after, 0.0, 0, 4096) == 0.0  # the free bytes go at once
    assert wait_for(after, 0.0, 4096, 1000) == 1.0
    assert Pace(rate=100, free=0).slice == 1460 and Pace(rate=2_000_000, free=0).slice == 100_000
