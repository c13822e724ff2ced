"""The HTTPS listener of a worker: accept, the PROXY header (--proxy-protocol), the TLS
handshake bounded in time and number, then HTTP/1.1 or h2 as ALPN chose.

Each worker binds the HTTPS port itself (SO_REUSEPORT, as the plain listener) and accepts
with the event loop's readiness callbacks: the connection stays a real `ssl.SSLSocket`,
which OpenSSL reads and writes directly (edge/tls_transport.py says why that is the fast
way). OpenSSL sends the handshake's alerts on that socket too: a name without a
certificate gets `unrecognized_name` (RFC 6066 §3) before the connection is closed.

A handshake must be done within HANDSHAKE_TIMEOUT of the connection, PROXY header
included, and a worker keeps at most MAX_HANDSHAKES waiting: a new one sheds the oldest.
Out of descriptors, the listener stops accepting for ACCEPT_RETRY seconds, as nginx does;
the connections it has keep being served. All of these are counted in
`pullzone_edge_faults_total` (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from pullzone.edge import proxy_protocol
from pullzone.edge.http import OUT_OF_FILES, Connections, Done, Handler, TlsConnection
from pullzone.edge.tls_transport import TlsTransport, nodelay

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10  # seconds from the TCP connection to the end of the handshake
MAX_HANDSHAKES = 256  # connections still in their handshake, per worker
BACKLOG = 2048
ACCEPT_BATCH = 64  # connections accepted per wake-up, at most
ACCEPT_RETRY = 0.5  # seconds without accepting once out of descriptors
OUT_OF_MEMORY = frozenset({errno.ENOBUFS, errno.ENOMEM})

Count = Callable[[str], None]
Factory = Callable[[str | None], asyncio.Protocol]  # ALPN's choice → the HTTP protocol


class Handshakes:
    """A worker's connections still in their TLS handshake, oldest first: at most `limit`
    of them (a new one sheds the oldest), each for at most HANDSHAKE_TIMEOUT."""

    def __init__(self, limit: int, count: Count) -> None:
        self.limit = limit
        self.count = count
        self.pending: dict[Handshake, None] = {}

    def admit(self, handshake: Handshake) -> None:
        if len(self.pending) >= self.limit:
            oldest = next(iter(self.pending))
            self.count("tls_handshake_shed")
            oldest.end(None)
        self.pending[handshake] = None


class Listener:
    """Accepts on the HTTPS port; each connection's handshake is a `Handshake`."""

    def __init__(
        self,
        context: ssl.SSLContext,
        factory: Factory,
        count: Count,
        *,
        proxy_header: bool = False,
        max_handshakes: int = MAX_HANDSHAKES,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.context = context
        self.factory = factory
        self.count = count
        self.proxy_header = proxy_header
        self.handshakes = Handshakes(max_handshakes, count)
        self.sockets: list[socket.socket] = []

    def listen(self, host: str, port: int) -> None:
        self.sockets = _bind(host, port)
        for sock in self.sockets:
            self.loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        for sock in self.sockets:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets = []
        for handshake in list(self.handshakes.pending):
            handshake.end(None)

    def _accept(self, listening: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                raw, peer = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_FILES or exc.errno in OUT_OF_MEMORY:
                    self.count("out_of_files")
                    self._pause(listening)
                return  # ECONNABORTED and the like: that connection is gone, not the listener
            raw.setblocking(False)
            nodelay(raw)
            Handshake(self, raw, peer)

    def _pause(self, listening: socket.socket) -> None:
        fd = listening.fileno()
        self.loop.remove_reader(fd)

        def resume() -> None:
            if listening in self.sockets:
                self.loop.add_reader(fd, self._accept, listening)

        self.loop.call_later(ACCEPT_RETRY, resume)


class Handshake:
    """One accepted connection until its handshake is done: then a `TlsTransport` with
    the HTTP protocol ALPN chose. Readiness drives each step: the PROXY header first
    (with --proxy-protocol), then OpenSSL's handshake."""

    def __init__(self, listener: Listener, raw: socket.socket, peer: Any) -> None:
        loop = listener.loop
        self._listener = listener
        self._loop = loop
        self._raw = raw
        self._sock: ssl.SSLSocket | None = None
        self._fd = raw.fileno()
        self._peer = peer
        self._writing = False
        self._ended = False
        self._timer = loop.call_later(HANDSHAKE_TIMEOUT, self.end, "tls_handshake_timeout")
        self._header: bytes | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        listener.handshakes.admit(self)
        if listener.proxy_header:
            self._header = b""
            self._header_timer = loop.call_later(
                proxy_protocol.HEADER_TIMEOUT, self.end, "proxy_header_timeout"
            )
        elif not self._wrap():
            return
        loop.add_reader(self._fd, self._step)

    def _step(self) -> None:
        if self._header is not None and not self._read_header():
            return
        sock = self._sock
        assert sock is not None
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want_write(False)
            return
        except ssl.SSLWantWriteError:
            self._want_write(True)
            return
        except (ssl.SSLEOFError, ConnectionError):
            self.end(None)  # the client left
            return
        except (ssl.SSLError, OSError) as exc:
            # OpenSSL has sent its alert: unrecognized_name from the SNI callback, or
            # what it found wrong in the ClientHello.
            log.debug("TLS handshake failed: %r", exc)
            self.end("tls_handshake_failed")
            return
        self._done(sock)

    def _read_header(self) -> bool:
        assert self._header is not None
        try:
            self._header, parsed = proxy_protocol.take(self._raw, self._header)
        except BlockingIOError:
            return False
        except proxy_protocol.ProxyHeaderError:
            self.end("proxy_header_invalid")
            return False
        except OSError:
            self.end(None)
            return False
        if parsed is None:
            return False
        self._header = None
        if self._header_timer is not None:
            self._header_timer.cancel()
        if parsed.source is not None:
            self._peer = (parsed.source, 0)
        return self._wrap()

    def _wrap(self) -> bool:
        try:
            self._sock = self._listener.context.wrap_socket(
                self._raw, server_side=True, do_handshake_on_connect=False
            )
        except (OSError, ValueError):  # the client has gone already (ENOTCONN)
            self.end(None)
            return False
        return True

    def _want_write(self, write: bool) -> None:
        if write and not self._writing:
            self._loop.add_writer(self._fd, self._step)
        elif self._writing and not write:
            self._loop.remove_writer(self._fd)
        self._writing = write

    def _settle(self) -> None:
        self._ended = True
        self._timer.cancel()
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
        self._listener.handshakes.pending.pop(self, None)

    def end(self, fault: str | None) -> None:
        """Closed before the handshake is done; `fault` is counted."""
        if self._ended:
            return
        self._settle()
        (self._sock or self._raw).close()
        if fault is not None:
            self._listener.count(fault)

    def _done(self, sock: ssl.SSLSocket) -> None:
        self._settle()
        protocol = self._listener.factory(sock.selected_alpn_protocol())
        TlsTransport(self._loop, sock, protocol, self._peer).start()


def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for `host` (each address it resolves to), shared by the workers."""
    sockets: list[socket.socket] = []
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def http_protocols(handler: Handler, on_done: Done, connections: Connections) -> Factory:
    """HTTP/2 where ALPN chose it, else HTTP/1.1 (edge/http.py, edge/h2.py)."""
    from pullzone.edge.h2 import H2Connection
    from pullzone.edge.nghttp2 import SONAME, available

    if not available:
        log.warning("%s not found: HTTPS offers HTTP/1.1 only, never HTTP/2", SONAME)

    def protocol(alpn: str | None) -> asyncio.Protocol:
        if alpn == "h2":
            return H2Connection(handler, on_done, connections)
        return TlsConnection(handler, on_done, connections)

    return protocol
