"""The access blocks at the edge, through a real `serve` and origin: ipaccess, geoblock,
domainlock and useragent refuse (403, a short body, the origin not asked) and allow as
their policy says, `ips` exempts, refusals are counted by reason; the client address
from a trusted proxy's X-Forwarded-For and from PROXY protocol v1/v2 headers."""

from __future__ import annotations

import ipaddress
import itertools
import json
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from origin import Origin, Reply
from server import Server, samples, until
from tls_support import Tls, https_zone, loopback_names, tls

__all__ = ["loopback_names", "tls"]  # the fixtures this module uses

Zone = dict[str, Any]
CACHED = [("Cache-Control", "max-age=60")]
TRUSTED_PROXY = "127.0.0.2"
_aliases = itertools.count(1)


def country_db(path: Path) -> Path:
    """A small GeoLite2-Country-like database: 127.0.0.0/24 is FR, 127.0.1.0/24 DE."""
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country", languages=["en"]
    )
    writer.insert_network(IPSet(["127.0.0.0/24"]), {"country": {"iso_code": "FR"}})
    writer.insert_network(IPSet(["127.0.1.0/24"]), {"country": {"iso_code": "DE"}})
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("serve-access")
    s = Server(
        base / "data",
        "--origin-timeout",
        "2",
        "--geoip-db",
        str(country_db(base / "countries.mmdb")),
        "--trusted-proxies",
        f"{TRUSTED_PROXY},10.0.0.0/8",
        "--access-log",
        str(base / "access.log"),
        "--access-log-format",
        "json",
    ).start()
    yield s
    s.stop()


def new_zone(server: Server, origin: Origin, **blocks: Any) -> Zone:
    return server.create_zone(origin.url, alias=f"a{next(_aliases)}", **blocks)


def get(
    server: Server, zone: Zone, path: str, source: str = "127.0.0.1", **headers: str
) -> httpx.Response:
    """A GET from the loopback address `source`."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        fields = {"Host": zone["fqdn"], **{k.replace("_", "-"): v for k, v in headers.items()}}
        return client.get(server.edge_url + path, headers=fields)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers.get("x-cache") != "HIT"
    assert 0 < len(response.content) < 200
    assert response.headers["content-type"].startswith("text/plain")


def refused_counts(server: Server) -> dict[str, float]:
    return {
        name: value
        for name, value in samples(server).items()
        if name.startswith("pullzone_edge_refused_total{")
    }


def test_ipaccess_refuses_the_listed_clients_even_for_a_cached_object(
    server: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(server, origin, ipaccess={"enabled": "Y", "list": "127.0.0.66,127.0.9.0/24"})
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    before = refused_counts(server).get('pullzone_edge_refused_total{reason="ipaccess"}', 0)
    assert_refused(get(server, zone, path, "127.0.0.66"))
    assert origin.count(path) == 0
    first = get(server, zone, path, "127.0.0.1")
    again = get(server, zone, path, "127.0.0.1")
    assert (first.status_code, again.headers["x-cache"]) == (200, "HIT")
    refused = get(server, zone, path, "127.0.9.4")
    assert_refused(refused)
    assert origin.count(path) == 1
    counts = until(
        lambda: refused_counts(server),
        lambda c: c.get('pullzone_edge_refused_total{reason="ipaccess"}', 0) >= before + 2,
    )
    assert counts['pullzone_edge_refused_total{reason="ipaccess"}'] == before + 2
    # policy N: only the listed ones; `ips` exempts whatever the policy
    change = {"policy": "N", "ips": "127.0.0.7"}
    assert server.api.post(f"/zones/http/pull/{zone['id']}/ipaccess", json=change).is_success
    assert get(server, zone, path, "127.0.9.4").headers["x-cache"] == "HIT"
    assert_refused(get(server, zone, path, "127.0.0.1"))
    assert get(server, zone, path, "127.0.0.7").status_code == 200
    # off: everyone again
    off = {"enabled": "N"}
    assert server.api.post(f"/zones/http/pull/{zone['id']}/ipaccess", json=off).is_success
    assert get(server, zone, path, "127.0.0.1").headers["x-cache"] == "HIT"


def test_geoblock_by_the_country_of_the_geoip_db(server: Server, origin: Origin, path: str) -> None:
    zone = new_zone(server, origin, geoblock={"enabled": "Y", "list": "FR", "ips": "127.0.0.9"})
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    assert_refused(get(server, zone, path, "127.0.0.1"))  # FR
    assert origin.count(path) == 0
    assert get(server, zone, path, "127.0.1.1").status_code == 200  # DE
    assert get(server, zone, path, "127.0.2.1").headers["x-cache"] == "HIT"  # no country
    assert get(server, zone, path, "127.0.0.9").headers["x-cache"] == "HIT"  # FR, exempt
    change = {"policy": "N", "list": "DE"}
    assert server.api.post(f"/zones/http/pull/{zone['id']}/geoblock", json=change).is_success
    assert get(server, zone, path, "127.0.1.1").headers["x-cache"] == "HIT"
    assert_refused(get(server, zone, path, "127.0.0.1"))
    assert_refused(get(server, zone, path, "127.0.2.1"))  # unknown is not DE
    until(
        lambda: refused_counts(server),
        lambda c: c.get('pullzone_edge_refused_total{reason="geoblock"}', 0) >= 3,
    )
    assert refused_counts(server)['pullzone_edge_refused_total{reason="geoblock"}'] == 3


def test_domainlock_by_the_referer(server: Server, origin: Origin, path: str) -> None:
    block = {"enabled": "Y", "list": "example.com", "noreferer": "N"}
    zone = new_zone(server, origin, domainlock=block)
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    assert_refused(get(server, zone, path, referer="https://evil.test/page"))
    assert origin.count(path) == 0
    assert get(server, zone, path, referer="https://www.example.com/").status_code == 200
    assert get(server, zone, path).headers["x-cache"] == "HIT"  # no Referer: allowed
    change = {"noreferer": "Y"}
    assert server.api.post(f"/zones/http/pull/{zone['id']}/domainlock", json=change).is_success
    assert_refused(get(server, zone, path))
    change = {"policy": "N"}
    assert server.api.post(f"/zones/http/pull/{zone['id']}/domainlock", json=change).is_success
    assert_refused(get(server, zone, path, referer="https://example.com/"))
    assert get(server, zone, path, referer="https://evil.test/").headers["x-cache"] == "HIT"


def test_useragent_by_substring(server: Server, origin: Origin, path: str) -> None:
    zone = new_zone(server, origin, useragent={"enabled": "Y", "list": "curl,BadBot"})
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    assert_refused(get(server, zone, path, user_agent="Mozilla/5.0 (compatible; badbot/2)"))
    assert origin.count(path) == 0
    assert get(server, zone, path, user_agent="Mozilla/5.0").status_code == 200
    curl = subprocess.run(
        [
            *("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H"),
            f"Host: {zone['fqdn']}",
            server.edge_url + path,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert curl.stdout == "403"
    change = {"casesensitive": "Y"}
    assert server.api.post(f"/zones/http/pull/{zone['id']}/useragent", json=change).is_success
    assert get(server, zone, path, user_agent="badbot").headers["x-cache"] == "HIT"
    change = {"policy": "N"}
    assert server.api.post(f"/zones/http/pull/{zone['id']}/useragent", json=change).is_success
    assert_refused(get(server, zone, path, user_agent="Mozilla/5.0"))
    assert get(server, zone, path, user_agent="BadBot").headers["x-cache"] == "HIT"


def test_x_forwarded_for_is_honoured_only_from_a_trusted_proxy(
    server: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(server, origin, ipaccess={"enabled": "Y", "list": "198.51.100.0/24"})
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    forged = "198.51.100.7"
    # from the trusted proxy: the right-most address that is no trusted proxy
    assert_refused(get(server, zone, path, TRUSTED_PROXY, x_forwarded_for=forged))
    via_two = f"{forged}, 10.1.1.1"
    assert_refused(get(server, zone, path, TRUSTED_PROXY, x_forwarded_for=via_two))
    # a client's own forged left part is not taken
    spoof = f"{forged}, 203.0.113.5"
    assert get(server, zone, path, TRUSTED_PROXY, x_forwarded_for=spoof).status_code == 200
    # from anyone else, the field is the client's word only
    assert get(server, zone, path, "127.0.0.3", x_forwarded_for=forged).headers["x-cache"] == "HIT"
    assert origin.count(path) == 1
    # the access log names the same client the rules saw
    log = server.data_dir.parent / "access.log"

    def clients() -> list[tuple[str, int]]:
        lines = log.read_text().splitlines() if log.exists() else []
        entries = [json.loads(line) for line in lines]
        return [(e["client"], e["status"]) for e in entries if e["target"] == path]

    logged = until(clients, lambda found: len(found) >= 4)
    # Each worker writes its own lines: the log's order across workers is not the requests'.
    expected = [(forged, 403), (forged, 403), ("203.0.113.5", 200), ("127.0.0.3", 200)]
    assert sorted(logged) == sorted(expected)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--geoip-db", "/nonexistent/countries.mmdb"], ["--geoip-db", "no such file"]),
        (["--geoip-db", "NOT_MMDB"], ["--geoip-db", "not a MaxMind DB"]),
        (["--trusted-proxies", "10.0.0.0/8,proxy.example"], ["--trusted-proxies", "proxy.example"]),
    ],
)
def test_serve_refuses_a_bad_geoip_db_or_proxy_list_before_it_starts(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    not_mmdb = tmp_path / "countries.mmdb"
    not_mmdb.write_bytes(b"GIF89a" + b"\x00" * 200)
    args = [str(not_mmdb) if arg == "NOT_MMDB" else arg for arg in args]
    data = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "pullzone", "serve", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    for word in words:
        assert word in message, message
    assert not (data / "control.db").exists()  # nothing started


# -- PROXY protocol ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("serve-proxied")
    s = Server(base / "data", "--origin-timeout", "2", "--proxy-protocol", tls=True)
    s.launch()
    # Ready once the API answers (the edge's own probe would send no header).
    until(lambda: s.running and _answers(s), lambda ok: ok or not s.running, timeout=60)
    assert s.running, s.output()
    yield s
    s.stop()


def _answers(server: Server) -> bool:
    try:
        return server.api.get("/zones/http/pull").status_code == 200
    except httpx.TransportError:
        return False


def v1(source: str) -> bytes:
    family = "TCP6" if ":" in source else "TCP4"
    destination = "::1" if ":" in source else "127.0.0.1"
    return f"PROXY {family} {source} {destination} 40000 80\r\n".encode()


def v2(source: str) -> bytes:
    six = ":" in source
    packed = ipaddress.ip_address(source).packed
    body = packed + (b"\x00" * 15 + b"\x01" if six else bytes([127, 0, 0, 1]))
    body += struct.pack("!HH", 40000, 443)
    family = 0x21 if six else 0x11
    tlv = b"\x04\x00\x03abc"  # PP2_TYPE_NOOP, skipped
    return (
        b"\r\n\r\n\x00\r\nQUIT\n" + struct.pack("!BBH", 0x21, family, len(body + tlv)) + body + tlv
    )


def raw_get(port: int, header: bytes, host: str, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        s.sendall(header + request.encode())  # one write: the header and the request
        return _read_all(s)


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def test_proxy_protocol_names_the_client_the_rules_see(
    proxied: Server, origin: Origin, path: str
) -> None:
    listed = "198.51.100.7,2001:db8::/32"
    zone = new_zone(proxied, origin, ipaccess={"enabled": "Y", "list": listed})
    host = zone["fqdn"]
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    for header in (v1("198.51.100.7"), v2("198.51.100.7"), v1("2001:db8::5"), v2("2001:db8::5")):
        assert status(raw_get(proxied.edge_port, header, host, path)) == 403, header
    assert origin.count(path) == 0
    for header in (v1("203.0.113.1"), v2("203.0.113.1"), v2("2001:db9::1")):
        assert status(raw_get(proxied.edge_port, header, host, path)) == 200, header
    # the header sent in pieces, then the request
    with socket.create_connection(("127.0.0.1", proxied.edge_port), timeout=10) as s:
        header = v2("198.51.100.7")
        s.sendall(header[:5])
        s.sendall(header[5:20])
        s.sendall(header[20:] + f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert s.recv(65536).startswith(b"HTTP/1.1 403")
    # curl --haproxy-protocol sends v1 with the connection's own address: 127.0.0.1
    curl = subprocess.run(
        [
            "curl",
            "-sS",
            "--haproxy-protocol",
            "-D-",
            "-o",
            "/dev/null",
            "-H",
            f"Host: {host}",
            proxied.edge_url + path,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert curl.stdout.startswith("HTTP/1.1 200"), curl.stderr
    assert "x-cache: hit" in curl.stdout.lower()
    change = {"list": "127.0.0.1"}
    assert proxied.api.post(f"/zones/http/pull/{zone['id']}/ipaccess", json=change).is_success
    curl = subprocess.run(curl.args, capture_output=True, text=True, timeout=30)
    assert curl.stdout.startswith("HTTP/1.1 403"), curl.stdout


def test_a_connection_without_a_valid_proxy_header_is_closed_and_counted(
    proxied: Server, origin: Origin, path: str
) -> None:
    zone = new_zone(proxied, origin)
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    before = samples(proxied).get('pullzone_edge_faults_total{kind="proxy_header_invalid"}', 0)
    bad = (b"", b"PROXY TCP4 1.2.3 127.0.0.1 1 80\r\n", b"PROXY " + b"9" * 200)
    for header in bad:
        assert raw_get(proxied.edge_port, header, zone["fqdn"], path) == b"", header
    assert origin.count(path) == 0
    until(
        lambda: samples(proxied),
        lambda c: c.get('pullzone_edge_faults_total{kind="proxy_header_invalid"}', 0) >= before + 3,
    )


def test_a_connection_silent_past_the_header_timeout_is_closed_and_counted(
    proxied: Server,
) -> None:
    timed_out = 'pullzone_edge_faults_total{kind="proxy_header_timeout"}'
    before = samples(proxied).get(timed_out, 0)
    with socket.create_connection(("127.0.0.1", proxied.edge_port), timeout=30) as s:
        s.sendall(b"PROXY TCP4 ")  # and nothing more: closed within the header timeout
        started = time.monotonic()
        assert s.recv(1) == b""
        assert time.monotonic() - started < 15
    until(lambda: samples(proxied), lambda c: c.get(timed_out, 0) >= before + 1)
    assert samples(proxied).get(timed_out, 0) == before + 1


def test_proxy_protocol_comes_before_the_tls_handshake(
    proxied: Server, origin: Origin, tls: Tls, path: str
) -> None:
    zone = https_zone(proxied, origin.url, tls)
    listed = {"enabled": "Y", "list": "198.51.100.7"}
    assert proxied.api.post(f"/zones/http/pull/{zone['id']}/ipaccess", json=listed).is_success
    origin.route(path, Reply(headers=CACHED, body=b"x"))
    context = tls.context()
    for source, expected in (("198.51.100.7", 403), ("203.0.113.1", 200)):
        for header in (v1(source), v2(source)):
            raw = socket.create_connection(("127.0.0.1", proxied.tls_port), timeout=10)
            raw.sendall(header)
            with context.wrap_socket(raw, server_hostname=zone["fqdn"]) as s:
                request = f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\nConnection: close\r\n"
                s.sendall((request + "\r\n").encode())
                assert status(_read_all(s)) == expected, (source, header)
    # without a header, no handshake
    with pytest.raises((ssl.SSLError, OSError)):
        raw = socket.create_connection(("127.0.0.1", proxied.tls_port), timeout=10)
        with context.wrap_socket(raw, server_hostname=zone["fqdn"]):
            pass
