"""The HTTP/1.1 client the edge asks origins and shields with: pooled keep-alive
connections, responses parsed by httptools (the parser the edge's own listener uses),
bodies streamed with flow control.

A miss is mostly this request (bench/README.md, "Misses"): it is written here rather than
taken from aiohttp, whose per-request machinery (a request and a response object, header
multidicts, a stream reader, a timer per read) cost a miss about as much as the rest of
it. What it needs of HTTP/1.1 is small: one request at a time per connection (no
pipelining), framing by Content-Length, chunked or close (RFC 9112 §6.3), interim
responses before the final one (RFC 9110 §15.2), and a connection reused only when the
message ended cleanly and both sides keep it alive (RFC 9112 §9.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast

import httptools

# Told of each interim (1xx) response: its status and header fields.
InterimReport = Callable[[int, list[tuple[str, str]]], None]

# Body bytes held per response before the socket stops being read (the consumer, a fill
# writing to disk or a client being relayed to, then sets the pace), and resumed below.
_PAUSE_AT = 1024 * 1024
_RESUME_AT = 256 * 1024
_MAX_HEAD = 64 * 1024  # a head larger than this is refused (aiohttp: 8 KiB per line)
IDLE_FOR = 15.0  # an idle pooled connection older than this is closed, not reused
_IDLE_PER_ENDPOINT = 256
_DNS_FOR = 60.0  # seconds a resolved name is reused
_BODILESS = frozenset({204, 304})  # RFC 9112 §6.3 (1): never a body, whatever the head says
# Methods a connection the origin closed while idle may be asked again on a new one: the
# request cannot have been acted on twice if it is idempotent (RFC 9110 §9.2.2).
_RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def relayed_interim(status: int) -> bool:
    """An interim response the edge relays (RFC 9110 §15.2). Not a 100 Continue: that
    answers the edge's own request (it never sends Expect; the client's was answered by
    http.py), nor a 101, which the edge never asks for (edge/origin.py refuses it)."""
    return 100 < status < 200 and status != 101


class UpstreamError(Exception):
    """The response was not valid HTTP/1.1, was too large a head, or was cut off."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a connection goes: scheme, host (a name or an address) and port, and the TLS
    name to ask for and check when it is not the host."""

    scheme: str
    host: str
    port: int
    server_hostname: str | None = None


class _Connection(asyncio.Protocol):
    """One connection to an endpoint; it feeds the response in flight, if any."""

    def __init__(self, pool: UpstreamPool, endpoint: Endpoint) -> None:
        self.pool = pool
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.idle_since = 0.0
        self.used = False  # it has carried a request before (a stale one may fail)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.response is None:
            self.close()  # bytes nobody asked for: the connection's framing is lost
        else:
            self.response.feed(data)

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost ends the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.response is not None:
            self.response.lost(exc)

    def close(self) -> None:
        self.closed = True
        self.response = None
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    """One response as it arrives: its head once `UpstreamPool.request` returns, then its
    body from `stream`. `release` gives the connection back when the body was read whole
    (or closes it); `close` always closes it."""

    def __init__(
        self,
        conn: _Connection,
        method: str,
        interim: InterimReport | None,
        read_timeout: float,
    ) -> None:
        self._conn = conn
        # The parser calls back this object: dropped once done, not left to the cycle GC.
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._head_only = method == "HEAD"
        self._interim = interim
        self._loop = asyncio.get_running_loop()
        self._read_timeout = read_timeout
        self._last_read = self._loop.time()
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            read_timeout, self._check_timeout
        )
        self._waiter: asyncio.Future[None] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._head_size = 0
        self._raw: list[tuple[str, str]] = []
        self._head_done = False
        self._until_close = False
        self._keep_alive = False
        self._error: BaseException | None = None
        self.received_any = False
        self.complete = False
        self.status = 0
        self.reason = ""
        self.fields: tuple[tuple[str, str], ...] = ()
        self.content_length: int | None = None
        self.shield: str | None = None  # the origin shield that answered (edge/origin.py)

    # -- the parser's callbacks (httptools) ----------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self.reason = reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > _MAX_HEAD:
            raise UpstreamError(f"response head over {_MAX_HEAD} bytes")
        self._raw.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # interim: the final response follows
            if self._interim is not None and relayed_interim(status):
                self._interim(status, self._raw)
            self._raw, self._head_size = [], 0
            return
        self.status = status
        self.fields = tuple(self._raw)
        framed = False
        for name, value in self._raw:
            lower = name.lower()
            if lower == "content-length":
                self.content_length = int(value)  # the parser checked it is one number
                framed = True
            elif lower == "transfer-encoding":
                framed = True
        self._keep_alive = self._parser.should_keep_alive()
        self._head_done = True
        if self._head_only or status in _BODILESS or status == 101:
            self._finish()
        else:
            self._until_close = not framed
            if self._until_close:
                self._keep_alive = False
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered >= _PAUSE_AT and not self._paused and self._conn.transport:
            self._paused = True
            self._conn.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._head_done:
            self._finish()
            self._wake()

    # -- fed by the connection -----------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.received_any = True
        self._last_read = self._loop.time()
        if self.complete or self._parser is None:
            self._keep_alive = False  # bytes past the message's end: not reusable
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # a 101's head is all there is of it (refused by edge/origin.py)
        except (httptools.HttpParserError, UpstreamError, ValueError) as exc:
            self._keep_alive = False
            if not self.complete:
                cause = exc.__context__ if isinstance(exc.__context__, UpstreamError) else exc
                self._fail(UpstreamError(f"invalid response from the origin: {cause}"))

    def lost(self, exc: Exception | None) -> None:
        self._keep_alive = False
        if self.complete:
            return
        if self._head_done and self._until_close:
            self._finish()  # RFC 9112 §6.3 (8): the body ends with the connection
            self._wake()
        elif exc is not None and not isinstance(exc, UpstreamError):
            self._fail(exc if isinstance(exc, OSError) else UpstreamError(str(exc)))
        else:
            where = "mid-body" if self._head_done else "before answering"
            self._fail(UpstreamError(f"the origin closed the connection {where}"))

    def _finish(self) -> None:
        self.complete = True
        self._cancel_timer()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._cancel_timer()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_timeout(self) -> None:
        """No byte for `read_timeout`: the response fails (aiohttp's sock_read)."""
        idle = self._loop.time() - self._last_read
        if self._paused:  # the reader sets the pace: the origin is not the one waiting
            idle = 0.0
        if idle < self._read_timeout:
            self._timer = self._loop.call_later(self._read_timeout - idle, self._check_timeout)
            return
        self._timer = None
        self._fail(TimeoutError(f"no data from the origin for {self._read_timeout:g} s"))
        self._conn.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- for the caller ------------------------------------------------------------------

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    async def head(self) -> None:
        """Until the final response's head has arrived."""
        while not self._head_done:
            await self._wait()

    def header(self, name: str) -> str | None:
        """The first value of the field `name` (any case), if the response has it."""
        lower = name.lower()
        for field, value in self.fields:
            if field.lower() == lower:
                return value
        return None

    async def stream(self, size: int) -> AsyncIterator[bytes]:
        """The body as it arrives, in pieces of at most `size` bytes; an UpstreamError
        when it is cut off (the connection failed or went silent)."""
        while True:
            if self._chunks:
                yield self._take(size)
            elif self.complete:
                return
            else:
                try:
                    await self._wait()
                except (OSError, TimeoutError) as exc:
                    raise UpstreamError(f"origin body cut off: {exc}") from exc

    async def read(self) -> bytes:
        """The whole body (for small ones: tests, probes)."""
        return b"".join([piece async for piece in self.stream(_PAUSE_AT)])

    def _take(self, size: int) -> bytes:
        first = self._chunks.popleft()
        if len(first) > size:
            self._chunks.appendleft(first[size:])
            first = first[:size]
        elif self._chunks and len(first) + len(self._chunks[0]) <= size:
            pieces, taken = [first], len(first)  # joined once: `+=` would copy each time
            while self._chunks and taken + len(self._chunks[0]) <= size:
                pieces.append(self._chunks.popleft())
                taken += len(pieces[-1])
            first = b"".join(pieces)
        self._buffered -= len(first)
        if self._paused and self._buffered <= _RESUME_AT and self._conn.transport:
            self._paused = False
            self._conn.transport.resume_reading()
        return first

    def release(self) -> None:
        """Done with the response: its connection goes back to the pool if the message
        was read to its end and may be kept, and is closed otherwise."""
        self._cancel_timer()
        self._parser = None
        conn = self._conn
        if conn.response is not self:
            return
        conn.response = None
        if self.complete and self._keep_alive and not conn.closed:
            if self._paused and conn.transport is not None:
                conn.transport.resume_reading()
            conn.pool.give_back(conn)
        else:
            conn.close()

    def close(self) -> None:
        self._cancel_timer()
        self._parser = None
        if self._conn.response is self:
            self._conn.close()


class UpstreamPool:
    """Connections to origins and shields, kept alive between requests (one pool per
    worker: every client of the worker shares them)."""

    def __init__(self) -> None:
        self._idle: dict[Endpoint, list[_Connection]] = {}
        self._addresses: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._tls: ssl.SSLContext | None = None

    async def request(
        self,
        endpoint: Endpoint,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        *,
        connect_timeout: float,
        read_timeout: float,
        interim: InterimReport | None = None,
    ) -> UpstreamResponse:
        """Send the request; return once the final response's head has arrived. OSError
        when no connection could be made, TimeoutError when the origin was too slow,
        UpstreamError when its answer was not HTTP/1.1. A pooled connection the origin
        had closed meanwhile is replaced once, for a request that may be sent twice."""
        data = request_head(method, target, headers, body)
        while True:
            conn = self._take(endpoint) or await self._connect(endpoint, connect_timeout)
            reused = conn.used
            conn.used = True
            response = UpstreamResponse(conn, method, interim, read_timeout)
            conn.response = response
            assert conn.transport is not None
            conn.transport.write(data)
            try:
                await response.head()
            except TimeoutError:  # an OSError, but the origin may be working on it
                response.close()
                raise
            except (UpstreamError, OSError):
                response.close()
                if reused and not response.received_any and method in _RETRYABLE:
                    continue  # the origin had closed it while idle: a new connection
                raise
            except BaseException:
                response.close()
                raise
            return response

    def _take(self, endpoint: Endpoint) -> _Connection | None:
        idle = self._idle.get(endpoint)
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_FOR:
                return conn
            conn.close()
        return None

    def give_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.endpoint, [])
        if len(idle) >= _IDLE_PER_ENDPOINT:
            conn.close()
            return
        conn.idle_since = asyncio.get_running_loop().time()
        idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        """A connection that closed: no longer offered (an idle one the origin closed)."""
        idle = self._idle.get(conn.endpoint)
        if idle and conn in idle:
            idle.remove(conn)

    async def _connect(self, endpoint: Endpoint, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._context() if endpoint.scheme == "https" else None
        name = endpoint.server_hostname or endpoint.host
        failure: OSError | None = None
        async with asyncio.timeout(timeout):
            for address in await self._resolve(endpoint.host, endpoint.port):
                conn = _Connection(self, endpoint)
                try:
                    await loop.create_connection(
                        lambda conn=conn: conn,
                        address,
                        endpoint.port,
                        ssl=tls,
                        server_hostname=name if tls is not None else None,
                    )
                except OSError as exc:
                    failure = exc
                    continue
                return conn
        assert failure is not None
        raise failure

    async def _resolve(self, host: str, port: int) -> list[str]:
        """The host's addresses: itself when it is one; else resolved, reused for a
        minute (as aiohttp's ttl_dns_cache was)."""
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host)
            return [host]
        loop = asyncio.get_running_loop()
        known = self._addresses.get((host, port))
        if known is not None and known[0] > loop.time():
            return known[1]
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise OSError(f"{host} has no address")
        self._addresses[(host, port)] = (loop.time() + _DNS_FOR, addresses)
        return addresses

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            # The system's trust store (SSL_CERT_FILE and SSL_CERT_DIR are honoured).
            self._tls = ssl.create_default_context()
        return self._tls

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


def request_head(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
) -> bytes:
    """The request's bytes: its head, framed by the client (RFC 9112 §6.2: the length
    when there is a body or the method has one), then the body. A field that would split
    the head (CR or LF in a name or value) is refused rather than sent."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
    lines.append("\r\n")
    head = "".join(lines)
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        raise UpstreamError("a request field holds CR or LF")
    try:
        encoded = head.encode("latin-1")
    except UnicodeEncodeError:
        encoded = head.encode()  # a configured value beyond Latin-1, as aiohttp sent it
    return encoded + body if body else encoded
