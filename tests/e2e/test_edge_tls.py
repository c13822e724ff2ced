"""HTTPS at the edge (`--edge-tls`), through real clients: curl and httpx over TLS to a
real `pullzone serve`, certificates from a trustme CA installed through the node's
event log (tests/server.py `install_certificate`)."""

from __future__ import annotations

import queue
import socket
import ssl
import subprocess
import threading
import time
from typing import Any

import httpx
import pytest
from origin import Origin, Reply
from server import Server, samples, until
from tls_support import Tls, curl, handshake, https_zone, loopback_names, tls, tls_server, url

__all__ = ["loopback_names", "tls", "tls_server"]  # the fixtures this module uses
pytestmark = pytest.mark.usefixtures("loopback_names")

CACHEABLE = [("Cache-Control", "max-age=600")]


@pytest.fixture()
def zone(tls_server: Server, origin: Origin, tls: Tls) -> dict[str, Any]:
    return https_zone(tls_server, origin.url, tls)


def head_of(out: str) -> tuple[str, dict[str, str]]:
    lines = out.replace("\r\n", "\n").split("\n\n")[0].split("\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return lines[0], fields


def test_https_miss_then_hit_over_curl_and_httpx(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"over tls"))
    done = curl(tls_server, tls, zone["fqdn"], path, "--http1.1")
    assert done.returncode == 0, done.stderr
    status, fields = head_of(done.stdout)
    assert status.startswith("HTTP/1.1 200") and fields["x-cache"] == "MISS"
    assert done.stdout.endswith("over tls")
    with tls.client(tls_server) as client:
        r = client.get(url(tls_server, zone["fqdn"], path))
        assert (r.status_code, r.headers["x-cache"], r.content) == (200, "HIT", b"over tls")
        assert int(r.headers["age"]) >= 0 and r.http_version == "HTTP/1.1"
    # The plain listener serves the same object from the same cache.
    assert tls_server.get(zone["fqdn"], path).headers["x-cache"] == "HIT"
    assert origin.count(path) == 1


def test_the_origin_is_told_https(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=[("Cache-Control", "no-store")], body=b"x"))
    with tls.client(tls_server) as client:
        client.get(url(tls_server, zone["fqdn"], path))
        client.post(url(tls_server, zone["fqdn"], path), content=b"form")
    tls_server.get(zone["fqdn"], path)
    protos = [seen.headers["x-forwarded-proto"] for seen in origin.seen[path]]
    assert protos == ["https", "https", "http"]


def test_an_unknown_name_fails_the_handshake_with_unrecognized_name(
    tls_server: Server, tls: Tls, zone: dict[str, Any]
) -> None:
    done = curl(tls_server, tls, "nobody.test", "/", "-k")
    assert done.returncode == 35 and "unrecognized name" in done.stderr, done.stderr
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(tls_server, "nobody.test")
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(tls_server, None)  # no SNI at all
    # The zone's own name gets its own certificate, not another's.
    with handshake(tls_server, zone["fqdn"], tls.context()) as conn:
        assert ("DNS", zone["fqdn"]) in conn.getpeercert()["subjectAltName"]


def test_a_zone_without_https_gets_no_certificate(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any]
) -> None:
    plain = tls_server.create_zone(origin.url, alias=f"{zone['alias']}-plain")
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(tls_server, plain["fqdn"])
    tls_server.set_ssl(zone["id"], enabled=False)  # and one that turns it off
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(tls_server, zone["fqdn"])


def test_a_wildcard_certificate_serves_one_label(
    tls_server: Server, origin: Origin, tls: Tls, path: str
) -> None:
    zone = tls_server.create_zone(origin.url, alias="wild", cnames="a.wild.test,x.y.wild.test")
    crt, key = tls.issue("*.wild.test")
    tls_server.install_certificate(zone["id"], crt, key)
    origin.route(path, Reply(headers=CACHEABLE, body=b"w"))
    with tls.client(tls_server) as client:
        r = client.get(url(tls_server, "a.wild.test", path))
        assert (r.status_code, r.content) == (200, b"w")
    # Two labels are not what *.wild.test stands for: no certificate for that name.
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(tls_server, "x.y.wild.test")


def test_a_replaced_certificate_is_served_by_the_next_handshake_without_restart(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"k"))
    request = f"GET {path} HTTP/1.1\r\nHost: {zone['fqdn']}\r\n\r\n".encode()
    with handshake(tls_server, zone["fqdn"], tls.context()) as kept:
        old = kept.getpeercert(binary_form=True)
        kept.sendall(request)
        assert answer(kept).startswith(b"HTTP/1.1 200")
        crt, key = tls.issue(zone["fqdn"])
        tls_server.install_certificate(zone["id"], crt, key, cert_id=zone["certid"])
        new = ssl.PEM_cert_to_DER_cert(crt)
        assert new != old
        with handshake(tls_server, zone["fqdn"], tls.context()) as fresh:
            assert fresh.getpeercert(binary_form=True) == new
        # The open keep-alive connection carries on with the certificate it began with.
        kept.sendall(request)
        assert answer(kept).startswith(b"HTTP/1.1 200")
        assert kept.getpeercert(binary_form=True) == old


def answer(conn: ssl.SSLSocket) -> bytes:
    """One response whose body is b"k", read whole."""
    data = b""
    while not data.endswith(b"\r\n\r\nk"):
        piece = conn.recv(65536)
        assert piece, data
        data += piece
    return data


@pytest.fixture()
def redirecting(tls_server: Server, origin: Origin, tls: Tls) -> dict[str, Any]:
    return https_zone(tls_server, origin.url, tls, redirect=True)


def test_plain_http_is_redirected_to_https(
    tls_server: Server, origin: Origin, tls: Tls, redirecting: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"r"))
    host = redirecting["fqdn"]
    # The HTTPS listener is not on 443: its port is in the Location.
    location = url(tls_server, host, path + "?q=1")
    for method, status in (("GET", 301), ("HEAD", 301), ("POST", 308), ("DELETE", 308)):
        r = tls_server.edge.request(method, path + "?q=1", headers={"Host": host})
        assert (r.status_code, r.headers["location"]) == (status, location), method
    # A client following it from the plain listener gets the object over TLS.
    with tls.client(tls_server, follow_redirects=True) as client:
        r = client.get(f"http://{host}:{tls_server.edge_port}{path}")
    assert (r.status_code, r.content, str(r.url)) == (200, b"r", url(tls_server, host, path))
    assert [h.status_code for h in r.history] == [301]
    # A cached object is redirected over plain HTTP too.
    assert tls_server.get(host, path).status_code == 301
    assert origin.count(path) == 1


def test_acme_challenges_are_not_redirected(
    tls_server: Server, origin: Origin, redirecting: dict[str, Any]
) -> None:
    challenge = "/.well-known/acme-challenge/t0ken"
    origin.route(challenge, Reply(body=b"t0ken.thumbprint"))
    r = tls_server.get(redirecting["fqdn"], challenge)
    assert (r.status_code, r.content) == (200, b"t0ken.thumbprint")


def test_stalled_handshakes_do_not_stop_other_clients(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"still here"))
    # 600 connections that never finish their handshake (nothing sent, or half a
    # ClientHello): more than the 256 a worker keeps waiting at once.
    stalled = []
    try:
        for n in range(600):
            s = socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=5)
            if n % 2:
                s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            stalled.append(s)
        started = time.monotonic()
        with tls.client(tls_server) as client:
            for _ in range(5):
                r = client.get(url(tls_server, zone["fqdn"], path), headers={"Connection": "close"})
                assert r.content == b"still here"
        assert time.monotonic() - started < 5
        faults = until(
            lambda: samples(tls_server),
            lambda m: m.get('pullzone_edge_faults_total{kind="tls_handshake_shed"}', 0) > 0,
        )
        assert faults.get('pullzone_edge_faults_total{kind="tls_handshake_shed"}', 0) > 0
    finally:
        for s in stalled:
            s.close()


def test_a_stalled_handshake_is_closed_after_its_timeout(tls_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=15) as s:
        s.sendall(b"\x16\x03\x01\x02\x00")  # a record header, then nothing
        started = time.monotonic()
        assert s.recv(1024) == b""  # closed by the edge
        assert 8 < time.monotonic() - started < 14
    timed_out = 'pullzone_edge_faults_total{kind="tls_handshake_timeout"}'
    assert until(lambda: samples(tls_server), lambda m: m.get(timed_out, 0) >= 1).get(timed_out)


def test_requests_are_counted_by_protocol_and_scheme(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    origin.route(path, Reply(headers=CACHEABLE, body=b"m"))
    with tls.client(tls_server) as client:
        client.get(url(tls_server, zone["fqdn"], path))
    tls_server.get(zone["fqdn"], path)
    key = 'pullzone_edge_protocol_requests_total{protocol="http/1.1",scheme="%s"}'
    metrics = until(
        lambda: samples(tls_server),
        lambda m: m.get(key % "https", 0) >= 1 and m.get(key % "http", 0) >= 1,
    )
    assert metrics.get(key % "https", 0) >= 1 and metrics.get(key % "http", 0) >= 1


def test_curl_shows_tls_1_2_or_later(tls_server: Server, tls: Tls, zone: dict[str, Any]) -> None:
    done = subprocess.run(
        ["curl", "-sS", "-k", "--tls-max", "1.1", "--resolve",
         f"{zone['fqdn']}:{tls_server.tls_port}:127.0.0.1", url(tls_server, zone["fqdn"], "/")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0  # TLS 1.0 and 1.1 are refused
    with httpx.Client(verify=tls.context()) as client:
        r = client.get(url(tls_server, zone["fqdn"], "/none"))
        assert r.extensions["network_stream"].get_extra_info("ssl_object").version() in (
            "TLSv1.2",
            "TLSv1.3",
        )


def test_a_client_asking_to_renegotiate_is_refused_and_the_worker_goes_on(
    tls_server: Server, origin: Origin, tls: Tls, zone: dict[str, Any], path: str
) -> None:
    """TLS 1.2 renegotiation (RFC 5746) is refused (OP_NO_RENEGOTIATION): a client that
    asks mid-connection (openssl s_client's `R` command) gets no new handshake, and the
    worker goes on serving."""
    origin.route(path, Reply(headers=CACHEABLE, body=b"renegotiate"))
    workers = tls_server.worker_pids()
    client = subprocess.Popen(
        ["openssl", "s_client", "-tls1_2", "-connect", f"127.0.0.1:{tls_server.tls_port}",
         "-servername", zone["fqdn"], "-CAfile", str(tls.cafile)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(x) for x in client.stdout or ()], daemon=True
    )
    reader.start()
    try:
        seen = _read_until(lines, "Verify return code")  # the handshake is done
        assert client.stdin is not None
        client.stdin.write("R\n")
        client.stdin.flush()
        seen += _read_until(lines, "RENEGOTIATING")
        assert client.wait(15) != 0  # the server answered no_renegotiation: no new handshake
        reader.join(15)  # to the end of its output
        while not lines.empty():
            seen += lines.get()
        assert "no renegotiation" in seen, seen[-2000:]
    finally:
        if client.poll() is None:
            client.kill()
    with tls.client(tls_server) as https:
        r = https.get(url(tls_server, zone["fqdn"], path))
        assert (r.status_code, r.content) == (200, b"renegotiate")
    assert tls_server.worker_pids() == workers
    assert "Traceback" not in tls_server.output()


def _read_until(lines: queue.Queue[str], marker: str, timeout: float = 15) -> str:
    """Lines of s_client's output up to the one holding `marker`."""
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        seen += lines.get(timeout=max(0.0, deadline - time.monotonic()))
    return seen
