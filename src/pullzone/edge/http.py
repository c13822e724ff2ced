"""A lean HTTP/1.1 server connection: httptools parses, pullzone's handler answers.

The edge's hot path (a HIT) runs synchronously inside `data_received`: no task, no
coroutine, one `transport.write` of prebuilt bytes. Anything that must wait (a miss, a
large body) returns an awaitable, and the connection holds further pipelined requests
until it is done (RFC 9112 §9.3.2: responses in request order).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httptools

log = logging.getLogger(__name__)

MAX_URL = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
# A connection that receives nothing for between one and two ticks while no response is
# in progress is closed: idle keep-alive and slow headers (slowloris) alike. One timer per
# connection, checked against a counter, keeps timer churn off the per-request path.
IDLE_TICK = 30.0

REASONS = {
    200: "OK",
    203: "Non-Authoritative Information",
    204: "No Content",
    206: "Partial Content",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Request:
    __slots__ = ("body", "headers", "hmap", "keep_alive", "method", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        hmap: dict[str, str],
        version: str,
        keep_alive: bool,
        body: bytes,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.hmap = hmap
        self.version = version
        self.keep_alive = keep_alive
        self.body = body


Handler = Callable[[Request, "Connection"], Awaitable[None] | None]


class _Reject(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def status_line(status: int, reason: str | None = None) -> bytes:
    return f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Status')}\r\n".encode("latin-1")


class Connection(asyncio.Protocol):
    """One client connection; also the handle a handler writes its response through."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._queue: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._received = 0  # data_received calls, for the idle check
        self._received_at_tick = -1
        self.peer = ""
        self.close_after = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self._timer = self._loop.call_later(IDLE_TICK, self._on_tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(ConnectionResetError("client went away"))

    def data_received(self, data: bytes) -> None:
        self._received += 1
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400)
        except _Reject as reject:
            self._reject(reject.status)
        except httptools.HttpParserError:
            self._reject(400)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_URL:
            raise _Reject(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES or len(self._headers) >= MAX_HEADERS:
            raise _Reject(431)
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            if (
                name.lower() == "expect"
                and value.lower() == "100-continue"
                and self.transport is not None
            ):
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY:
            raise _Reject(413)
        self._body.append(body)

    def on_message_complete(self) -> None:
        hmap: dict[str, str] = {}
        for name, value in self._headers:
            lname = name.lower()
            hmap[lname] = f"{hmap[lname]}, {value}" if lname in hmap else value
        request = Request(
            method=self._parser.get_method().decode("ascii", "replace"),
            target=self._url.decode("latin-1"),
            headers=self._headers,
            hmap=hmap,
            version=self._parser.get_http_version(),
            keep_alive=self._parser.should_keep_alive(),
            body=b"".join(self._body),
        )
        if self._task is not None or self._queue:
            self._queue.append(request)
            if len(self._queue) > 16 and self.transport is not None:
                self.transport.pause_reading()
            return
        self._dispatch(request)

    # -- dispatch ---------------------------------------------------------------------

    def _dispatch(self, request: Request) -> None:
        self.close_after = not request.keep_alive
        try:
            pending = self._handler(request, self)
        except Exception:
            log.exception("edge handler failed")
            self._fail()
            return
        if pending is None:
            self._after_response()
        else:
            self._task = self._loop.create_task(self._run(pending))

    async def _run(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except (ConnectionError, asyncio.CancelledError):
            self._abort()
            return
        except Exception:
            log.exception("edge handler failed")
            self._fail()
            return
        finally:
            self._task = None
        self._after_response()

    def _after_response(self) -> None:
        if self._closed:
            return
        if self.close_after:
            self.close()
            return
        if self._queue:
            request = self._queue.popleft()
            if self.transport is not None:
                self.transport.resume_reading()
            self._dispatch(request)

    def _fail(self) -> None:
        # A handler error after headers were sent cannot be turned into a 500: the
        # client must see a truncated message, so the connection is cut.
        self._abort()

    def _reject(self, status: int) -> None:
        body = f"{status} {REASONS.get(status, '')}\n".encode()
        self.write(
            status_line(status)
            + b"Content-Type: text/plain\r\nConnection: close\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        self.close()

    def _on_tick(self) -> None:
        busy = self._task is not None or bool(self._queue)
        if not busy and self._received == self._received_at_tick:
            self.close()
            return
        self._received_at_tick = self._received
        self._timer = self._loop.call_later(IDLE_TICK, self._on_tick)

    # -- what handlers use ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, data: bytes) -> None:
        if not self._closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the client has taken what was written (backpressure)."""
        if self._closed:
            raise ConnectionResetError("client went away")
        if self._paused_writing:
            if self._writable is None:
                self._writable = self._loop.create_future()
            await self._writable

    def close(self) -> None:
        if not self._closed and self.transport is not None:
            self._closed = True
            self.transport.close()

    def _abort(self) -> None:
        if self.transport is not None:
            self._closed = True
            self.transport.abort()


async def serve(
    handler: Handler, *, host: str, port: int, reuse_port: bool = True, **kwargs: Any
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(handler),
        host=host,
        port=port,
        reuse_port=reuse_port,
        backlog=2048,
        **kwargs,
    )
    return server
