"""The HTTPS listener and its transport (edge/tls_listener.py, edge/tls_transport.py) on
uvloop, against a real TLS client on loopback (Python's blocking ssl sockets, in a
thread): flow control on a large response, reading paused and resumed, close_notify,
the client's end, and the PROXY header read before the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import trustme

from pullzone.edge import tls, tls_listener

NAME = "edge.example.test"
BIG = 8 * 1024 * 1024  # far beyond the socket buffers and the transport's high-water mark


@dataclass
class Recorder(asyncio.Protocol):
    """What the transport told the HTTP protocol, and `on_made` run on connection_made."""

    on_made: Callable[[asyncio.Transport], None] = lambda transport: None
    transport: asyncio.Transport | None = None
    received: bytearray = field(default_factory=bytearray)
    calls: list[str] = field(default_factory=list)
    got_data: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Future[Exception | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.on_made(transport)

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.got_data.set()

    def eof_received(self) -> bool | None:
        self.calls.append("eof")
        return None

    def pause_writing(self) -> None:
        self.calls.append("pause")

    def resume_writing(self) -> None:
        self.calls.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)


@dataclass
class Edge:
    listener: tls_listener.Listener
    port: int
    ca: trustme.CA
    protocols: list[Recorder] = field(default_factory=list)
    made: asyncio.Event = field(default_factory=asyncio.Event)  # a protocol, after a handshake
    faults: list[str] = field(default_factory=list)
    faulted: asyncio.Event = field(default_factory=asyncio.Event)

    def client(self, *, proxy_header: bytes = b"") -> ssl.SSLSocket:
        """A connected client (blocking; run it in a thread), its handshake done."""
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        raw.sendall(proxy_header)
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context.wrap_socket(raw, server_hostname=NAME, suppress_ragged_eofs=False)

    async def protocol(self) -> Recorder:
        """The first connection's protocol, once its handshake is done."""
        await self.made.wait()
        return self.protocols[0]


@contextlib.asynccontextmanager
async def serving(
    make: Callable[[], Recorder] = Recorder, *, proxy_header: bool = False
) -> AsyncIterator[Edge]:
    """A listener on a loopback port with a certificate for NAME, by SNI as the edge's."""
    ca = trustme.CA()
    zone = tls._server_context(tls.ALPN_HTTP1)
    ca.issue_cert(NAME).configure_cert(zone)
    listening = tls._server_context(tls.ALPN_HTTP1)

    def by_name(conn: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> int | None:
        if name != NAME:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        conn.context = zone
        return None

    listening.sni_callback = by_name

    def factory(alpn: str | None) -> asyncio.Protocol:
        edge.protocols.append(make())
        edge.made.set()
        return edge.protocols[-1]

    def count(fault: str) -> None:
        edge.faults.append(fault)
        edge.faulted.set()

    listener = tls_listener.Listener(listening, factory, count, proxy_header=proxy_header)
    listener.listen("127.0.0.1", 0)
    edge = Edge(listener, listener.sockets[0].getsockname()[1], ca)
    try:
        async with asyncio.timeout(30):  # a wait that never ends fails the test
            yield edge
    finally:
        listener.close()


def big_body() -> bytes:
    return hashlib.sha256(b"seed").digest() * (BIG // 32)


def writes_big_then_closes() -> Recorder:
    def made(transport: asyncio.Transport) -> None:
        body = big_body()
        for at in range(0, BIG, 512 * 1024):
            transport.write(body[at : at + 512 * 1024])
        transport.close()

    return Recorder(on_made=made)


def read_all(client: ssl.SSLSocket) -> bytes:
    chunks = []
    while chunk := client.recv(65536):  # b"": close_notify (a bare FIN raises SSLEOFError)
        chunks.append(chunk)
    client.close()
    return b"".join(chunks)


async def test_a_large_response_pauses_the_protocol_then_arrives_whole_before_close_notify() -> (
    None
):
    async with serving(writes_big_then_closes) as edge:
        client = await asyncio.to_thread(edge.client)
        received = await asyncio.to_thread(read_all, client)
        assert hashlib.sha256(received).digest() == hashlib.sha256(big_body()).digest()
        protocol = await edge.protocol()
        assert await protocol.lost is None
        assert protocol.calls == ["pause", "resume", "lost"]


async def test_reading_paused_then_resumed_delivers_what_arrived_meanwhile() -> None:
    async with serving() as edge:
        await reading_paused_then_resumed(edge)


async def reading_paused_then_resumed(edge: Edge) -> None:
    client = await asyncio.to_thread(edge.client)
    await asyncio.to_thread(client.sendall, b"first")
    protocol = await edge.protocol()
    await protocol.got_data.wait()
    assert protocol.transport is not None
    protocol.transport.pause_reading()
    protocol.got_data.clear()
    for part in (b"-second", b"-third"):  # a record each
        await asyncio.to_thread(client.sendall, part)
    assert bytes(protocol.received) == b"first"
    protocol.transport.resume_reading()
    while bytes(protocol.received) != b"first-second-third":
        await protocol.got_data.wait()
        protocol.got_data.clear()
    await asyncio.to_thread(client.unwrap)  # the client's close_notify: end of input
    client.close()
    assert await protocol.lost is None
    assert protocol.calls == ["eof", "lost"]


async def test_the_proxy_header_is_read_off_the_socket_and_not_a_byte_more() -> None:
    header = b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 443\r\n"
    async with serving(proxy_header=True) as edge:
        client = await asyncio.to_thread(edge.client, proxy_header=header)
        await asyncio.to_thread(client.sendall, b"hello")
        protocol = await edge.protocol()
        await protocol.got_data.wait()
        assert protocol.transport is not None
        assert protocol.transport.get_extra_info("peername") == ("198.51.100.7", 0)
        assert bytes(protocol.received) == b"hello"
        client.close()
        await protocol.lost


async def test_an_unknown_name_gets_the_unrecognized_name_alert_and_is_counted() -> None:
    async with serving() as edge:
        await unknown_name(edge)


async def unknown_name(edge: Edge) -> None:
    def connect_as_other() -> str:
        raw = socket.create_connection(("127.0.0.1", edge.port), timeout=30)
        context = ssl.create_default_context()
        edge.ca.configure_trust(context)
        with pytest.raises(ssl.SSLError) as failed:
            context.wrap_socket(raw, server_hostname="other.example.test")
        raw.close()
        return str(failed.value)

    assert "UNRECOGNIZED_NAME" in (await asyncio.to_thread(connect_as_other)).upper()
    await edge.faulted.wait()
    assert edge.faults == ["tls_handshake_failed"]
    assert not edge.protocols
