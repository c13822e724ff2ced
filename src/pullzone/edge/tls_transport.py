"""An asyncio transport over a non-blocking `ssl.SSLSocket`, driven by the event loop's
readiness callbacks (`add_reader`/`add_writer`).

OpenSSL reads and writes the socket itself: each record costs one recv or send and no
copy through Python. asyncio's TLS instead runs OpenSSL on memory BIOs and moves every
record through a Python-level buffer and the event loop's transport, which took 57% of a
worker's time on an HTTPS HIT (bench/README.md, S9).

Reads: one `recv` per record until OpenSSL holds no more decrypted bytes (`pending()`);
OpenSSL reads no further ahead than the record it decrypts (no read-ahead), so whatever
else the client sent is still in the kernel and the socket stays readable.

Writes: `SSL_write` without partial writes sends all of a buffer or reports WANT_WRITE
having kept its place, and must then be called again with the same bytes; so the chunk
being sent stays apart from what is queued behind it. Flow control is asyncio's: the
protocol is paused above the high-water mark and resumed below the low one.

Closing sends close_notify (RFC 8446 §6.1) and closes the socket without waiting for the
client's: what an HTTP server needs once its last response is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import deque
from typing import Any

log = logging.getLogger(__name__)

READ_SIZE = 65536  # more than a record's plaintext (16 KiB, RFC 8446 §5.1)
JOIN_UP_TO = 256 * 1024  # queued writes sent as one SSL_write, at most
HIGH_WATER = 64 * 1024  # asyncio's defaults
LOW_WATER = 16 * 1024


class TlsTransport(asyncio.Transport):
    """A TLS connection whose handshake is done (edge/tls.py), for an HTTP protocol."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: ssl.SSLSocket,
        protocol: asyncio.Protocol,
        peername: Any,
    ) -> None:
        super().__init__(
            {
                "peername": peername,
                "sockname": sock.getsockname(),
                "socket": sock,
                "ssl_object": sock,
                "sslcontext": sock.context,
            }
        )
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._reading = False
        self._sending: bytes | None = None  # given to SSL_write, to be given again
        self._queue: deque[bytes] = deque()
        self._size = 0  # bytes in _sending and _queue
        self._high = HIGH_WATER
        self._low = LOW_WATER
        self._protocol_paused = False
        self._closing = False
        self._lost = False

    def start(self) -> None:
        """The protocol's connection_made, then reading."""
        self._protocol.connection_made(self)
        if not self._closing:
            self.resume_reading()

    # -- reading ----------------------------------------------------------------------

    def _readable(self) -> None:
        sock = self._sock
        try:
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    self._eof()
                    return
                self._protocol.data_received(data)
                if not self._reading or not sock.pending():
                    return
        except ssl.SSLWantReadError:
            return
        except ssl.SSLWantWriteError:  # no renegotiation (OP_NO_RENEGOTIATION): not reached
            return
        except (ssl.SSLError, OSError) as exc:
            self._fatal(exc)

    def _eof(self) -> None:
        self.pause_reading()
        keep_open = self._protocol.eof_received()
        if not keep_open:
            self.close()

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if self._reading or self._closing:
            return
        self._reading = True
        self._loop.add_reader(self._fd, self._readable)
        if self._sock.pending():  # decrypted already: the socket may never wake us for it
            self._loop.call_soon(self._readable_if_reading)

    def _readable_if_reading(self) -> None:
        if self._reading:
            self._readable()

    # -- writing ----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        chunk = bytes(data)
        if self._sending is None:
            try:
                self._sock.send(chunk)
                return
            except ssl.SSLWantWriteError:
                self._sending = chunk
                self._size += len(chunk)
                self._loop.add_writer(self._fd, self._writable)
            except (ssl.SSLError, OSError) as exc:
                self._fatal(exc)
                return
        else:
            self._queue.append(chunk)
            self._size += len(chunk)
        if self._size > self._high and not self._protocol_paused:
            self._protocol_paused = True
            self._protocol.pause_writing()

    def _writable(self) -> None:
        sock = self._sock
        try:
            while self._sending is not None:
                sock.send(self._sending)
                self._size -= len(self._sending)
                self._sending = self._next_chunk()
        except ssl.SSLWantWriteError:
            return
        except (ssl.SSLError, OSError) as exc:
            self._fatal(exc)
            return
        self._loop.remove_writer(self._fd)
        if self._protocol_paused and self._size <= self._low:
            self._protocol_paused = False
            self._protocol.resume_writing()
        if self._closing and self._sending is None:
            self._shut()

    def _next_chunk(self) -> bytes | None:
        queue = self._queue
        if not queue:
            return None
        if len(queue) == 1 or len(queue[0]) >= JOIN_UP_TO:
            return queue.popleft()
        parts = []
        size = 0
        while queue and size < JOIN_UP_TO:
            part = queue.popleft()
            parts.append(part)
            size += len(part)
        return b"".join(parts)

    def get_write_buffer_size(self) -> int:
        return self._size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = HIGH_WATER if high is None else high
        self._low = min(self._high, LOW_WATER if low is None else low)

    def can_write_eof(self) -> bool:
        return False  # TLS has no half-close: close_notify ends both directions

    def write_eof(self) -> None:
        raise NotImplementedError("TLS has no half-close")

    # -- the protocol and the end -----------------------------------------------------

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]  # a Protocol, as given

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """After what is written has been sent: close_notify, then the socket."""
        if self._closing:
            return
        self._closing = True
        self.pause_reading()
        if self._sending is None:
            self._shut()

    def abort(self) -> None:
        self._closing = True
        self._end(None)

    def _shut(self) -> None:
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            self._sock.unwrap()  # sends close_notify; the client's is not waited for
        self._end(None)

    def _fatal(self, exc: BaseException) -> None:
        log.debug("TLS connection failed: %r", exc)
        self._closing = True
        self._end(exc if isinstance(exc, Exception) else None)

    def _end(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._reading = False
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._sending = None
        self._queue.clear()
        self._size = 0
        with contextlib.suppress(OSError):
            self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)


def nodelay(sock: socket.socket) -> None:
    """No Nagle delay on a response's last segment (asyncio's transports do the same)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
