"""HTTP/2 (RFC 9113) at the edge, on libnghttp2 (edge/nghttp2.py), over TLS (ALPN `h2`).

Each stream is one request given to the same `Edge.handle` as HTTP/1.1's; the `Stream`
it answers through offers what handlers use of `http.Connection`. The response bytes the
one writer builds (writer.py: an HTTP/1.1 head, then the body) are translated at the
stream's boundary: the head into HEADERS (`:status`, names lower-cased, the connection's
own fields dropped), the body into DATA frames nghttp2 pulls from the stream's buffer as
the flow-control windows allow, END_STREAM once the handler is done.
`writer.body_framing` knows HTTP/2 (version "2"): no chunks, no close-delimited body.

nghttp2 parses, decodes HPACK, checks what clients send (RFC 9113 §8.2.1, pseudo-header
fields, stream states; a stream that breaks them is reset before it reaches pullzone)
and encodes what the edge sends; its callbacks run inside `mem_recv` and `mem_send`.

Bounds: MAX_STREAMS concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS), a header list
of at most MAX_HEADER_LIST bytes (431 beyond, as over HTTP/1.1), request bodies of at
most http.MAX_BODY (one stream's, and all of a connection's held at once). Each stream
buffers its own body against its own flow-control window: a client that stops reading
one stream stalls that stream's handler (drain), never the others.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pullzone.edge import http
from pullzone.edge.nghttp2 import (
    DATA_FLAG_EOF,
    ERR_CALLBACK_FAILURE,
    ERR_DEFERRED,
    FLAG_END_STREAM,
    FRAME_DATA,
    FRAME_HEADERS,
    INTERNAL_ERROR,
    NO_ERROR,
    SETTINGS_ENABLE_PUSH,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    ffi,
    lib,
)
from pullzone.edge.writer import REASONS, interim_fields, plain

log = logging.getLogger(__name__)

MAX_STREAMS = 100
MAX_HEADER_LIST = http.MAX_HEADER_BYTES
# A stream's handler waits (drain) while more than this is buffered for its client.
STREAM_BUFFER = 256 * 1024
IDLE_TIMEOUT = 2 * http.IDLE_TICK  # no stream and nothing received: GOAWAY and close

# RFC 9113 §8.2.2: fields that are about one HTTP/1.1 connection, never sent over HTTP/2.
_CONNECTION_FIELDS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
# RFC 9113 §6.5.2 / RFC 7541 §4.1: a field's size in a header list.
_FIELD_OVERHEAD = 32

Fields = list[tuple[bytes, bytes]]


class Stream:
    """One request's exchange on an HTTP/2 connection (an `http.Exchange`)."""

    scheme = "https"
    label = "h2 https"

    def __init__(self, conn: H2Connection, stream_id: int) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self.close_after = False
        self.xcache = ""
        self.zone_id = 0
        self.sent = 0
        self.peer = conn.peer
        self.client = conn.peer
        self.started = time.monotonic()
        self._status = 0
        self._head = b""  # HTTP/1.1 head bytes until the blank line
        self._headers_sent = False
        self.buffer = bytearray()  # body bytes nghttp2 has not taken yet
        self.ended = False  # the handler is done: END_STREAM after the buffer
        self.deferred = False  # nghttp2 found the buffer empty and waits to be resumed
        self.complete = False  # END_STREAM handed to nghttp2
        self._reset = False
        self._writable: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.request: http.Request | None = None

    # -- http.Exchange ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._reset or self._conn.closed

    @property
    def status(self) -> int:
        return self._status

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def write(self, data: bytes) -> None:
        if self.closed or self.ended:
            return
        self.sent += len(data)
        if not self._headers_sent:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._head[: end + 4], self._head[end + 4 :]
            self._head = b""
            self._send_head(head)
        if data:
            self.buffer += data
            self._conn.resume(self)

    def interim(self, status: int, headers: list[tuple[str, str]]) -> None:
        # RFC 9113 §8.1: a HEADERS frame of its own, without END_STREAM, before the final one.
        if self.closed or self.ended or self._headers_sent or self._head:
            return
        parts = [b":status", b"%d" % status]
        for name, value in interim_fields(headers):
            lname = name.lower().encode("latin-1")
            if lname not in _CONNECTION_FIELDS:
                parts += (lname, value.encode("latin-1"))
        self._conn.send_interim(self, parts)

    async def drain(self) -> None:
        while True:
            if self.closed:
                raise ConnectionResetError("stream reset")
            if len(self.buffer) <= STREAM_BUFFER and not self._conn.paused:
                return
            if self._writable is None or self._writable.done():
                self._writable = asyncio.get_running_loop().create_future()
            await self._writable

    # -- the connection's side --------------------------------------------------------

    def _send_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")  # the status line, the fields, then two empty ones
        status = lines[0][9:12]
        self._status = int(status)
        parts = [b":status", status]
        for line in lines[1:-2]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname not in _CONNECTION_FIELDS:
                parts += (lname, value.strip())
        self._headers_sent = True
        self._conn.send_response(self, parts)

    def wake(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def finish(self) -> None:
        """The handler is done: END_STREAM once the buffer is sent."""
        if self.closed or self.ended:
            return
        if not self._headers_sent:
            if self._head:  # a head that never ended: the handler failed
                self.abort()
                return
            self.write(plain(500, REASONS[500], head_only=False, fields=b"", tail=b""))
        self.ended = True
        self._conn.resume(self)

    def abort(self) -> None:
        self._reset = True
        self.buffer.clear()
        self._conn.reset(self)
        self.wake()

    def reset_by_peer(self) -> None:
        self._reset = True
        self.buffer.clear()
        self.wake()
        if self.task is not None and not self.task.done():
            self.task.cancel()


class _Incoming:
    """A request's header fields as nghttp2 decodes them, until its HEADERS frame ends."""

    __slots__ = ("fields", "size")

    def __init__(self) -> None:
        self.fields: Fields = []
        self.size = 0


class H2Connection(asyncio.Protocol):
    """One HTTP/2 client connection over TLS: one nghttp2 server session."""

    def __init__(
        self,
        handler: http.Handler,
        on_done: http.Done | None = None,
        connections: http.Connections | None = None,
    ) -> None:
        self._handler = handler
        self._on_done = on_done
        self._connections = connections
        self._handle = ffi.new_handle(self)  # the callbacks' user_data
        session = ffi.new("nghttp2_session **")
        if lib.nghttp2_session_server_new(session, _CALLBACKS, self._handle) != 0:
            raise MemoryError("nghttp2_session_server_new")
        self._session: Any = ffi.gc(session[0], lib.nghttp2_session_del)
        self._out = ffi.new("const char **")
        self._streams: dict[int, Stream] = {}
        self._incoming: dict[int, _Incoming] = {}  # HEADERS being received
        self._bodies: dict[int, list[bytes]] = {}
        self._body_sizes: dict[int, int] = {}
        self._body_total = 0  # request body bytes held, all streams together
        self._pending: dict[int, http.Request] = {}  # headers received, body arriving
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.client = ""
        self.paused = False
        self.closed = False
        self.head_started = 0.0  # for http.Connections (HTTP/2 has no slow head to time)
        self._received = 0
        self._received_at_tick = -1
        # Inside data_received: what streams answered meanwhile (HITs, synchronously) is
        # sent in one write at its end, not a TLS record per frame.
        self._receiving = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # -- http.Client ------------------------------------------------------------------

    def busy(self) -> bool:
        return bool(self._streams) or bool(self._pending)

    def head_timed_out(self) -> None:  # pragma: no cover: head_started stays 0
        self.close()

    def close(self) -> None:
        if self.closed or self.transport is None:
            return
        lib.nghttp2_session_terminate_session(self._session, NO_ERROR)  # GOAWAY
        self._send()
        self.closed = True
        self.transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self._connections is not None and not self._connections.admit(self):
            self.closed = True
            transport.abort()  # type: ignore[attr-defined]
            return
        peer = transport.get_extra_info("peername")
        self.peer = self.client = peer[0] if isinstance(peer, tuple) else ""
        lib.nghttp2_submit_settings(self._session, 0, _SETTINGS, len(_SETTINGS))
        self._send()
        self._timer = self._loop.call_later(IDLE_TIMEOUT, self._on_tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._connections is not None:
            self._connections.open.pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
        for stream in list(self._streams.values()):
            stream.reset_by_peer()
        self._streams.clear()
        self._session = None  # nghttp2_session_del; no callback comes after
        self._handle = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._send()
        for stream in list(self._streams.values()):
            stream.wake()

    def _on_tick(self) -> None:
        if not self.busy() and self._received == self._received_at_tick:
            self.close()
            return
        self._received_at_tick = self._received
        self._timer = self._loop.call_later(IDLE_TIMEOUT, self._on_tick)

    def data_received(self, data: bytes) -> None:
        if self._session is None or self.closed:
            return
        self._received += 1
        self._receiving = True
        try:
            done = lib.nghttp2_session_mem_recv(self._session, data, len(data))
        finally:
            self._receiving = False
        self._send()
        if done < 0:  # a fatal error: nghttp2 has queued its GOAWAY where it could
            self._fail(done)

    def _fail(self, code: int) -> None:
        log.debug("HTTP/2 connection failed: %s", ffi.string(lib.nghttp2_strerror(code)))
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- requests (called back from inside mem_recv) ----------------------------------

    def on_begin_headers(self, sid: int) -> None:
        if sid not in self._pending and sid not in self._streams:
            self._incoming[sid] = _Incoming()

    def on_header(self, sid: int, name: bytes, value: bytes) -> None:
        incoming = self._incoming.get(sid)
        if incoming is None:
            return  # trailers: their fields are not used
        incoming.size += len(name) + len(value) + _FIELD_OVERHEAD
        if incoming.size <= MAX_HEADER_LIST or name[:1] == b":":
            incoming.fields.append((name, value))

    def on_headers_end(self, sid: int, end_stream: bool) -> None:
        incoming = self._incoming.pop(sid, None)
        if incoming is None:
            if end_stream:
                self._complete(sid)  # trailers end the body
            return
        request = self._request(incoming.fields)
        if incoming.size > MAX_HEADER_LIST:
            self._refuse(sid, request, 431)
        elif request.method == "CONNECT":
            self._refuse(sid, request, 501)
        elif (
            not request.target
            or http.target_problem(request.target)
            or http.HOST.fullmatch(request.hmap.get("host", "").strip(" \t")) is None
        ):
            self._refuse(sid, request, 400)
        elif end_stream:
            self._dispatch(sid, request)
        else:
            self._pending[sid] = request
            self._bodies[sid] = []
            self._body_sizes[sid] = 0

    def _request(self, fields: Fields) -> http.Request:
        pseudo: dict[bytes, bytes] = {}
        headers: list[tuple[str, str]] = []
        hmap: dict[str, str] = {}
        for name, value in fields:
            if name[:1] == b":":
                pseudo[name] = value
                continue
            lname = name.decode("latin-1")
            text = value.decode("latin-1")
            headers.append((lname, text))
            if lname in hmap:  # RFC 9113 §8.2.3: cookie crumbs are joined with "; "
                hmap[lname] = f"{hmap[lname]}{'; ' if lname == 'cookie' else ', '}{text}"
            else:
                hmap[lname] = text
        method = pseudo.get(b":method", b"").decode("latin-1")
        target = pseudo.get(b":path", b"").decode("latin-1")
        authority = pseudo.get(b":authority")
        if authority is not None and "host" not in hmap:
            host = authority.decode("latin-1")
            hmap["host"] = host
            headers.append(("host", host))
        return http.Request(method, target, headers, hmap, "2", True, b"", "https")

    def on_data(self, sid: int, data: bytes) -> None:
        if sid not in self._pending:
            return
        received = len(data)
        size = self._body_sizes[sid] + received
        # One request body, or all of a connection's together, as large as one HTTP/1.1
        # request's may be: 413 for the stream that would go beyond.
        if size > http.MAX_BODY or self._body_total + received > http.MAX_BODY:
            request = self._pending.pop(sid)
            self._bodies.pop(sid, None)
            self._body_total -= self._body_sizes.pop(sid, 0)
            self._refuse(sid, request, 413)
            return
        self._body_sizes[sid] = size
        self._body_total += received
        self._bodies[sid].append(data)

    def on_data_end(self, sid: int) -> None:
        self._complete(sid)

    def _complete(self, sid: int) -> None:
        request = self._pending.pop(sid, None)
        if request is not None:
            parts = self._bodies.pop(sid, [])
            self._body_total -= self._body_sizes.pop(sid, 0)
            request.body = b"".join(parts)
            self._dispatch(sid, request)

    def on_stream_close(self, sid: int) -> None:
        self._incoming.pop(sid, None)
        self._pending.pop(sid, None)
        self._bodies.pop(sid, None)
        self._body_total -= self._body_sizes.pop(sid, 0)
        stream = self._streams.pop(sid, None)
        if stream is not None and not stream.complete:
            stream.reset_by_peer()

    def _refuse(self, sid: int, request: http.Request, status: int) -> None:
        stream = self._streams[sid] = Stream(self, sid)
        stream.request = request
        stream.write(plain(status, REASONS.get(status, ""), head_only=False, fields=b"", tail=b""))
        self._done(stream)

    def _dispatch(self, sid: int, request: http.Request) -> None:
        stream = self._streams[sid] = Stream(self, sid)
        stream.request = request
        try:
            pending = self._handler(request, stream)
        except Exception as exc:
            log.error("edge handler failed", exc_info=exc)
            stream.abort()
            self._report(stream)
            return
        if pending is None:
            self._done(stream)
        else:
            stream.task = self._loop.create_task(self._run(stream, pending))

    async def _run(self, stream: Stream, pending: Awaitable[None]) -> None:
        try:
            await pending
        except (ConnectionError, asyncio.CancelledError):
            stream.abort()
            self._report(stream)
            return
        except Exception as exc:
            log.error("edge handler failed", exc_info=exc)
            stream.abort()
            self._report(stream)
            return
        self._done(stream)

    def _done(self, stream: Stream) -> None:
        stream.finish()
        self._report(stream)

    def _report(self, stream: Stream) -> None:
        request, stream.request = stream.request, None
        if request is not None and self._on_done is not None:
            self._on_done(request, stream)

    # -- responses --------------------------------------------------------------------

    def send_response(self, stream: Stream, parts: list[bytes]) -> None:
        """The final HEADERS; DATA follows as `read` takes it from the stream's buffer."""
        if self._session is None:
            return
        nva, keep = _nva(parts)
        count = len(parts) // 2
        if lib.nghttp2_submit_response(self._session, stream.stream_id, nva, count, _BODY):
            self._streams.pop(stream.stream_id, None)  # gone: reset, or closed by the client
            stream.reset_by_peer()
        del keep

    def send_interim(self, stream: Stream, parts: list[bytes]) -> None:
        if self._session is None:
            return
        nva, keep = _nva(parts)
        lib.nghttp2_submit_headers(
            self._session, 0, stream.stream_id, ffi.NULL, nva, len(parts) // 2, ffi.NULL
        )
        del keep
        self._send()  # sent now: nothing else is written until the final head

    def read(self, sid: int, buf: Any, length: int, flags: Any) -> int:
        """nghttp2 asks for up to `length` bytes of `sid`'s body, as its windows allow."""
        stream = self._streams.get(sid)
        if stream is None:
            flags[0] |= DATA_FLAG_EOF
            return 0
        data = stream.buffer
        size = min(length, len(data))
        if size:
            ffi.memmove(buf, data, size)
            del data[:size]
        if not data:
            if stream.ended:
                flags[0] |= DATA_FLAG_EOF
                stream.complete = True
                self._streams.pop(sid, None)
            elif not size:
                stream.deferred = True
                return ERR_DEFERRED
        if len(data) <= STREAM_BUFFER:
            stream.wake()
        return size

    def resume(self, stream: Stream) -> None:
        """`stream` has more to send (body bytes, or its end)."""
        if self._session is None:
            return
        if stream.deferred:
            stream.deferred = False
            lib.nghttp2_session_resume_data(self._session, stream.stream_id)
        self._send()

    def reset(self, stream: Stream) -> None:
        sid = stream.stream_id
        self._streams.pop(sid, None)
        if not self.closed and self._session is not None:
            lib.nghttp2_submit_rst_stream(self._session, 0, sid, INTERNAL_ERROR)
            self._send()

    def _send(self) -> None:
        # Inside data_received, it is all sent at its end; while the transport holds more
        # than its high-water mark, nghttp2 keeps the frames (the client reads slowly).
        if self._receiving or self.paused or self._session is None:
            return
        chunks = []
        while (size := lib.nghttp2_session_mem_send(self._session, self._out)) > 0:
            chunks.append(ffi.buffer(self._out[0], size)[:])
        if chunks and self.transport is not None and not self.closed:
            self.transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if size < 0:
            self._fail(size)
        elif not (
            lib.nghttp2_session_want_read(self._session)
            or lib.nghttp2_session_want_write(self._session)
        ):
            # GOAWAY both ways, or a connection error nghttp2 has answered: the end.
            self.closed = True
            if self.transport is not None:
                self.transport.close()


# -- what every session shares -----------------------------------------------------------

_NV_SIZE = ffi.sizeof("nghttp2_nv")
_NV_PAD = "x" * (_NV_SIZE - struct.calcsize("@PPNNB"))
_NV_ARRAYS: dict[int, struct.Struct] = {}  # by field count: the whole array's layout


def _nva(parts: list[bytes]) -> tuple[Any, tuple[Any, ...]]:
    """An nghttp2_nv array for `parts` (name, value, name, value, ...), packed in one
    struct.pack; nghttp2 copies what it points at while submitting, so `keep` needs to
    live only until then."""
    blob = b"".join(parts)
    blob_ref = ffi.from_buffer(blob)
    at = int(ffi.cast("uintptr_t", blob_ref))
    args: list[int] = []
    for index in range(0, len(parts), 2):
        name_len = len(parts[index])
        value_len = len(parts[index + 1])
        args += (at, at + name_len, name_len, value_len, 0)
        at += name_len + value_len
    count = len(parts) // 2
    layout = _NV_ARRAYS.get(count)
    if layout is None:
        layout = _NV_ARRAYS[count] = struct.Struct("@" + ("PPNNB" + _NV_PAD) * count)
    packed = layout.pack(*args)
    return ffi.from_buffer("nghttp2_nv[]", packed), (blob, blob_ref, packed)


def _connection(user_data: Any) -> H2Connection:
    conn: H2Connection = ffi.from_handle(user_data)
    return conn


def _failed(exception: type[BaseException], value: BaseException, tb: Any) -> None:
    log.error("HTTP/2 callback failed", exc_info=(exception, value, tb))


def _on_begin_headers(session: Any, frame: Any, user_data: Any) -> int:
    if frame.hd.type == FRAME_HEADERS:
        _connection(user_data).on_begin_headers(frame.hd.stream_id)
    return 0


def _on_header(
    session: Any,
    frame: Any,
    name: Any,
    namelen: int,
    value: Any,
    valuelen: int,
    flags: int,
    user_data: Any,
) -> int:
    _connection(user_data).on_header(
        frame.hd.stream_id, ffi.unpack(name, namelen), ffi.unpack(value, valuelen)
    )
    return 0


def _on_frame_recv(session: Any, frame: Any, user_data: Any) -> int:
    hd = frame.hd
    if hd.type == FRAME_HEADERS:
        _connection(user_data).on_headers_end(hd.stream_id, bool(hd.flags & FLAG_END_STREAM))
    elif hd.type == FRAME_DATA and hd.flags & FLAG_END_STREAM:
        _connection(user_data).on_data_end(hd.stream_id)
    return 0


def _on_data_chunk(
    session: Any, flags: int, sid: int, data: Any, length: int, user_data: Any
) -> int:
    _connection(user_data).on_data(sid, ffi.unpack(data, length))
    return 0


def _on_stream_close(session: Any, sid: int, error_code: int, user_data: Any) -> int:
    _connection(user_data).on_stream_close(sid)
    return 0


def _read(
    session: Any, sid: int, buf: Any, length: int, flags: Any, source: Any, user_data: Any
) -> int:
    return _connection(user_data).read(sid, buf, length, flags)


def _c(ctype: str, function: Callable[..., int]) -> Any:
    """A C function pointer calling `function`; an exception in it fails the connection."""
    return ffi.callback(ctype, function, error=ERR_CALLBACK_FAILURE, onerror=_failed)


_C_BEGIN_HEADERS = _c("nghttp2_on_begin_headers_callback", _on_begin_headers)
_C_HEADER = _c("nghttp2_on_header_callback", _on_header)
_C_FRAME_RECV = _c("nghttp2_on_frame_recv_callback", _on_frame_recv)
_C_DATA_CHUNK = _c("nghttp2_on_data_chunk_recv_callback", _on_data_chunk)
_C_STREAM_CLOSE = _c("nghttp2_on_stream_close_callback", _on_stream_close)
_C_READ = _c("nghttp2_data_source_read_callback", _read)


def _callbacks() -> Any:
    holder = ffi.new("nghttp2_session_callbacks **")
    if lib is None or lib.nghttp2_session_callbacks_new(holder) != 0:
        return None
    callbacks = holder[0]  # shared by every session (each copies it), never freed
    lib.nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, _C_BEGIN_HEADERS)
    lib.nghttp2_session_callbacks_set_on_header_callback(callbacks, _C_HEADER)
    lib.nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, _C_FRAME_RECV)
    lib.nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, _C_DATA_CHUNK)
    lib.nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, _C_STREAM_CLOSE)
    return callbacks


_CALLBACKS = _callbacks()
_BODY = ffi.new("nghttp2_data_provider *", {"read_callback": _C_READ})
_SETTINGS = ffi.new(
    "nghttp2_settings_entry[]",
    [
        (SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS),
        (SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST),
        (SETTINGS_ENABLE_PUSH, 0),
    ],
)
