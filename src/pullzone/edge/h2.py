"""HTTP/2 (RFC 9113) at the edge, with the `h2` state machine, over TLS (ALPN `h2`).

Each stream is one request given to the same `Edge.handle` as HTTP/1.1's; the `Stream`
it answers through offers what handlers use of `http.Connection`. The response bytes the
one writer builds (writer.py: an HTTP/1.1 head, then the body) are translated at the
stream's boundary: the head into HEADERS (`:status`, names lower-cased, the connection's
own fields dropped), the body into DATA frames, END_STREAM once the handler is done.
`writer.body_framing` knows HTTP/2 (version "2"): no chunks, no close-delimited body.

Bounds: MAX_STREAMS concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS), a header list
of at most MAX_HEADER_LIST bytes, request bodies of at most http.MAX_BODY (one stream's,
and all of a connection's held at once). Each stream
buffers its own body against its own flow-control window: a client that stops reading
one stream stalls that stream's handler (drain), never the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from pullzone.edge import http
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
        self._buffer = bytearray()  # body bytes waiting for the stream's window
        self._ended = False  # END_STREAM queued (after the buffer)
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
        if self.closed or self._ended:
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
            self._buffer += data
            self._conn.flush(self)

    def interim(self, status: int, headers: list[tuple[str, str]]) -> None:
        # RFC 9113 §8.1: a HEADERS frame of its own, without END_STREAM, before the final one.
        if self.closed or self._ended or self._headers_sent or self._head:
            return
        fields = [(b":status", b"%d" % status)]
        for name, value in interim_fields(headers):
            lname = name.lower().encode("latin-1")
            if lname not in _CONNECTION_FIELDS:
                fields.append((lname, value.encode("latin-1")))
        self._conn.send_headers(self, fields)
        self._conn.flush(self)  # sends it: nothing else is written until the final head

    async def drain(self) -> None:
        while True:
            if self.closed:
                raise ConnectionResetError("stream reset")
            if len(self._buffer) <= STREAM_BUFFER and not self._conn.paused:
                return
            if self._writable is None or self._writable.done():
                self._writable = asyncio.get_running_loop().create_future()
            await self._writable

    # -- the connection's side --------------------------------------------------------

    def _send_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status = lines[0][9:12]
        self._status = int(status)
        headers: list[tuple[bytes, bytes]] = [(b":status", status)]
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname in _CONNECTION_FIELDS:
                continue
            headers.append((lname, value.strip()))
        self._headers_sent = True
        self._conn.send_headers(self, headers)

    def wake(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def finish(self) -> None:
        """The handler is done: END_STREAM once the buffer is sent."""
        if self.closed or self._ended:
            return
        if not self._headers_sent:
            if self._head:  # a head that never ended: the handler failed
                self.abort()
                return
            self.write(plain(500, REASONS[500], head_only=False, fields=b"", tail=b""))
        self._ended = True
        self._conn.flush(self)

    def abort(self) -> None:
        self._reset = True
        self._buffer.clear()
        self._conn.reset(self)
        self.wake()

    def reset_by_peer(self) -> None:
        self._reset = True
        self._buffer.clear()
        self.wake()
        if self.task is not None and not self.task.done():
            self.task.cancel()


class H2Connection(asyncio.Protocol):
    """One HTTP/2 client connection over TLS."""

    def __init__(
        self,
        handler: http.Handler,
        on_done: http.Done | None = None,
        connections: http.Connections | None = None,
    ) -> None:
        self._handler = handler
        self._on_done = on_done
        self._connections = connections
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            # What the edge sends is built here from a head writer.py made (names lower-
            # cased, the connection's fields dropped): checking it again costs a third of
            # a HIT. What clients send is checked (RFC 9113 §8.2.1).
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._h2 = h2.connection.H2Connection(config=config)
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        # Settings given as initial values are never "acknowledged" changes: the header
        # list bound is given to the decoder here (RFC 9113 §6.5.2; h2 answers beyond it
        # with GOAWAY).
        self._h2.decoder.max_header_list_size = MAX_HEADER_LIST
        self._streams: dict[int, Stream] = {}
        self._bodies: dict[int, list[bytes]] = {}
        self._body_sizes: dict[int, int] = {}
        self._body_total = 0  # request body bytes held, all streams together
        self._pending: dict[int, http.Request] = {}  # headers received, body arriving
        self._waiting: dict[int, Stream] = {}  # data buffered, window closed
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
        try:
            self._h2.close_connection()
            self.transport.write(self._h2.data_to_send())
        except h2.exceptions.ProtocolError:
            pass
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
        self._h2.initiate_connection()
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

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        for stream in list(self._streams.values()):
            stream.wake()

    def _on_tick(self) -> None:
        if not self.busy() and self._received == self._received_at_tick:
            self.close()
            return
        self._received_at_tick = self._received
        self._timer = self._loop.call_later(IDLE_TIMEOUT, self._on_tick)

    def data_received(self, data: bytes) -> None:
        self._received += 1
        self._receiving = True
        try:
            self._events(data)
        finally:
            self._receiving = False
        self._send()

    def _events(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._receiving = False
            self._send()
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._request(event)
            elif isinstance(event, h2.events.DataReceived):
                self._data(event)
            elif isinstance(event, h2.events.StreamEnded):
                request = self._pending.pop(event.stream_id, None)
                if request is not None:
                    parts = self._bodies.pop(event.stream_id, [])
                    self._body_total -= self._body_sizes.pop(event.stream_id, 0)
                    request.body = b"".join(parts)
                    self._dispatch(event.stream_id, request)
            elif isinstance(event, h2.events.WindowUpdated):
                self._window_opened(event.stream_id)
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self._window_opened(0)
            elif isinstance(event, h2.events.StreamReset):
                self._forget(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._receiving = False
                self._send()
                self.closed = True
                if self.transport is not None:
                    self.transport.close()
                return

    # -- requests ---------------------------------------------------------------------

    def _request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id
        pseudo: dict[bytes, bytes] = {}
        headers: list[tuple[str, str]] = []
        hmap: dict[str, str] = {}
        for raw_name, raw_value in event.headers or ():
            name = bytes(raw_name)
            value = bytes(raw_value)
            if name.startswith(b":"):
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
        request = http.Request(method, target, headers, hmap, "2", True, b"", "https")
        if (
            method == "CONNECT"
            or not target
            or http.target_problem(target)
            or http.HOST.fullmatch(hmap.get("host", "").strip(" \t")) is None
        ):
            self._refuse(sid, request, 501 if method == "CONNECT" else 400)
            return
        if event.stream_ended is not None:
            self._dispatch(sid, request)
        else:
            self._pending[sid] = request
            self._bodies[sid] = []
            self._body_sizes[sid] = 0

    def _data(self, event: h2.events.DataReceived) -> None:
        sid = event.stream_id
        self._h2.acknowledge_received_data(event.flow_controlled_length, sid)
        if sid not in self._pending:
            return
        received = len(event.data or b"")
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
        self._bodies[sid].append(bytes(event.data or b""))

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
            self._send()
            return
        except Exception as exc:
            log.error("edge handler failed", exc_info=exc)
            stream.abort()
            self._report(stream)
            self._send()
            return
        self._done(stream)
        self._send()

    def _done(self, stream: Stream) -> None:
        stream.finish()
        self._report(stream)

    def _report(self, stream: Stream) -> None:
        request, stream.request = stream.request, None
        if request is not None and self._on_done is not None:
            self._on_done(request, stream)

    # -- responses --------------------------------------------------------------------

    def send_headers(self, stream: Stream, headers: list[tuple[bytes, bytes]]) -> None:
        try:
            self._h2.send_headers(stream.stream_id, headers)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            stream.reset_by_peer()

    def flush(self, stream: Stream) -> None:
        """Send what `stream`'s window (and the connection's) allows; then END_STREAM."""
        if self.closed:
            return
        h2c = self._h2
        sid = stream.stream_id
        buffer = stream._buffer
        try:
            while buffer:
                window = min(h2c.local_flow_control_window(sid), h2c.max_outbound_frame_size)
                if window <= 0:
                    self._waiting[sid] = stream
                    break
                piece = bytes(buffer[:window])
                del buffer[:window]
                h2c.send_data(sid, piece)
            if not buffer:
                self._waiting.pop(sid, None)
                if stream._ended:
                    h2c.end_stream(sid)
                    self._streams.pop(sid, None)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError, KeyError):
            self._forget(sid)
        self._send()
        if len(buffer) <= STREAM_BUFFER:
            stream.wake()

    def reset(self, stream: Stream) -> None:
        sid = stream.stream_id
        self._streams.pop(sid, None)
        self._waiting.pop(sid, None)
        if not self.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                self._h2.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            self._send()

    def _window_opened(self, sid: int) -> None:
        streams = list(self._waiting.values()) if sid == 0 else [self._waiting.get(sid)]
        for stream in streams:
            if stream is not None:
                self.flush(stream)

    def _forget(self, sid: int) -> None:
        self._pending.pop(sid, None)
        self._bodies.pop(sid, None)
        self._body_total -= self._body_sizes.pop(sid, 0)
        self._waiting.pop(sid, None)
        stream = self._streams.pop(sid, None)
        if stream is not None:
            stream.reset_by_peer()

    def _send(self) -> None:
        if self._receiving:
            return  # data_received sends it all at its end
        data = self._h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)
