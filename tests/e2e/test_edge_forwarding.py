"""What the edge sends its origins, and what it answers itself instead of asking them:
client address headers, CDN-Loop (RFC 8586), Max-Forwards (RFC 9110 §7.6.2), TRACE,
statuses no origin may send, a query outside the key, Vary on a hop-by-hop field."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest
from origin import Origin, Reply, Seen
from server import Server

Zone = dict[str, Any]
CACHED = [("Cache-Control", "max-age=60")]


def test_client_address_headers_are_set_by_the_edge(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    forged = {name: "203.0.113.9" for name in ("X-Real-IP", "True-Client-IP", "X-Client-IP")}
    server.get(zone["fqdn"], path, headers=forged)
    [seen] = origin.seen[path]
    for name in forged:
        assert seen.headers[name.lower()] == "127.0.0.1", name


@pytest.mark.zone(cache={"querystring": "N"})
def test_a_query_outside_the_cache_key_is_not_sent_to_the_origin(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """An origin that reflects the query would otherwise put one client's query (a script)
    into the page every visitor of the shared object gets."""
    origin.route(path, lambda seen: Reply(headers=CACHED, body=seen.path.encode()))
    first = server.get(zone["fqdn"], path + "?q=<script>alert(1)</script>")
    assert first.content == path.encode()
    second = server.get(zone["fqdn"], path + "?q=other")
    assert (second.headers["x-cache"], second.content) == ("HIT", path.encode())
    assert [seen.path for seen in origin.seen[path]] == [path]
    # Not cached, so not keyed: a POST keeps its query.
    server.edge.post(path + "?id=7", headers={"Host": zone["fqdn"]}, content=b"x")
    assert origin.seen[path + "?id=7"][0].method == "POST"


def test_vary_on_a_field_the_client_made_hop_by_hop_keys_on_what_was_forwarded(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    """`Connection: Origin` keeps Origin from the origin (RFC 9110 §7.6.1), so the answer
    is the one for no Origin, and must not be stored as the answer for that Origin."""

    def cors(seen: Seen) -> Reply:
        headers = [*CACHED, ("Vary", "Origin")]
        if "origin" in seen.headers:
            headers.append(("Access-Control-Allow-Origin", seen.headers["origin"]))
        return Reply(headers=headers, body=b"data")

    origin.route(path, cors)
    app = {"Origin": "https://app.example"}
    with socket.create_connection(("127.0.0.1", server.edge_port), timeout=10) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\nOrigin: https://app.example\r\n"
            "Connection: close, Origin\r\n\r\n".encode()
        )
        while s.recv(65536):
            pass
    seen = origin.seen[path]
    assert len(seen) == 1 and "origin" not in seen[0].headers
    r = server.get(zone["fqdn"], path, headers=app)
    assert r.headers.get("access-control-allow-origin") == "https://app.example", r.headers
    again = server.get(zone["fqdn"], path, headers=app)
    assert again.headers["x-cache"] == "HIT"
    assert again.headers["access-control-allow-origin"] == "https://app.example"


def test_cdn_loop_is_sent_and_a_zone_whose_origin_is_its_own_edge_is_a_508_at_once(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    server.get(zone["fqdn"], path, headers={"CDN-Loop": "other-cdn; loops=1"})
    [seen] = origin.seen[path]
    assert seen.headers["cdn-loop"] == "other-cdn; loops=1, localhost"

    looping = server.create_zone(
        server.edge_url, alias="selfloop", cnames="loop.test", hostHeader="loop.test"
    )
    started = time.monotonic()
    r = httpx.get(server.edge_url + path, headers={"Host": "loop.test"}, timeout=10)
    assert r.status_code == 508, r.text
    assert time.monotonic() - started < 5
    assert looping["id"]


def test_trace_is_refused_and_options_with_max_forwards_0_is_answered_by_the_edge(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    host = {"Host": zone["fqdn"]}
    trace = server.edge.request("TRACE", path, headers={**host, "Cookie": "secret=1"})
    assert trace.status_code == 405 and "GET" in trace.headers["allow"]
    assert b"secret" not in trace.content
    options = server.edge.request("OPTIONS", path, headers={**host, "Max-Forwards": "0"})
    assert options.status_code == 200 and "OPTIONS" in options.headers["allow"]
    assert origin.seen[path] == []
    server.edge.request("OPTIONS", path, headers={**host, "Max-Forwards": "3"})
    [seen] = origin.seen[path]
    assert (seen.method, seen.headers["max-forwards"]) == ("OPTIONS", "2")


@pytest.mark.parametrize(
    ("status", "why"),
    [(101, "unsolicited upgrade"), (304, "304 to an unconditional GET"), (600, "not HTTP")],
    ids=["101", "304", "600"],
)
def test_statuses_no_origin_may_send_are_a_502_never_relayed_or_stored(
    server: Server, origin: Origin, zone: Zone, path: str, status: int, why: str
) -> None:
    origin.route(path, Reply(status, headers=CACHED))
    r = server.get(zone["fqdn"], path)
    assert r.status_code == 502, (why, r.status_code)
    origin.route(path, Reply(headers=CACHED, body=b"fine"))
    assert server.get(zone["fqdn"], path).content == b"fine"


def test_a_host_with_a_trailing_dot_is_the_same_zone(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CACHED, body=b"dot"))
    r = server.get(zone["fqdn"] + ".", path)
    assert (r.status_code, r.content) == (200, b"dot")
