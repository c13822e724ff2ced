"""Interim (1xx) responses from the origin (RFC 9110 §15.2, RFC 8297 103 Early Hints),
through real sockets: relayed to the client whose request reached the origin, before the
final response, and never stored."""

from __future__ import annotations

import socket
import threading
from typing import Any

import h2.events
import pytest
from origin import Origin, Reply
from server import Server
from test_edge_h2 import RawH2
from tls_support import Tls, https_zone, loopback_names, tls, tls_server

__all__ = ["loopback_names", "tls", "tls_server"]  # the fixtures this module uses

Zone = dict[str, Any]
LINK = "</style.css>; rel=preload; as=style"
# With a field about the origin's connection, which is not relayed.
EARLY_HINTS = [(103, [("Link", LINK), ("Keep-Alive", "timeout=5")])]
CACHEABLE = [("Cache-Control", "max-age=600")]
Head = tuple[str, dict[str, str]]  # status line, fields by lower-case name


def send(server: Server, host: str, path: str, method: str = "GET", version: str = "1.1") -> bytes:
    """One request on a fresh connection that closes after the answer; what the edge sent."""
    body = b"a form" if method == "POST" else b""
    head = f"{method} {path} HTTP/{version}\r\nHost: {host}\r\nConnection: close\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    with socket.create_connection(("127.0.0.1", server.edge_port), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        return read_all(s)


def read_all(s: socket.socket, raw: bytes = b"") -> bytes:
    while chunk := s.recv(65536):
        raw += chunk
    return raw


def parse(raw: bytes) -> tuple[list[Head], bytes]:
    """The heads in `raw`, interim ones then the final one, and the final one's body."""
    heads: list[Head] = []
    rest = raw
    while True:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {raw!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        fields = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        heads.append((status_line, fields))
        if not status_line.split(" ")[1].startswith("1"):
            return heads, rest


def test_a_miss_relays_early_hints_before_the_final_response_and_a_hit_has_none(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    final_held = threading.Event()
    origin.route(path, Reply(headers=CACHEABLE, body=b"page", interim=EARLY_HINTS, hold=final_held))
    request = f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.edge_port), timeout=10) as s:
        s.sendall(request.encode())
        early = b""
        try:
            while b"\r\n\r\n" not in early:  # while the origin still holds its final response
                chunk = s.recv(65536)
                assert chunk, early
                early += chunk
        finally:
            final_held.set()
        heads, body = parse(read_all(s, early))
    assert [line for line, _ in heads] == ["HTTP/1.1 103 Early Hints", "HTTP/1.1 200 OK"]
    assert heads[0][1] == {"link": LINK}  # Keep-Alive was the origin connection's
    assert (heads[1][1]["x-cache"], body) == ("MISS", b"page")
    assert "link" not in heads[1][1]

    # RFC 9110 §15.2: interim responses are not stored; the HIT is the final response only.
    heads, body = parse(send(server, zone["fqdn"], path))
    assert [line for line, _ in heads] == ["HTTP/1.1 200 OK"]
    assert (heads[0][1]["x-cache"], body) == ("HIT", b"page")
    assert "link" not in heads[0][1]
    assert origin.count(path) == 1


def test_an_http10_client_is_sent_no_interim_response(
    server: Server, origin: Origin, zone: Zone, path: str
) -> None:
    origin.route(
        path, Reply(headers=[("Cache-Control", "no-store")], body=b"x", interim=EARLY_HINTS)
    )
    heads, body = parse(send(server, zone["fqdn"], path, version="1.0"))
    assert [line for line, _ in heads] == ["HTTP/1.1 200 OK"] and body == b"x"
    # The same answer from the origin, to an HTTP/1.1 client: with its 103.
    heads, body = parse(send(server, zone["fqdn"], path))
    assert [line for line, _ in heads] == ["HTTP/1.1 103 Early Hints", "HTTP/1.1 200 OK"]
    assert origin.count(path) == 2


@pytest.mark.parametrize(
    ("method", "headers"),
    [("POST", CACHEABLE), ("GET", [("Cache-Control", "no-store")])],
    ids=["post", "no-store"],
)
def test_a_response_that_is_not_stored_relays_them_each_time(
    server: Server,
    origin: Origin,
    zone: Zone,
    path: str,
    method: str,
    headers: list[tuple[str, str]],
) -> None:
    interim = [(102, []), *EARLY_HINTS]
    origin.route(path, Reply(headers=headers, body=b"answer", interim=interim))
    for _ in range(2):
        heads, body = parse(send(server, zone["fqdn"], path, method))
        assert [line for line, _ in heads] == [
            "HTTP/1.1 102 Processing",
            "HTTP/1.1 103 Early Hints",
            "HTTP/1.1 200 OK",
        ]
        assert heads[1][1] == {"link": LINK} and body == b"answer"
    assert origin.count(path) == 2


@pytest.fixture()
def h2_zone(tls_server: Server, origin: Origin, tls: Tls) -> Zone:
    return https_zone(tls_server, origin.url, tls, http2=True)


@pytest.mark.usefixtures("loopback_names")
def test_http2_relays_them_as_informational_headers(
    tls_server: Server, origin: Origin, tls: Tls, h2_zone: Zone, path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"h2 page", interim=EARLY_HINTS))
    client = RawH2(tls_server, tls, h2_zone["fqdn"], window=65535)
    try:
        miss = client.get(path)
        client.until(lambda: client.ended(miss))
        hit = client.get(path)
        client.until(lambda: client.ended(hit))
        heads = [
            (e.stream_id, type(e).__name__, dict(e.headers or ()))
            for e in client.events
            if isinstance(e, h2.events.InformationalResponseReceived | h2.events.ResponseReceived)
        ]
    finally:
        client.sock.close()
    assert [(sid, kind) for sid, kind, _ in heads] == [
        (miss, "InformationalResponseReceived"),
        (miss, "ResponseReceived"),
        (hit, "ResponseReceived"),  # not stored (RFC 9110 §15.2)
    ]
    assert heads[0][2] == {b":status": b"103", b"link": LINK.encode()}
    assert heads[2][2][b"x-cache"] == b"HIT" and client.body(hit) == b"h2 page"
    assert origin.count(path) == 1
