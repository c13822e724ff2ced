"""Interim (1xx) responses: the origin client's (edge/upstream.py tells the caller of each
before the final response arrives), and
how the HTTP/1.1 connection writes them (edge/http.py, writer.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pullzone.edge.http import Connection, Exchange, Request
from pullzone.edge.origin import Origin
from pullzone.edge.upstream import relayed_interim
from pullzone.edge.writer import interim_head
from pullzone.zones.model import Zone

INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 102 Processing\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n\r\n"
)
FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nhello"


@pytest.fixture()
async def origin_url() -> AsyncIterator[str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # each request on the connection (kept alive), the same answer
                await reader.readuntil(b"\r\n\r\n")
                writer.write(INTERIM + FINAL)
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()


async def test_interim_responses_are_reported_in_order_then_the_final_one(
    origin_url: str,
) -> None:
    origin = Origin(connect_timeout=5, read_timeout=5)
    zone = Zone(id=1, name="z", alias="z", origin=origin_url)
    seen: list[tuple[int, list[tuple[str, str]]]] = []
    try:
        response = await origin.request(
            zone, "GET", "/", [], interim=lambda s, h: seen.append((s, h))
        )
        assert (response.status, response.header("x-final")) == (200, "yes")
        assert await response.read() == b"hello"
        assert seen == [
            (102, []),
            (103, [("Link", "</a.css>; rel=preload"), ("Link", "</b.js>; rel=preload")]),
        ]
        # Again on the pooled connection, with nobody to tell: a plain exchange.
        again = await origin.request(zone, "GET", "/", [])
        assert again.status == 200 and await again.read() == b"hello"
        assert len(seen) == 2
    finally:
        await origin.close()


def test_only_what_is_relayed() -> None:
    assert [s for s in range(100, 200) if relayed_interim(s)] == list(range(102, 200))
    assert not relayed_interim(200) and not relayed_interim(101) and not relayed_interim(100)


def test_an_interim_head_drops_what_is_about_the_origin_connection() -> None:
    fields = [
        ("Link", "</a.css>; rel=preload"),
        ("Connection", "X-Hop"),
        ("X-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Content-Length", "0"),
    ]
    assert interim_head(103, fields) == (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    )


class Transport:
    def __init__(self) -> None:
        self.written = b""

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            "1.1",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ),
        ("1.0", b"HTTP/1.1 204 No Content\r\n\r\n"),  # RFC 9110 §15.2: none to HTTP/1.0
    ],
)
async def test_a_connection_writes_interim_responses_only_before_the_final_head(
    version: str, expected: bytes
) -> None:
    def handler(request: Request, conn: Exchange) -> None:
        conn.interim(103, [("Link", "</a.css>")])
        conn.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        conn.interim(103, [("Link", "</late.css>")])  # too late: never written

    transport = Transport()
    conn = Connection(handler)
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(f"GET / HTTP/{version}\r\nHost: a\r\n\r\n".encode())
    conn.connection_lost(None)
    assert transport.written == expected
