"""The edge as a shared cache (RFC 9111), through real sockets: a real origin on loopback,
a real `pullzone serve`, a real HTTP client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from origin import Origin, Reply
from server import Server

Zone = dict[str, Any]


def hit_twice(server: Server, zone: Zone, path: str, **kw: Any) -> tuple[Any, Any]:
    return server.get(zone["fqdn"], path, **kw), server.get(zone["fqdn"], path, **kw)


def test_miss_then_hit_with_age_from_one_origin_request(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"hello"))
    first, second = hit_twice(server, zone, path)
    assert (first.status_code, first.headers["x-cache"], first.content) == (200, "MISS", b"hello")
    assert (second.status_code, second.headers["x-cache"], second.content) == (200, "HIT", b"hello")
    assert int(second.headers["age"]) >= 0
    assert origin.count(path) == 1


def test_every_worker_serves_the_hit(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"x"))
    server.get(zone["fqdn"], path)
    # New connections land on either worker (SO_REUSEPORT); all must find the object.
    for _ in range(20):
        r = httpx.get(server.edge_url + path, headers={"Host": zone["fqdn"]})
        assert r.headers["x-cache"] == "HIT"
    assert origin.count(path) == 1


def test_age_header_from_origin_is_carried_into_age(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=600"), ("Age", "100")], body=b"a"))
    _, second = hit_twice(server, zone, path)
    assert int(second.headers["age"]) >= 100


def test_cdn_cache_control_rules_the_edge_and_is_not_sent_to_clients(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """RFC 9213: the origin keeps browsers from storing, and lets the CDN store for 10 min."""
    headers = [("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=600")]
    origin.route(path, Reply(headers=headers, body=b"t"))
    first, second = hit_twice(server, zone, path)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.headers["cache-control"] == "no-store"
    assert "cdn-cache-control" not in first.headers and "cdn-cache-control" not in second.headers
    assert origin.count(path) == 1


def test_accept_encoding_spellings_share_one_variant(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """Vary: Accept-Encoding keyed on what can change the answer (spec/vary.py): Chrome's
    and Firefox's spellings are one variant, and the origin is sent that variant's value."""
    origin.route(
        path, Reply(headers=[("Cache-Control", "max-age=600"), ("Vary", "Accept-Encoding")])
    )
    chrome = server.get(zone["fqdn"], path, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    firefox = server.get(zone["fqdn"], path, headers={"Accept-Encoding": "gzip, deflate, br"})
    curl = server.get(zone["fqdn"], path, headers={"Accept-Encoding": "deflate, gzip"})
    bare = server.get(zone["fqdn"], path, headers={"Accept-Encoding": "identity"})
    assert [r.headers["x-cache"] for r in (chrome, firefox, curl, bare)] == [
        "MISS",
        "HIT",
        "MISS",
        "MISS",
    ]
    sent = [seen.headers["accept-encoding"] for seen in origin.seen[path]]
    assert sent == ["br, gzip", "gzip", "identity"]


def test_two_age_lines_count_as_the_first(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """RFC 9111 §5.1: the first member of a list-valued Age (once ignored as invalid)."""
    origin.route(
        path,
        Reply(headers=[("Cache-Control", "max-age=600"), ("Age", "100"), ("Age", "7")], body=b"a"),
    )
    _, second = hit_twice(server, zone, path)
    assert 100 <= int(second.headers["age"]) < 150


def test_unknown_host_is_404_and_never_forwarded(server: Server, origin: Origin, path: str) -> None:
    r = server.get("nope.example", path)
    assert r.status_code == 404
    assert origin.count(path) == 0


def test_absolute_form_target_for_another_host_is_not_proxied(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", server.edge_port)) as s:
        s.sendall(
            f"GET http://127.0.0.1:{origin.port}{path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 404")
    assert origin.count(path) == 0


@pytest.mark.zone(disabled="1")
def test_disabled_zone_is_403(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    origin.route(path, Reply(body=b"x"))
    assert server.get(zone["fqdn"], path).status_code == 403
    assert origin.count(path) == 0


@pytest.mark.zone(cnames="cdn.example.org,10.9.8.7")
def test_cnames_and_ports_route_to_the_zone(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"c"))
    assert server.get("cdn.example.org:8080", path).headers["x-cache"] == "MISS"
    assert server.get("CDN.Example.Org", path).headers["x-cache"] == "HIT"
    assert server.get("10.9.8.7", path).headers["x-cache"] == "HIT"


def test_zone_changes_reach_routes_a_worker_has_memoized(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """Each worker keeps (Host, target) → zone and cache key for hot objects: every zone
    change must still be seen by the very next request on the same connection."""
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"m"))
    with httpx.Client(base_url=server.edge_url, headers={"Host": zone["fqdn"]}) as client:
        assert client.get(path + "?a=1").headers["x-cache"] == "MISS"
        assert client.get(path + "?a=1").headers["x-cache"] == "HIT"
        assert client.get(path + "?b=2").headers["x-cache"] == "MISS"
        # querystring N: the key no longer holds the query, so ?a=1 is a new object
        changed = server.api.post(f"/zones/http/pull/{zone['id']}/cache", json={"querystring": "N"})
        assert changed.status_code == 200, changed.text
        assert client.get(path + "?a=1").headers["x-cache"] == "MISS"
        assert client.get(path + "?b=2").headers["x-cache"] == "HIT"
        disabled = server.api.post(f"/zones/http/pull/{zone['id']}", json={"disabled": "1"})
        assert disabled.status_code == 200, disabled.text
        assert client.get(path + "?a=1").status_code == 403
        assert server.api.delete(f"/zones/http/pull/{zone['id']}").status_code == 200
        assert client.get(path + "?a=1").status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        [("Cache-Control", "no-store")],
        [("Cache-Control", "private, max-age=60")],
        [("Cache-Control", "max-age=60"), ("Set-Cookie", "session=1")],
        [("Cache-Control", "max-age=60"), ("Vary", "*")],
    ],
    ids=["no-store", "private", "set-cookie", "vary-star"],
)
def test_responses_a_shared_cache_must_not_store_are_fetched_each_time(
    server: Server, origin: Origin, zone: Zone, path: str, headers: list[tuple[str, str]]
) -> None:
    origin.route(path, Reply(headers=headers, body=b"p"))
    first, second = hit_twice(server, zone, path)
    assert first.content == second.content == b"p"
    assert second.headers["x-cache"] == "MISS"
    assert origin.count(path) == 2


def test_s_maxage_overrides_max_age(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=0, s-maxage=60")], body=b"s"))
    _, second = hit_twice(server, zone, path)
    assert second.headers["x-cache"] == "HIT"


def test_expires_gives_freshness(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    origin.route(
        path,
        Reply(
            headers=[
                ("Date", formatdate(usegmt=True)),
                ("Expires", formatdate(time.time() + 120, usegmt=True)),
            ],
            body=b"e",
        ),
    )
    _, second = hit_twice(server, zone, path)
    assert second.headers["x-cache"] == "HIT"


@pytest.mark.zone(cache={"cache": "0"})
def test_heuristic_freshness_from_last_modified(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(
        path,
        Reply(
            headers=[
                ("Date", formatdate(usegmt=True)),
                ("Last-Modified", formatdate(time.time() - 86400 * 10, usegmt=True)),
            ],
            body=b"h",
        ),
    )
    _, second = hit_twice(server, zone, path)
    assert second.headers["x-cache"] == "HIT"


@pytest.mark.zone(cache={"cache": "0"})
def test_without_freshness_or_zone_ttl_nothing_is_reused(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(status=302, headers=[("Location", "/elsewhere")], body=b""))
    _, second = hit_twice(server, zone, path, follow_redirects=False)
    assert second.headers["x-cache"] != "HIT"
    assert origin.count(path) == 2


def test_zone_cache_ttl_applies_when_origin_gives_no_freshness(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(body=b"ttl"))  # no Cache-Control, no Expires, no Last-Modified
    _, second = hit_twice(server, zone, path)
    assert second.headers["x-cache"] == "HIT"


@pytest.mark.zone(cache={"cachecontrol": "N", "cache": "1h"})
def test_cachecontrol_n_ignores_origin_max_age(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=0")], body=b"n"))
    _, second = hit_twice(server, zone, path)
    assert second.headers["x-cache"] == "HIT"


@pytest.mark.zone(cache={"expiry": "1d"})
def test_expiry_sets_the_max_age_clients_see(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", "max-age=60"), ("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")],
            body=b"x",
        ),
    )
    first, second = hit_twice(server, zone, path)
    for r in (first, second):
        assert r.headers["cache-control"] == "max-age=86400"
        assert "expires" not in r.headers


@pytest.mark.zone(cache={"expiry": "1d"})
def test_an_answer_that_is_not_stored_gets_the_same_headers_as_a_hit(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """One header writer for every way out: tags never reach clients, and the zone's
    `expiry` applies to a GET that is not stored (here `Vary: *`) as to a HIT."""
    tags = [("Surrogate-Key", "a b"), ("Cache-Tag", "c"), ("Surrogate-Control", "max-age=9")]
    origin.route(path, Reply(headers=[("Vary", "*"), ("Cache-Control", "max-age=60"), *tags]))
    passed = server.get(zone["fqdn"], path)
    assert passed.headers["x-cache"] == "MISS"
    assert passed.headers["cache-control"] == "max-age=86400"
    posted = server.edge.post(path, headers={"Host": zone["fqdn"]}, content=b"x")
    assert posted.headers["x-cache"] == "BYPASS"
    assert posted.headers["cache-control"] == "max-age=60"  # no other method's answer is reused
    for r in (passed, posted):
        assert not {"surrogate-key", "cache-tag", "surrogate-control"} & set(r.headers), r.headers


@pytest.mark.zone(cache={"expiry": "1d"})
@pytest.mark.parametrize(
    "personal",
    [
        [("Cache-Control", "private, max-age=60")],
        [("Cache-Control", "no-store")],
        [("Cache-Control", "no-cache")],
        [("Cache-Control", "max-age=60"), ("Set-Cookie", "s=1")],
    ],
    ids=["private", "no-store", "no-cache", "set-cookie"],
)
def test_expiry_never_makes_a_personal_answer_reusable(
    server: Server, origin: Origin, zone: Zone, path: str, personal: list[tuple[str, str]]
) -> None:
    origin.route(path, Reply(headers=personal, body=b"mine"))
    r = server.get(zone["fqdn"], path)
    assert r.headers["cache-control"] == dict(personal)["Cache-Control"]


def test_origin_cache_control_passes_through_without_expiry(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "public, max-age=60")], body=b"x"))
    assert server.get(zone["fqdn"], path).headers["cache-control"] == "public, max-age=60"


def test_query_string_is_part_of_the_key_by_default(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(
        path, lambda seen: Reply(headers=[("Cache-Control", "max-age=60")], body=seen.path.encode())
    )
    a = server.get(zone["fqdn"], path + "?v=1")
    b = server.get(zone["fqdn"], path + "?v=2")
    assert (a.content, b.content) == ((path + "?v=1").encode(), (path + "?v=2").encode())
    assert server.get(zone["fqdn"], path + "?v=1").headers["x-cache"] == "HIT"


@pytest.mark.zone(cache={"querystring": "N"})
def test_querystring_n_shares_one_object(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"q"))
    server.get(zone["fqdn"], path + "?a=1")
    assert server.get(zone["fqdn"], path + "?b=2").headers["x-cache"] == "HIT"


def test_vary_stores_one_variant_per_header_value(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(
        path,
        lambda seen: Reply(
            headers=[("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
            body=seen.headers.get("accept-language", "none").encode(),
        ),
    )
    en = {"Accept-Language": "en"}
    fr = {"Accept-Language": "fr"}
    assert server.get(zone["fqdn"], path, headers=en).content == b"en"
    assert server.get(zone["fqdn"], path, headers=fr).content == b"fr"
    again_en = server.get(zone["fqdn"], path, headers=en)
    again_fr = server.get(zone["fqdn"], path, headers=fr)
    assert (again_en.headers["x-cache"], again_en.content) == ("HIT", b"en")
    assert (again_fr.headers["x-cache"], again_fr.content) == ("HIT", b"fr")


def test_authorized_request_response_is_not_stored_without_public(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"secret"))
    auth = {"Authorization": "Bearer x"}
    server.get(zone["fqdn"], path, headers=auth)
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"
    assert origin.count(path) == 2


def test_authorized_request_response_with_public_is_stored(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "public, max-age=60")], body=b"pub"))
    server.get(zone["fqdn"], path, headers={"Authorization": "Bearer x"})
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"


def etag_origin(origin: Origin, path: str, max_age: int = 0, body: bytes = b"v1") -> None:
    def script(seen: Any) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(
                304,
                headers=[
                    ("ETag", '"v1"'),
                    ("Cache-Control", f"max-age={max_age}"),
                    ("X-Revalidated", "yes"),
                ],
            )
        return Reply(headers=[("ETag", '"v1"'), ("Cache-Control", f"max-age={max_age}")], body=body)

    origin.route(path, script)


def test_expired_object_is_revalidated_and_a_304_keeps_the_body(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    etag_origin(origin, path, max_age=0)
    first = server.get(zone["fqdn"], path)
    second = server.get(zone["fqdn"], path)
    assert first.headers["x-cache"] == "MISS"
    assert (second.headers["x-cache"], second.content) == ("REVALIDATED", b"v1")
    assert origin.seen[path][1].headers["if-none-match"] == '"v1"'
    # the 304's headers replaced the stored ones (RFC 9111 §4.3.4)
    assert second.headers["x-revalidated"] == "yes"


def test_a_revalidation_after_a_refetch_sends_the_new_validator(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    version = {"etag": '"v1"'}

    def script(seen: Any) -> Reply:
        headers = [("ETag", version["etag"]), ("Cache-Control", "max-age=0")]
        if seen.headers.get("if-none-match") == version["etag"]:
            return Reply(304, headers=headers)
        return Reply(headers=headers, body=version["etag"].encode())

    origin.route(path, script)
    host = str(zone["fqdn"])
    assert server.get(host, path).headers["x-cache"] == "MISS"
    version["etag"] = '"v2"'  # the origin changes: the next check refetches
    assert server.get(host, path).headers["x-cache"] == "EXPIRED"
    # One worker serves both (one keep-alive connection): what it holds in memory is the
    # replaced v1, but the check sends v2, the validator of what is stored now.
    answer = server.get(host, path)
    assert (answer.headers["x-cache"], answer.content) == ("REVALIDATED", b'"v2"')
    assert [s.headers.get("if-none-match") for s in origin.seen[path]] == [None, '"v1"', '"v2"']


def test_an_object_purged_while_it_is_revalidated_is_fetched_whole(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    def script(seen: Any) -> Reply:
        headers = [("ETag", '"v1"'), ("Cache-Control", "max-age=0")]
        if seen.headers.get("if-none-match") == '"v1"':
            # The object is hard-purged while its revalidation is in flight.
            assert server.purge(zone["id"], [path], delete=True).status_code == 200
            return Reply(304, headers=headers)
        return Reply(headers=headers, body=b"v1")

    origin.route(path, script)
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"
    answer = server.get(zone["fqdn"], path)
    assert (answer.status_code, answer.content) == (200, b"v1")
    assert [s.headers.get("if-none-match") for s in origin.seen[path]] == [None, '"v1"', None]


def fresh_connection_gets(server: Server, zone: Zone, path: str, n: int) -> list[httpx.Response]:
    """`n` GETs, each on a new connection: they land on every worker (SO_REUSEPORT)."""
    return [httpx.get(server.edge_url + path, headers={"Host": zone["fqdn"]}) for _ in range(n)]


@pytest.mark.parametrize(
    "unstorable",
    [
        ("Set-Cookie", "session=for-the-revalidating-client"),
        ("Cache-Control", "private, max-age=60"),
        ("Cache-Control", "no-store, max-age=60"),
    ],
    ids=["set-cookie", "private", "no-store"],
)
def test_a_304_that_makes_the_object_unstorable_is_answered_then_dropped(
    server: Server, origin: Origin, zone: Zone, path: str, unstorable: tuple[str, str]
) -> None:
    # RFC 9111 §4.3.4: the 304's headers update the stored response; §3 then decides
    # whether what results may still be stored. Here it may not: the client that caused
    # the revalidation gets its answer, nobody else ever gets it.
    def script(seen: Any) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            fresh = [("Cache-Control", "max-age=60")] if unstorable[0] != "Cache-Control" else []
            return Reply(304, headers=[("ETag", '"v1"'), unstorable, *fresh])
        first = origin.count(path) == 1
        headers = [("ETag", '"v1"'), ("Cache-Control", "max-age=0" if first else "max-age=60")]
        return Reply(headers=headers, body=b"v1")

    origin.route(path, script)
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "MISS"  # stored, expired
    mine = server.get(zone["fqdn"], path, headers={"Cookie": "session=mine"})
    assert (mine.status_code, mine.content, mine.headers["x-cache"]) == (200, b"v1", "REVALIDATED")
    assert mine.headers[unstorable[0]] == unstorable[1]
    others = fresh_connection_gets(server, zone, path, 12)
    for other in others:
        assert (other.status_code, other.content) == (200, b"v1")
        assert "set-cookie" not in other.headers
        assert other.headers["cache-control"] == "max-age=60"
    # The object was dropped: the next visitor fetched it whole, and it was stored anew.
    assert others[0].headers["x-cache"] == "MISS"
    assert [o.headers["x-cache"] for o in others[1:]] == ["HIT"] * 11
    assert [s.headers.get("if-none-match") for s in origin.seen[path]] == [None, '"v1"', None]


@pytest.mark.zone(cache={"revalidate": "N"})
def test_revalidate_n_refetches_expired_objects(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    etag_origin(origin, path, max_age=0)
    server.get(zone["fqdn"], path)
    second = server.get(zone["fqdn"], path)
    assert second.headers["x-cache"] == "EXPIRED"
    assert "if-none-match" not in origin.seen[path][1].headers


def test_request_no_cache_forces_revalidation(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    etag_origin(origin, path, max_age=60)
    server.get(zone["fqdn"], path)
    assert server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    forced = server.get(zone["fqdn"], path, headers={"Cache-Control": "no-cache"})
    assert forced.headers["x-cache"] == "REVALIDATED"
    assert origin.count(path) == 2


def test_request_max_age_zero_forces_revalidation(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    etag_origin(origin, path, max_age=60)
    server.get(zone["fqdn"], path)
    time.sleep(1.1)  # the stored response must be older than the client's max-age=0
    r = server.get(zone["fqdn"], path, headers={"Cache-Control": "max-age=0"})
    assert r.headers["x-cache"] == "REVALIDATED"


def test_only_if_cached_miss_is_504(server: Server, origin: Origin, zone: Zone, path: str) -> None:
    origin.route(path, Reply(body=b"x"))
    r = server.get(zone["fqdn"], path, headers={"Cache-Control": "only-if-cached"})
    assert r.status_code == 504
    assert origin.count(path) == 0


def test_client_conditional_requests_are_answered_from_cache(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    lm = formatdate(time.time() - 3600, usegmt=True)
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", "max-age=60"), ("ETag", '"abc"'), ("Last-Modified", lm)],
            body=b"cond",
        ),
    )
    server.get(zone["fqdn"], path)
    inm = server.get(zone["fqdn"], path, headers={"If-None-Match": 'W/"abc"'})
    assert (inm.status_code, inm.content, inm.headers["etag"]) == (304, b"", '"abc"')
    ims = server.get(zone["fqdn"], path, headers={"If-Modified-Since": lm})
    assert ims.status_code == 304
    changed = server.get(zone["fqdn"], path, headers={"If-None-Match": '"other"'})
    assert (changed.status_code, changed.content) == (200, b"cond")
    failed = server.get(zone["fqdn"], path, headers={"If-Match": '"other"'})
    assert failed.status_code == 412
    assert origin.count(path) == 1


def test_single_and_multiple_ranges_from_cache(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    body = bytes(range(256)) * 4
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", "max-age=60"), ("Content-Type", "application/octet-stream")],
            body=body,
        ),
    )
    server.get(zone["fqdn"], path)
    one = server.get(zone["fqdn"], path, headers={"Range": "bytes=10-19"})
    assert (one.status_code, one.content) == (206, body[10:20])
    assert one.headers["content-range"] == f"bytes 10-19/{len(body)}"
    suffix = server.get(zone["fqdn"], path, headers={"Range": "bytes=-5"})
    assert suffix.content == body[-5:]
    multi = server.get(zone["fqdn"], path, headers={"Range": "bytes=0-1,100-101"})
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert body[0:2] in multi.content and body[100:102] in multi.content
    assert f"Content-Range: bytes 100-101/{len(body)}".encode() in multi.content
    bad = server.get(zone["fqdn"], path, headers={"Range": "bytes=5000-6000"})
    assert (bad.status_code, bad.headers["content-range"]) == (416, f"bytes */{len(body)}")
    stale_if_range = server.get(
        zone["fqdn"], path, headers={"Range": "bytes=0-1", "If-Range": '"nope"'}
    )
    assert (stale_if_range.status_code, stale_if_range.content) == (200, body)


def test_range_over_a_large_object_streams_from_disk(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    body = b"0123456789" * 200_000  # 2 MB: served from the file, not memory
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=body))
    assert server.get(zone["fqdn"], path).content == body
    full = server.get(zone["fqdn"], path)
    assert (full.headers["x-cache"], full.content) == ("HIT", body)
    part = server.get(zone["fqdn"], path, headers={"Range": "bytes=1999990-"})
    assert part.content == body[1999990:]


def test_head_is_answered_from_the_cached_get(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"headbody"))
    server.get(zone["fqdn"], path)
    r = server.edge.head(path, headers={"Host": zone["fqdn"]})
    assert (r.status_code, r.headers["x-cache"], r.headers["content-length"]) == (200, "HIT", "8")
    assert origin.count(path) == 1


def test_chunked_origin_body_is_cached(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(
        path,
        Reply(
            headers=[("Cache-Control", "max-age=60")], body=[b"abc", b"def", b"ghi"], chunked=True
        ),
    )
    first, second = hit_twice(server, zone, path)
    assert first.content == second.content == b"abcdefghi"
    assert second.headers["x-cache"] == "HIT"


@pytest.fixture(scope="module")
def server4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A node with four edge workers: what one worker does, the other three must know."""
    s = Server(tmp_path_factory.mktemp("serve4") / "data", workers=4).start()
    yield s
    s.stop()


def invalidations(server: Server) -> float:
    """The node's pullzone_cache_invalidations counter, from /metrics."""
    text = server.api.get(server.api_url.removesuffix("/v2") + "/metrics").text
    name = "pullzone_cache_invalidations_total "
    return float(next(line for line in text.splitlines() if line.startswith(name)).split()[1])


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_an_unsafe_method_invalidates_the_cached_path_in_every_worker(
    server4: Server, origin: Origin, path: str, method: str
) -> None:
    # RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI
    # in the cache, which is every worker of the node.
    zone = server4.create_zone(origin.url, alias=f"inval-{method.lower()}")
    version = {"n": 1}

    def script(seen: Any) -> Reply:
        if seen.method != "GET":
            version["n"] += 1
            return Reply(body=seen.method.encode() + seen.body)
        return Reply(headers=[("Cache-Control", "max-age=60")], body=b"v%d" % version["n"])

    origin.route(path, script)
    # Every worker holds v1 in memory, fresh for a minute.
    assert {r.content for r in fresh_connection_gets(server4, zone, path, 40)} == {b"v1"}
    counted = invalidations(server4)
    sent = httpx.request(
        method, server4.edge_url + path, headers={"Host": zone["fqdn"]}, content=b"+data"
    )
    assert (sent.headers["x-cache"], sent.content) == ("BYPASS", method.encode() + b"+data")
    after = fresh_connection_gets(server4, zone, path, 40)
    assert [r.content for r in after] == [b"v2"] * 40
    assert after[0].headers["x-cache"] == "EXPIRED"
    assert [s.method for s in origin.seen[path]] == ["GET", method, "GET"]
    assert invalidations(server4) == counted + 1


def test_a_304_to_a_forced_revalidation_drops_the_object_in_every_worker(
    server4: Server, origin: Origin, path: str
) -> None:
    # The object is fresh in every worker's memory; one client forces a revalidation
    # (RFC 9111 §5.2.1.4) and the 304 sets its cookie: no worker serves the object again.
    zone = server4.create_zone(origin.url, alias="withdrawn-everywhere")

    def script(seen: Any) -> Reply:
        headers = [("ETag", '"v1"'), ("Cache-Control", "max-age=60")]
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers=[*headers, ("Set-Cookie", "session=theirs")])
        return Reply(headers=headers, body=b"v%d" % origin.count(path))

    origin.route(path, script)
    assert {r.content for r in fresh_connection_gets(server4, zone, path, 40)} == {b"v1"}
    counted = invalidations(server4)
    forced = server4.get(zone["fqdn"], path, headers={"Cache-Control": "no-cache"})
    assert (forced.content, forced.headers["set-cookie"]) == (b"v1", "session=theirs")
    after = fresh_connection_gets(server4, zone, path, 40)
    assert [(r.content, "set-cookie" in r.headers) for r in after] == [(b"v3", False)] * 40
    assert [s.headers.get("if-none-match") for s in origin.seen[path]] == [None, '"v1"', None]
    assert invalidations(server4) == counted + 1


def test_unkeyed_override_headers_never_reach_the_origin(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=b"x"))
    server.get(
        zone["fqdn"], path, headers={"X-Forwarded-Host": "evil.example", "X-Original-URL": "/admin"}
    )
    seen = origin.seen[path][0].headers
    assert "x-forwarded-host" not in seen and "x-original-url" not in seen
    assert seen["via"].endswith("1.1 pullzone")


def test_a_range_on_a_cold_object_is_a_206_as_soon_as_its_bytes_arrive(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """Not the whole object from byte 0: the range is answered from the fill as it goes,
    while the rest is still on its way from the origin (and is stored)."""
    first_part = bytes(range(256)) * 4096  # 1 MiB, then the origin holds the rest
    rest = b"r" * 1024
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield first_part
        release.wait(30)
        yield rest

    origin.route(
        path,
        lambda seen: Reply(
            headers=[("Cache-Control", "max-age=60"), ("Content-Type", "video/mp4")],
            body=body(),
            length=len(first_part) + len(rest),
        ),
    )
    try:
        part = server.get(zone["fqdn"], path, headers={"Range": "bytes=1000-1099"})
        assert release.is_set() is False  # answered while the origin still holds the rest
        assert (part.status_code, part.content) == (206, first_part[1000:1100])
        size = len(first_part) + len(rest)
        assert part.headers["content-range"] == f"bytes 1000-1099/{size}"
        assert part.headers["x-cache"] == "MISS"
    finally:
        release.set()
    whole = server.get(zone["fqdn"], path)  # follows the same fill: one origin request
    assert (whole.status_code, whole.content) == (200, first_part + rest)
    assert origin.count(path) == 1


def test_cold_multiple_and_unsatisfiable_ranges(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    body = bytes(range(256)) * 4
    origin.route(path, Reply(headers=[("Cache-Control", "max-age=60")], body=body))
    bad = server.get(zone["fqdn"], path, headers={"Range": "bytes=5000-6000"})
    assert (bad.status_code, bad.headers["content-range"]) == (416, f"bytes */{len(body)}")
    other = path + "?multi"  # another object, cold too
    multi = server.get(zone["fqdn"], other, headers={"Range": "bytes=0-1,100-101"})
    assert (multi.status_code, multi.headers["x-cache"]) == (206, "MISS")
    assert multi.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert f"Content-Range: bytes 100-101/{len(body)}".encode() in multi.content
    assert body[100:102] in multi.content


def test_an_unsafe_method_on_another_spelling_invalidates_the_stored_object(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """RFC 9111 §4.4 with RFC 3986 §6.2.2: `/%62` is `/b`."""
    base = path.rsplit("/", 1)[0]
    origin.route(base + "/b", Reply(headers=[("Cache-Control", "max-age=60")], body=b"b"))
    origin.route(base + "/%62", Reply(body=b"posted"))
    server.get(zone["fqdn"], base + "/b")
    assert server.get(zone["fqdn"], base + "/b").headers["x-cache"] == "HIT"
    server.edge.post(base + "/%62", headers={"Host": zone["fqdn"]}, content=b"x")
    assert server.get(zone["fqdn"], base + "/b").headers["x-cache"] == "EXPIRED"
