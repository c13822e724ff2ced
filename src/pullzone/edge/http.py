"""A lean HTTP/1.1 server connection: httptools parses, pullzone's handler answers.

The edge's hot path (a HIT) runs synchronously inside `data_received`: no task, no
coroutine, one `transport.write` of prebuilt bytes. Anything that must wait (a miss, a
large body) returns an awaitable, and the connection holds further pipelined requests
until it is done (RFC 9112 §9.3.2: responses in request order).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import unquote

import httptools

from pullzone.edge.writer import REASONS, connection_field, interim_head, plain

log = logging.getLogger(__name__)

MAX_URL = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
# A connection that receives nothing for between one and two ticks while no response is
# in progress is closed: idle keep-alive and slow headers (slowloris) alike. One timer per
# connection, checked against a counter, keeps timer churn off the per-request path.
IDLE_TICK = 30.0
# Longest a rejected connection is read (and dropped) after its answer (see _linger).
LINGER = 5.0
# A request head must arrive whole within this many seconds of its first byte, however
# slowly it trickles in (nginx's client_header_timeout): else 408 (RFC 9110 §15.5.9) and
# close. Checked once a second for all of a worker's connections (Connections.sweep).
HEADER_TIMEOUT = 10.0
SWEEP_EVERY = 1.0
# Out of file descriptors (the process's or the system's limit).
OUT_OF_FILES = frozenset({errno.EMFILE, errno.ENFILE})


class Request:
    __slots__ = ("body", "headers", "hmap", "keep_alive", "method", "scheme", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        hmap: dict[str, str],
        version: str,
        keep_alive: bool,
        body: bytes,
        scheme: str = "http",
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.hmap = hmap
        self.version = version
        self.keep_alive = keep_alive
        self.body = body
        self.scheme = scheme  # "https" when it came over TLS (HTTP/1.1 or HTTP/2)


# Responses by "protocol scheme" are counted for every label but this one, the most
# common, which is the rest of the responses counted (control/stats.py derives it).
PLAIN_LABEL = "http/1.1 http"


class Exchange(Protocol):
    """What a handler answers a request through: an HTTP/1.1 `Connection`, or one HTTP/2
    stream (edge/h2.py). It writes HTTP/1.1 response bytes (writer.py) either way."""

    close_after: bool
    xcache: str
    zone_id: int
    sent: int
    peer: str
    # The client's address (edge/client.py): the peer, or whom a trusted proxy's
    # X-Forwarded-For names; what access rules, the access log and the origin see.
    client: str

    @property
    def scheme(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    @property
    def status(self) -> int: ...

    def elapsed(self) -> float: ...

    def write(self, data: bytes) -> None: ...

    def interim(self, status: int, headers: list[tuple[str, str]]) -> None:
        """An interim (1xx) response from the origin, before the final one: written
        unless the final head has begun or the client cannot take one."""

    async def drain(self) -> None: ...


class Client(Protocol):
    """A client connection as `Connections` admits, sheds and sweeps it."""

    head_started: float

    def busy(self) -> bool: ...

    def close(self) -> None: ...

    def head_timed_out(self) -> None: ...


Handler = Callable[[Request, Exchange], Awaitable[None] | None]
Done = Callable[[Request, Exchange], None]
Count = Callable[[str], None]  # counts a fault by kind (WorkerStats.fault)


class Connections:
    """A worker's open client connections, oldest first, at most `limit` of them (as
    nginx's worker_connections): a worker must never run out of file descriptors, which
    it also needs for origin sockets, cache files and its databases.

    At the limit, a new connection sheds the oldest idle one (keep-alive, no request in
    progress; RFC 9112 §9.5 lets a server close those at any time), else the oldest one
    still sending its request head (slowloris); when every connection is answering a
    request, the new one is refused instead. Each is counted (`count`)."""

    def __init__(self, limit: int, count: Count) -> None:
        self.limit = limit
        self.count = count
        self.open: dict[Client, None] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def admit(self, conn: Client) -> bool:
        """Add `conn`, shedding another if at the limit; False: `conn` is refused."""
        if len(self.open) >= self.limit:
            victim = self._victim()
            if victim is None:
                self.count("connection_refused")
                return False
            self.count("connection_shed")
            self.open.pop(victim, None)
            victim.close()
        self.open[conn] = None
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY, self.sweep)
        return True

    def _victim(self) -> Client | None:
        sending_head = None
        for conn in self.open:
            if not conn.busy():
                if conn.head_started == 0.0:
                    return conn  # idle: the oldest such
                if sending_head is None:
                    sending_head = conn
        return sending_head

    def sweep(self) -> None:
        """Answer 408 to every connection whose head is late (HEADER_TIMEOUT)."""
        late = time.monotonic() - HEADER_TIMEOUT
        for conn in [c for c in self.open if 0.0 < c.head_started < late and not c.busy()]:
            self.count("header_timeout")
            conn.head_timed_out()
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY, self.sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()


class _Reject(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


# RFC 9112 §3.2 / RFC 3986 §3.2.2-3.2.3: Host = uri-host [ ":" port ], where uri-host is
# an IP-literal in brackets or a reg-name (unreserved, pct-encoded, sub-delims). Spaces,
# "@", "/" and the like make the field invalid: 400, never a guess at what was meant.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")
HOST = _HOST  # what edge/h2.py checks :authority against
# In a request path, after one round of percent-decoding: a control character (CR/LF
# injection into whatever the origin builds from the path, NUL truncation), or a `.`/`..`
# segment, `/` and `\` both counting as separators (`/%2e%2e/`, `/a/..%2f`, `\..\`).
# Dot segments would let one object be cached and purged under many names and could step
# outside the path prefix of a zone's origin (RFC 3986 §5.2.4): 400 instead.
_BAD_PATH = re.compile(r"[\x00-\x1f\x7f]|(?:^|[/\\])\.\.?(?:[/\\]|$)")


# Fields that change how a request is framed or answered at the connection level; most
# requests carry none of them.
_FRAMING_FIELDS = frozenset({"transfer-encoding", "content-length", "expect", "upgrade"})


def _path_of(target: str) -> str:
    """The path of an origin-form or absolute-form request target (RFC 9112 §3.2)."""
    if not target.startswith("/"):
        _, _, rest = target.partition("://")
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else ""
    return target.partition("?")[0]


def target_problem(target: str) -> bool:
    """True when the request target is one the edge refuses: a fragment (RFC 9112 §3.2
    has none; it would only alias cache keys) or a path matching _BAD_PATH."""
    if "#" in target:
        return True
    if "%" not in target and "/." not in target and "\\" not in target and target[:1] == "/":
        # The common case, without the regex: no encoding, no dot segment, and control
        # characters are the parser's to refuse (llhttp accepts none in a target).
        return False
    path = _path_of(target)
    if "%" in path:
        path = unquote(path, encoding="latin-1")
    return _BAD_PATH.search(path) is not None


def _drop(data: bytes) -> None:
    """What a closing connection does with what it still receives."""


class Connection(asyncio.Protocol):
    """One client connection; also the handle a handler writes its response through.

    Per response it notes what `on_done` reports on (stats, access log): the status and
    the bytes written (from `write`), and the zone and X-Cache the handler set.
    """

    scheme = "http"  # "https" in TlsConnection
    label = PLAIN_LABEL  # protocol and scheme, as /metrics counts requests by them

    def __init__(
        self, handler: Handler, on_done: Done | None = None, connections: Connections | None = None
    ) -> None:
        self._handler = handler
        self._on_done = on_done
        self._connections = connections
        # When the request head now arriving began (time.monotonic()); 0: none is, -1:
        # its body is (see Connections.sweep).
        self.head_started = 0.0
        self._request: Request | None = None
        self._head = b""
        self._valid_host = ""
        self._hmap: dict[str, str] = {}
        self._target = ""
        self._method = b""
        self._version = ""
        self.started = 0.0
        self.sent = 0
        self.zone_id = 0
        self.xcache = ""
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._feed: Callable[[bytes], None] = self._parser.feed_data
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
        self.client = ""
        self.close_after = False
        self._draining = False  # close once the responses in progress are written
        self._rejected: int | None = None  # a rejection waiting for those responses

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        if self._connections is not None and not self._connections.admit(self):
            self._closed = True
            transport.abort()  # type: ignore[attr-defined]  # a Transport, as above
            return
        peer = transport.get_extra_info("peername")
        self.peer = self.client = peer[0] if isinstance(peer, tuple) else ""
        self._timer = self._loop.call_later(IDLE_TICK, self._on_tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._connections is not None:
            self._connections.open.pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(ConnectionResetError("client went away"))

    def data_received(self, data: bytes) -> None:
        self._received += 1
        if self.head_started == 0.0:
            self.head_started = time.monotonic()
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade:
            # The request that asked for an upgrade (Connection: upgrade) has been
            # dispatched as a plain request, marked to close (on_headers_complete): the
            # edge never switches protocols (RFC 9110 §7.8 lets a server ignore Upgrade)
            # and reads nothing more from this connection.
            self._drain_and_close()
        except _Reject as reject:
            self._reject(reject.status)
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raises in HttpParserCallbackError, with
            # the original as __context__: a limit's own status (413/414/431/501) is
            # answered rather than a generic 400.
            cause = exc.__context__
            self._reject(cause.status if isinstance(cause, _Reject) else 400)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools callbacks ----------------------------------------------------------
    # A message's state (_url, _headers, _header_bytes, _body) is reset when the previous
    # message completes, not in an on_message_begin callback: one Python call less per
    # request on the hot path.

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
        # Checks that must happen before any body is read or anything is dispatched. A
        # rejection here closes the connection: the rest of what the client sent is
        # never parsed as another request (no request smuggling).
        self.head_started = -1.0
        parser = self._parser
        self._method = method = parser.get_method()
        self._version = version = parser.get_http_version()
        hmap: dict[str, str] = {}  # the request's fields by lowercase name, lists joined
        repeated_host = False
        for name, value in self._headers:
            lname = name.lower()
            if lname in hmap:
                repeated_host = repeated_host or lname == "host"
                hmap[lname] = f"{hmap[lname]}, {value}"
            else:
                hmap[lname] = value
        host = hmap.get("host")
        if host is None:
            # RFC 9112 §3.2: no Host in an HTTP/1.1 request is a 400.
            if version == "1.1":
                raise _Reject(400)
        elif host != self._valid_host:
            # RFC 9112 §3.2: more than one Host line, or an invalid Host field value: 400.
            # (A keep-alive connection usually repeats its Host: checked once.)
            if repeated_host or _HOST.fullmatch(host.strip(" \t")) is None:
                raise _Reject(400)
            self._valid_host = host
        if version != "1.1" and version != "1.0":
            # RFC 9112 §2.3: HTTP/0.9 simple requests and "HTTP/2.0" in text are refused.
            raise _Reject(505)
        if method == b"CONNECT":
            # RFC 9110 §9.3.6: CONNECT asks for a tunnel; an edge is no proxy (501, as
            # for any method the server does not implement, RFC 9110 §9.1).
            raise _Reject(501)
        if not _FRAMING_FIELDS.isdisjoint(hmap):
            self._check_framing(hmap, version)
        self._hmap = hmap
        self._target = self._url.decode("latin-1")
        if target_problem(self._target):
            raise _Reject(400)

    def _check_framing(self, hmap: dict[str, str], version: str) -> None:
        """The fields few requests carry: Transfer-Encoding, Content-Length, Expect and
        Upgrade."""
        coding_field = hmap.get("transfer-encoding")
        if coding_field is not None:
            codings = [c.strip(" \t").lower() for c in coding_field.split(",")]
            # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty
            # framing; RFC 9112 §6.3 (4): chunked must be the final coding, applied once
            # (§7) — else the body length cannot be determined: 400 and close.
            if version != "1.1" or codings[-1] != "chunked" or codings.count("chunked") > 1:
                raise _Reject(400)
            # RFC 9112 §6.1: a transfer coding the server does not understand: 501.
            if len(codings) > 1:
                raise _Reject(501)
        length = hmap.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            # Refused before the body is read (the parser has checked the syntax).
            raise _Reject(413)
        if "upgrade" in hmap and self._parser.should_upgrade():
            # Not switching protocols (see data_received): answer this request, then
            # close. The Upgrade field itself is hop-by-hop and never forwarded.
            self._draining = True
        expect = hmap.get("expect")
        if (
            expect is not None
            and expect.lower() == "100-continue"
            and self.transport is not None
            and not self.busy()
        ):
            # Only when no earlier response is in progress: a 100 written now would land
            # inside it (RFC 9112 §9.3.2). A waiting client sends the body anyway after a
            # while (RFC 9110 §10.1.1).
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY:
            raise _Reject(413)
        self._body.append(body)

    def on_message_complete(self) -> None:
        body = self._body
        request = Request(
            self._method.decode("ascii", "replace"),
            self._target,
            self._headers,
            self._hmap,
            self._version,
            self._parser.should_keep_alive() and not self._draining,
            b"".join(body) if body else b"",
            self.scheme,
        )
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self.head_started = 0.0
        if body:
            self._body = []
            self._body_size = 0
        if self._task is not None or self._queue:
            self._queue.append(request)
            if len(self._queue) > 16 and self.transport is not None:
                self.transport.pause_reading()
            return
        self._dispatch(request)

    # -- dispatch ---------------------------------------------------------------------

    def _dispatch(self, request: Request) -> None:
        self.close_after = not request.keep_alive
        self._request = request
        self.started = time.monotonic()  # not loop.time(): uvloop's counts milliseconds
        self.sent = self.zone_id = 0
        self.xcache = ""
        try:
            pending = self._handler(request, self)
        except Exception as exc:
            self._failed(exc)
            return
        if pending is None:
            self._after_response()
        else:
            self._task = self._loop.create_task(self._run(pending))

    async def _run(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except (ConnectionError, asyncio.CancelledError):
            self._task = None
            self._abort()
            return
        except Exception as exc:
            self._task = None
            self._failed(exc)
            return
        self._task = None
        self._after_response()

    def _done(self) -> None:
        request, self._request = self._request, None
        if request is not None and self._on_done is not None:
            self._on_done(request, self)

    def _after_response(self) -> None:
        request, self._request = self._request, None
        if request is not None and self._on_done is not None:  # _done(), on the hot path
            self._on_done(request, self)
        if self._closed:
            return
        if self.close_after:
            self.close()
            return
        if self._queue:
            request = self._queue.popleft()
            if self.transport is not None and not self._draining:
                self.transport.resume_reading()
            self._dispatch(request)
        elif self._rejected is not None:
            self._reject(self._rejected)
        elif self._draining:
            self.close()

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, OSError) and exc.errno in OUT_OF_FILES:
            # No descriptor for a cache file or an origin socket: counted, and this
            # connection is closed, which frees one. Before any of the response, the
            # client is told to come back (503, RFC 9110 §15.6.4).
            if self._connections is not None:
                self._connections.count("out_of_files")
            if not self.sent:
                self._queue.clear()
                self._reject(503)
                self._done()
                return
        else:
            log.error("edge handler failed", exc_info=exc)
        self._fail()

    def _fail(self) -> None:
        # A handler error after headers were sent cannot be turned into a 500: the
        # client must see a truncated message, so the connection is cut.
        self._abort()

    def _drain_and_close(self) -> None:
        self._draining = True
        if self.transport is not None:
            self.transport.pause_reading()
        if self._task is None and not self._queue:
            self.close()

    def _reject(self, status: int) -> None:
        if self._task is not None or self._queue:
            # Earlier pipelined requests are still being answered: the rejection is their
            # successor, never written into the middle of their responses (RFC 9112
            # §9.3.2: responses in request order). Nothing more is read meanwhile.
            self._rejected = status
            self._draining = True
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self.write(
            plain(
                status,
                REASONS.get(status, ""),
                head_only=False,
                fields=b"",
                tail=connection_field(True, "1.1"),
            )
        )
        self._linger()

    def _linger(self) -> None:
        """Close after a rejection without destroying its answer.

        Closing a socket with unread bytes makes the kernel send a reset, which can
        reach the client before it has read the answer (a 414 for a 1 MiB URL, say).
        As nginx's lingering close: send FIN after the answer, then read and drop what
        the client still sends until it closes too, for at most LINGER seconds."""
        if self._closed or self.transport is None:
            return
        self._feed = _drop  # nothing more is parsed, let alone dispatched
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.transport.resume_reading()
        self._loop.call_later(LINGER, self.close)

    def busy(self) -> bool:
        """A response is in progress (or waiting, pipelined)."""
        return self._task is not None or bool(self._queue)

    def head_timed_out(self) -> None:
        if self._feed is _drop:  # already lingering after a rejection
            self.close()
        else:
            self._reject(408)

    def _on_tick(self) -> None:
        busy = self.busy()
        if not busy and self._received == self._received_at_tick:
            self.close()
            return
        self._received_at_tick = self._received
        self._timer = self._loop.call_later(IDLE_TICK, self._on_tick)

    # -- what handlers use ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def status(self) -> int:
        """The status of the response being written (0 before its head)."""
        head = self._head
        return int(head[9:12]) if self.sent and head[:5] == b"HTTP/" else 0

    def elapsed(self) -> float:
        """Seconds since the current request was dispatched."""
        return time.monotonic() - self.started

    def write(self, data: bytes) -> None:
        if not self._closed and self.transport is not None:
            if not self.sent:
                self._head = data  # the status is read from it when asked for
            self.sent += len(data)
            self.transport.write(data)

    def interim(self, status: int, headers: list[tuple[str, str]]) -> None:
        # Not counted in `sent`: that is the final response's, whose head `status` reads.
        request = self._request
        if self.sent or self._closed or self.transport is None or request is None:
            return
        if request.version == "1.0":  # RFC 9110 §15.2: no 1xx to an HTTP/1.0 client
            return
        self.transport.write(interim_head(status, headers))

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
        self._done()  # a response cut short is still one (the log shows what was sent)
        if self.transport is not None:
            self._closed = True
            self.transport.abort()


class TlsConnection(Connection):
    """An HTTP/1.1 connection over TLS (edge/tls.py made the handshake)."""

    scheme = "https"
    label = "http/1.1 https"


async def serve(
    handler: Handler,
    *,
    host: str,
    port: int,
    on_done: Done | None = None,
    connections: Connections | None = None,
    reuse_port: bool = True,
    proxy_header: Count | None = None,
    **kwargs: Any,
) -> asyncio.Server:
    """The plain HTTP listener; `proxy_header` (--proxy-protocol): each connection starts
    with a PROXY protocol header, its faults counted by it (edge/proxy_protocol.py)."""
    from pullzone.edge import proxy_protocol

    loop = asyncio.get_running_loop()

    def plain() -> asyncio.BaseProtocol:
        return Connection(handler, on_done, connections)

    server = await loop.create_server(
        plain if proxy_header is None else proxy_protocol.behind(plain, proxy_header),
        host=host,
        port=port,
        reuse_port=reuse_port,
        backlog=2048,
        **kwargs,
    )
    return server
