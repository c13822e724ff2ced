"""The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a load
balancer sends before anything else on a connection, naming the client it accepted.

`parse` is pure: bytes received so far → the header's length and the client address it
names, `INCOMPLETE` while more bytes are needed, or `ProxyHeaderError`. `ProxyHeader`
is the listening socket's protocol with `--proxy-protocol`: it reads the header (at most
MAX_HEADER bytes, within HEADER_TIMEOUT seconds), then hands the connection, with the
named client as its peer, to the HTTP protocol; `take` reads it off the TLS listener's
sockets, before their handshake. A connection without a valid header is closed and
counted (`pullzone_edge_faults`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

V1_PREFIX = b"PROXY "
V1_MAX = 107  # §2.1: the longest v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/protocol, length (§2.2)
# The longest header read: v2's addresses are at most 216 bytes (AF_UNIX); the rest is
# TLVs, which pullzone does not use. A longer header is refused rather than buffered.
MAX_HEADER = 2048
HEADER_TIMEOUT = 5.0


class ProxyHeaderError(ValueError):
    """Not a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class Parsed:
    length: int  # bytes of the header; what follows is the connection's own data
    source: str | None  # the client's address; None: the connection's own peer (LOCAL, UNKNOWN)


INCOMPLETE = None


def parse(data: bytes) -> Parsed | None:
    """The PROXY header at the start of `data`; None (INCOMPLETE) while it may still
    become one. Raises ProxyHeaderError when it cannot."""
    if data[:12] == V2_SIGNATURE[: len(data[:12])] and data[:1] == b"\r":
        return _v2(data)
    if data[:6] == V1_PREFIX[: len(data[:6])]:
        return _v1(data)
    raise ProxyHeaderError("no PROXY protocol signature")


def _v1(data: bytes) -> Parsed | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or b"\n" in data[:V1_MAX]:
            raise ProxyHeaderError("v1 header without CRLF within 107 bytes")
        return INCOMPLETE
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("v1 header is not ASCII") from None
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":  # §2.1: the receiver uses the real peer
        return Parsed(end + 2, None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("v1 header is not PROXY TCP4|TCP6 SRC DST SPORT DPORT")
    _, family, source, destination, sport, dport = parts
    version = 4 if family == "TCP4" else 6
    for text in (source, destination):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ProxyHeaderError(f"v1 header: {text!r} is not an address") from None
        if address.version != version:
            raise ProxyHeaderError(f"v1 header: {text!r} is not a {family} address")
    for port in (sport, dport):
        # §2.1: ports are 0-65535 without leading zeroes
        if not port.isdigit() or int(port) > 65535 or (len(port) > 1 and port[0] == "0"):
            raise ProxyHeaderError(f"v1 header: {port!r} is not a port")
    return Parsed(end + 2, str(ipaddress.ip_address(source)))


def _v2(data: bytes) -> Parsed | None:
    if len(data) < V2_FIXED:
        return INCOMPLETE
    version_command, family_protocol, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProxyHeaderError("v2 header of another version")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProxyHeaderError("v2 header with an unknown command")
    total = V2_FIXED + length
    if total > MAX_HEADER:
        raise ProxyHeaderError(f"v2 header longer than {MAX_HEADER} bytes")
    if len(data) < total:
        return INCOMPLETE
    if command == 0:  # LOCAL: the proxy's own connection (a health check): its real peer
        return Parsed(total, None)
    family = family_protocol >> 4
    body = data[V2_FIXED:total]
    if family == 1:  # AF_INET: src, dst (4 bytes each), sport, dport
        if length < 12:
            raise ProxyHeaderError("v2 AF_INET header too short")
        return Parsed(total, str(ipaddress.IPv4Address(body[:4])))
    if family == 2:  # AF_INET6: 16 bytes each
        if length < 36:
            raise ProxyHeaderError("v2 AF_INET6 header too short")
        address = ipaddress.IPv6Address(body[:16])
        mapped = address.ipv4_mapped
        return Parsed(total, str(mapped if mapped is not None else address))
    if family in (0, 3):  # AF_UNSPEC, AF_UNIX: no IP address to use
        return Parsed(total, None)
    raise ProxyHeaderError("v2 header with an unknown address family")


class _Addressed:
    """The connection's transport, with the client the header named as its peer."""

    def __init__(self, transport: asyncio.Transport, peername: tuple[str, int] | None) -> None:
        self._transport = transport
        self._peername = peername

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername" and self._peername is not None:
            return self._peername
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


Count = Callable[[str], None]


class ProxyHeader(asyncio.Protocol):
    """Reads the PROXY header, then gives the connection to `inner()`'s protocol."""

    def __init__(self, inner: Callable[[], asyncio.BaseProtocol], count: Count) -> None:
        self._inner = inner
        self._count = count
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(HEADER_TIMEOUT, self._refuse, "proxy_header_timeout")

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            parsed = parse(self._buffer)
        except ProxyHeaderError:
            self._refuse("proxy_header_invalid")
            return
        if parsed is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        transport = self._transport
        assert transport is not None
        rest = self._buffer[parsed.length :]
        self._buffer = b""
        peername = (parsed.source, 0) if parsed.source is not None else None
        protocol = self._inner()
        transport.set_protocol(protocol)
        protocol.connection_made(cast(asyncio.Transport, _Addressed(transport, peername)))
        if rest and not transport.is_closing():
            cast(asyncio.Protocol, protocol).data_received(rest)

    def eof_received(self) -> bool | None:
        self._refuse("proxy_header_invalid")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _refuse(self, kind: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None and not self._transport.is_closing():
            self._count(kind)
            self._transport.abort()


def take(sock: socket.socket, read: bytes) -> tuple[bytes, Parsed | None]:
    """Reads the PROXY header off a non-blocking socket, and not a byte beyond it: the
    TLS listener's (edge/tls.py), whose handshake OpenSSL then reads from the socket.

    `read` is what this took so far; returns it grown, and the header once whole. What
    the socket holds is peeked first: all of it is taken while the header is incomplete
    (it is all header), only the header's own bytes once it is complete. Raises
    ProxyHeaderError for what cannot become a header or a connection closed before it,
    BlockingIOError when nothing has arrived."""
    peeked = sock.recv(MAX_HEADER - len(read), socket.MSG_PEEK)
    if not peeked:
        raise ProxyHeaderError("connection closed before its PROXY header")
    parsed = parse(read + peeked)
    size = len(peeked) if parsed is None else parsed.length - len(read)
    taken = sock.recv(size)
    return read + taken, parsed


def behind(inner: Callable[[], asyncio.BaseProtocol], count: Count) -> Callable[[], ProxyHeader]:
    """A listener's protocol factory, its connections first read for a PROXY header."""
    return lambda: ProxyHeader(inner, count)
