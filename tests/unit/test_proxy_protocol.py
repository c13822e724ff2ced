"""The PROXY protocol header parser (edge/proxy_protocol.py), from HAProxy's
proxy-protocol.txt: v1 (text, §2.1) and v2 (binary, §2.2)."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from pullzone.edge.proxy_protocol import (
    MAX_HEADER,
    V2_SIGNATURE,
    Parsed,
    ProxyHeaderError,
    parse,
    take,
)


def v2(command: int, family: int, body: bytes, *, version: int = 2) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", version << 4 | command, family, len(body)) + body


def inet(source: str, destination: str = "192.0.2.1", sport: int = 5555) -> bytes:
    return (
        ipaddress.ip_address(source).packed
        + ipaddress.ip_address(destination).packed
        + struct.pack("!HH", sport, 443)
    )


@pytest.mark.parametrize(
    ("data", "parsed"),
    [
        (b"PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\nGET /", Parsed(47, "198.51.100.22")),
        (b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", Parsed(44, "2001:db8::1")),
        (b"PROXY TCP6 2001:DB8:0::1 ::1 1 2\r\n", Parsed(34, "2001:db8::1")),
        (b"PROXY UNKNOWN\r\n", Parsed(15, None)),  # the receiver uses the real peer
        (b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", Parsed(59, None)),
    ],
)
def test_v1_headers(data: bytes, parsed: Parsed) -> None:
    assert parse(data) == parsed


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # no header at all
        b"PROXY TCP4 198.51.100.22 203.0.113.7 35646\r\n",  # a field missing
        b"PROXY TCP4 2001:db8::1 203.0.113.7 1 2\r\n",  # v6 in TCP4
        b"PROXY TCP6 198.51.100.22 203.0.113.7 1 2\r\n",
        b"PROXY TCP4 198.51.100.256 203.0.113.7 1 2\r\n",
        b"PROXY TCP4 198.51.100.22 203.0.113.7 65536 80\r\n",
        b"PROXY TCP4 198.51.100.22 203.0.113.7 080 80\r\n",  # a leading zero
        b"PROXY TCP4 198.51.100.22  203.0.113.7 1 80\r\n",  # two spaces
        b"PROXY UDP4 198.51.100.22 203.0.113.7 1 80\r\n",
        b"PROXY TCP4 198.51.100.22 203.0.113.7 1 80\n",  # LF without CR
        b"PROXY " + b"x" * 120,  # no CRLF within 107 bytes
        b"PROXY TCP4 \xff.0.0.1 203.0.113.7 1 80\r\n",
        b"proxy TCP4 198.51.100.22 203.0.113.7 1 80\r\n",  # the signature is case-sensitive
    ],
)
def test_v1_refusals(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


def test_a_header_in_pieces_is_incomplete_until_whole() -> None:
    for whole in (
        b"PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n",
        v2(1, 0x11, inet("198.51.100.22")),
    ):
        for cut in range(len(whole)):
            assert parse(whole[:cut]) is None, cut
        assert parse(whole) == Parsed(len(whole), "198.51.100.22")


def test_v2_inet_and_inet6() -> None:
    body = inet("198.51.100.22")
    assert parse(v2(1, 0x11, body) + b"GET") == Parsed(28, "198.51.100.22")
    body6 = inet("2001:db8::9", "2001:db8::1")
    assert parse(v2(1, 0x21, body6)) == Parsed(52, "2001:db8::9")
    mapped = inet("::ffff:198.51.100.22", "::1")
    assert parse(v2(1, 0x21, mapped)) == Parsed(52, "198.51.100.22")


def test_v2_tlvs_are_skipped() -> None:
    tlv = b"\x01\x00\x02h2" + b"\x04\x00\x00"  # PP2_TYPE_ALPN, PP2_TYPE_NOOP
    data = v2(1, 0x11, inet("198.51.100.22") + tlv) + b"\x16\x03\x01"  # then a ClientHello
    parsed = parse(data)
    assert parsed == Parsed(16 + 12 + len(tlv), "198.51.100.22")
    assert data[parsed.length :] == b"\x16\x03\x01"


def test_v2_local_unspec_and_unix_use_the_real_peer() -> None:
    assert parse(v2(0, 0x00, b"")) == Parsed(16, None)  # LOCAL: a health check
    assert parse(v2(0, 0x11, inet("198.51.100.22"))) == Parsed(28, None)
    assert parse(v2(1, 0x00, b"")) == Parsed(16, None)
    assert parse(v2(1, 0x31, b"\x00" * 216)) == Parsed(232, None)


@pytest.mark.parametrize(
    "data",
    [
        v2(1, 0x11, inet("198.51.100.22"), version=1),
        v2(2, 0x11, inet("198.51.100.22")),  # no such command
        v2(1, 0x11, b"\x00" * 8),  # too short for AF_INET
        v2(1, 0x21, b"\x00" * 12),  # too short for AF_INET6
        v2(1, 0x41, b"\x00" * 12),  # no such family
        V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, MAX_HEADER),  # longer than read
        b"\r\n\r\n\x00\r\nQUIX\n" + b"\x21\x11\x00\x0c",
    ],
)
def test_v2_refusals(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


def test_take_reads_the_header_in_pieces_and_leaves_what_follows_on_the_socket() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        with pytest.raises(BlockingIOError):
            take(ours, b"")
        theirs.sendall(b"PROXY TCP4 198.51.100.7 19")
        read, parsed = take(ours, b"")
        assert (read, parsed) == (b"PROXY TCP4 198.51.100.7 19", None)
        theirs.sendall(b"2.0.2.1 5555 443\r\n\x16\x03\x01 the ClientHello")
        read, parsed = take(ours, read)
        assert parsed == Parsed(len(read), "198.51.100.7")
        assert ours.recv(100) == b"\x16\x03\x01 the ClientHello"  # for OpenSSL to read


def test_take_refuses_a_connection_closed_before_its_header() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        ours.setblocking(False)
        theirs.sendall(b"PROXY TCP4")
        theirs.close()
        read, _ = take(ours, b"")
        with pytest.raises(ProxyHeaderError):
            take(ours, read)
