"""The origin client (edge/upstream.py) under uvloop against a real loopback server that
answers each request with scripted bytes: framing, keep-alive, stale pooled connections,
timeouts."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from ports import free_port

from pullzone.edge.upstream import Endpoint, UpstreamError, UpstreamPool, request_head

# An answer: given the request's head (and body), what to do with the connection.
Script = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # False: close it


@dataclass
class Scripted:
    """A server whose n-th request is answered by the n-th script (the last one repeats)."""

    scripts: list[Script]
    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                script = self.scripts[min(len(self.requests), len(self.scripts)) - 1]
                if not await script(head, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("http", "127.0.0.1", self.port)


def answer(data: bytes, keep: bool = True) -> Script:
    async def script(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        return keep

    return script


def stall_after(data: bytes) -> Script:
    async def script(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        await asyncio.Event().wait()  # never answers the rest
        return False

    return script


async def close_unanswered(head: bytes, writer: asyncio.StreamWriter) -> bool:
    """As an origin that closed an idle connection just as a request was sent on it."""
    return False


Serve = Callable[..., Awaitable[Scripted]]


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


@pytest.fixture()
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(*scripts: Script) -> Scripted:
        scripted = Scripted(list(scripts))
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        scripted.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return scripted

    yield start
    for server in servers:
        server.close()


@pytest.fixture()
async def pool() -> AsyncIterator[UpstreamPool]:
    p = UpstreamPool()
    yield p
    p.close()


async def get(
    pool: UpstreamPool, origin: Scripted, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes]:
    response = await pool.request(
        origin.endpoint,
        method,
        "/p?q=1",
        [("Host", "origin.test")],
        body,
        connect_timeout=2,
        read_timeout=2,
    )
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def test_a_connection_is_kept_alive_and_reused(serve: Serve, pool: UpstreamPool) -> None:
    origin = await serve(answer(OK))
    assert await get(pool, origin) == (200, b"hello")
    assert await get(pool, origin) == (200, b"hello")
    assert origin.connections == 1
    assert origin.requests[0] == b"GET /p?q=1 HTTP/1.1\r\nHost: origin.test\r\n\r\n"


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe",  # the rest in a later write
    ],
)
async def test_a_body_is_read_whole_however_it_is_framed(
    serve: Serve, pool: UpstreamPool, data: bytes
) -> None:
    async def in_two(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        if data.endswith(b"he"):
            writer.write(b"llo")
        return True

    origin = await serve(in_two)
    assert await get(pool, origin) == (200, b"hello")
    assert await get(pool, origin) == (200, b"hello")
    assert origin.connections == 1


async def test_a_body_without_framing_ends_with_the_connection_which_is_not_reused(
    serve: Serve, pool: UpstreamPool
) -> None:
    origin = await serve(answer(b"HTTP/1.1 200 OK\r\n\r\nhello", keep=False))
    assert await get(pool, origin) == (200, b"hello")
    assert await get(pool, origin) == (200, b"hello")
    assert origin.connections == 2


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ],
)
async def test_a_body_cut_off_is_an_error_not_a_short_body(
    serve: Serve, pool: UpstreamPool, data: bytes
) -> None:
    origin = await serve(answer(data, keep=False))
    with pytest.raises(UpstreamError, match="closed the connection mid-body"):
        await get(pool, origin)


async def test_a_head_response_has_no_body_whatever_its_length_says(
    serve: Serve, pool: UpstreamPool
) -> None:
    origin = await serve(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), answer(OK))
    response = await pool.request(
        origin.endpoint, "HEAD", "/", [], None, connect_timeout=2, read_timeout=2
    )
    assert (response.status, response.content_length, await response.read()) == (200, 5, b"")
    response.release()
    assert await get(pool, origin) == (200, b"hello")  # on the same connection
    assert origin.connections == 1


@pytest.mark.parametrize("status", [204, 304])
async def test_204_and_304_have_no_body(serve: Serve, pool: UpstreamPool, status: int) -> None:
    origin = await serve(answer(b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n" % status), answer(OK))
    assert await get(pool, origin) == (status, b"")
    assert await get(pool, origin) == (200, b"hello")


async def test_bytes_after_the_message_end_keep_the_connection_from_reuse(
    serve: Serve, pool: UpstreamPool
) -> None:
    origin = await serve(answer(OK + b"garbage"))
    assert await get(pool, origin) == (200, b"hello")
    assert await get(pool, origin) == (200, b"hello")
    assert origin.connections == 2


async def test_an_idle_connection_the_origin_closed_is_replaced_for_a_get(
    serve: Serve, pool: UpstreamPool
) -> None:
    origin = await serve(answer(OK), close_unanswered, answer(OK))
    assert await get(pool, origin) == (200, b"hello")
    assert await get(pool, origin) == (200, b"hello")
    assert origin.connections == 2 and len(origin.requests) == 3


async def test_a_post_is_never_sent_twice(serve: Serve, pool: UpstreamPool) -> None:
    origin = await serve(answer(OK), close_unanswered, answer(OK))
    assert await get(pool, origin) == (200, b"hello")
    with pytest.raises(UpstreamError, match="before answering"):
        await get(pool, origin, "POST", b"form=1")
    assert len(origin.requests) == 2
    assert origin.requests[1].endswith(b"Content-Length: 6\r\n\r\nform=1")


async def test_a_request_that_timed_out_on_a_reused_connection_is_not_sent_again(
    serve: Serve, pool: UpstreamPool
) -> None:
    origin = await serve(answer(OK), stall_after(b""))
    assert await get(pool, origin) == (200, b"hello")
    with pytest.raises(TimeoutError):
        await pool.request(
            origin.endpoint, "GET", "/", [], None, connect_timeout=2, read_timeout=0.2
        )
    assert len(origin.requests) == 2 and origin.connections == 1


async def test_a_silent_origin_times_out_before_and_after_its_head(
    serve: Serve, pool: UpstreamPool
) -> None:
    origin = await serve(
        stall_after(b""), stall_after(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhel")
    )
    with pytest.raises(TimeoutError):
        await pool.request(
            origin.endpoint, "GET", "/", [], None, connect_timeout=2, read_timeout=0.2
        )
    response = await pool.request(
        origin.endpoint, "GET", "/", [], None, connect_timeout=2, read_timeout=0.2
    )
    with pytest.raises(UpstreamError, match="no data from the origin"):
        await response.read()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"SPDY/3 200 OK\r\n\r\n", "invalid response"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "head over"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "invalid"),
    ],
)
async def test_an_invalid_response_is_an_error(
    serve: Serve, pool: UpstreamPool, data: bytes, why: str
) -> None:
    origin = await serve(answer(data, keep=False))
    with pytest.raises(UpstreamError, match=why):
        await get(pool, origin)


async def test_interim_responses_are_told_and_the_final_one_returned(
    serve: Serve, pool: UpstreamPool
) -> None:
    origin = await serve(
        answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Hints\r\nLink: </a>\r\n\r\n" + OK)
    )
    seen: list[tuple[int, list[tuple[str, str]]]] = []
    response = await pool.request(
        origin.endpoint,
        "GET",
        "/",
        [],
        None,
        connect_timeout=2,
        read_timeout=2,
        interim=lambda status, fields: seen.append((status, fields)),
    )
    assert (response.status, await response.read()) == (200, b"hello")
    assert seen == [(103, [("Link", "</a>")])]


async def test_a_large_body_arrives_intact_through_flow_control(
    serve: Serve, pool: UpstreamPool
) -> None:
    body = bytes(range(256)) * (8 * 4096)  # 8 MiB: the socket is paused and resumed
    origin = await serve(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    )
    response = await pool.request(
        origin.endpoint, "GET", "/", [], None, connect_timeout=2, read_timeout=2
    )
    digest = hashlib.sha256()
    async for piece in response.stream(64 * 1024):
        assert len(piece) <= 64 * 1024
        digest.update(piece)
        await asyncio.sleep(0)  # a consumer slower than loopback
    response.release()
    assert digest.digest() == hashlib.sha256(body).digest()
    assert await get(pool, origin) == (200, body)


async def test_a_refused_connection_is_an_os_error(pool: UpstreamPool) -> None:
    with pytest.raises(OSError):
        await pool.request(
            Endpoint("http", "127.0.0.1", free_port()),
            "GET",
            "/",
            [],
            None,
            connect_timeout=2,
            read_timeout=2,
        )


def test_a_field_that_would_split_the_request_is_refused() -> None:
    with pytest.raises(UpstreamError, match="CR or LF"):
        request_head("GET", "/", [("X", "a\r\nEvil: 1")], None)
    assert request_head("POST", "/", [], None).endswith(b"Content-Length: 0\r\n\r\n")
    assert request_head("GET", "/", [("X", "é")], None) == "GET / HTTP/1.1\r\nX: é\r\n\r\n".encode(
        "latin-1"
    )
